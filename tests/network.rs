//! Networks of MPR nodes: the network kernel against brainmass 0.1.1's `Network`
//! (tests/data/network: two reference cases with every node's r and v at every step), and
//! against what must hold whatever the reference: k = 0 gives independent single nodes bit
//! for bit, identical nodes in step stay on one uncoupled node's trajectory, delays against
//! an independent scalar implementation written here, functional connectivity and the mean
//! rate against a direct computation from the trace, reruns and other runs leave a run's
//! bits alone, and a stop request ends the kernel.

use std::f64::consts::PI;

use mpr_sweep::integrate::network::{
    Coupling, NET_LANES, NODES_PER_GROUP, NetBatch, NetLanes, NetResult, NetSchedule, NodeInit,
    Wiring, integrate_network,
};
use mpr_sweep::integrate::{
    Batch, BatchResult, Isa, LANES, Method, POLL_STEPS, Schedule, StopToken, Stopped, Xoshiro,
    integrate,
};
use mpr_sweep::model::{HZ_PER_KHZ, NodeParams};
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/network");

/// A network run described node by node, in user units.
struct Net {
    /// W[i][j]: edge j -> i.
    w: Vec<Vec<f64>>,
    delay_steps: Vec<Vec<usize>>,
    coupling: Coupling,
    k: f64,
    /// Per node: tau_ms, eta, J, delta (paper units).
    nodes: Vec<NodeParams>,
    r0_hz: Vec<f64>,
    v0: Vec<f64>,
    history_hz: Vec<f64>,
    method: Method,
    dt: f64,
    steps: u64,
}

impl Net {
    fn wiring(&self) -> Wiring {
        wiring(self.coupling, &self.w, &self.delay_steps)
    }

    /// Every lane runs this network; returns the result and the trace (every step).
    fn run(&self, isa: Isa) -> (NetResult, Vec<f64>) {
        let wiring = self.wiring();
        let batch = net_batch(
            &wiring,
            self.dt,
            [self.k; NET_LANES],
            |i, l| NodeInit {
                params: self.nodes[i],
                sigma: [0.0, 0.0],
                r0_khz: self.r0_hz[i] / HZ_PER_KHZ,
                v0: self.v0[i],
                stream: node_stream(i, l),
            },
            |i, _| self.history_hz[i] / HZ_PER_KHZ,
        );
        let schedule = net_schedule(self.dt, self.steps, 1, 1, [false; 2], 0);
        run_net(isa, self.method, &schedule, &wiring, &batch)
    }
}

/// (r in Hz, v) of node `i`, lane `l` at trace row `row` of a network with `groups` groups.
fn traced(trace: &[f64], groups: usize, row: usize, i: usize, l: usize) -> (f64, f64) {
    let (r, v) = traced_khz(trace, groups, row, i, l);
    (r * HZ_PER_KHZ, v)
}

/// (r in kHz, v) of node `i`, lane `l` at trace row `row` of a network with `groups` groups:
/// the kernel's own bits.
fn traced_khz(trace: &[f64], groups: usize, row: usize, i: usize, l: usize) -> (f64, f64) {
    let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
    let base = row * groups * 2 * LANES + g * 2 * LANES + q * NET_LANES + l;
    (trace[base], trace[base + LANES])
}

/// The fixed-step methods (`rk2` runs heun's code).
const METHODS: [Method; 5] = [
    Method::ExpEuler,
    Method::Euler,
    Method::Heun,
    Method::Rk4,
    Method::Dopri5,
];

/// The methods that take white noise.
const NOISY_METHODS: [Method; 3] = [Method::ExpEuler, Method::Euler, Method::Heun];

/// The edges `j -> i` of `w` (nonzero, off the diagonal) with their delays in steps.
fn wiring(coupling: Coupling, w: &[Vec<f64>], delay_steps: &[Vec<usize>]) -> Wiring {
    let n = w.len();
    let incoming: Vec<Vec<(usize, f64, usize)>> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && w[i][j] != 0.0)
                .map(|j| (j, w[i][j], delay_steps[i][j]))
                .collect()
        })
        .collect();
    Wiring::new(coupling, &incoming)
}

/// Node `i` of run `l`'s stream: run `l`'s stream jumped `i` times.
fn node_stream(i: usize, l: usize) -> Xoshiro {
    let mut x = Xoshiro::from_run(7, l as u64);
    for _ in 0..i {
        x.jump();
    }
    x
}

/// A batch whose node `i` of run `l` is `node(i, l)` with rate `history(i, l)` (kHz) before
/// t = 0; run `l` couples with `k[l]`. The padding nodes of the last group copy node 0.
fn net_batch(
    wiring: &Wiring,
    dt: f64,
    k: NetLanes,
    node: impl Fn(usize, usize) -> NodeInit,
    history: impl Fn(usize, usize) -> f64,
) -> NetBatch {
    let n = wiring.nodes();
    let mut batch = NetBatch::new(wiring.groups());
    for l in 0..NET_LANES {
        for i in 0..wiring.groups() * NODES_PER_GROUP {
            batch.set_node(i, l, &node(if i < n { i } else { 0 }, l), dt);
        }
    }
    batch.k = k;
    batch.history = (0..n)
        .map(|i| std::array::from_fn(|l| history(i, l)))
        .collect();
    batch
}

fn net_schedule(
    dt: f64,
    steps: u64,
    first_stat_step: u64,
    trace_stride: u64,
    white: [bool; 2],
    fc_stride: u64,
) -> NetSchedule {
    NetSchedule {
        base: Schedule {
            dt,
            steps,
            first_stat_step,
            trace_stride,
            white,
        },
        fc_stride,
    }
}

/// The result and the trace of one network batch.
fn run_net(
    isa: Isa,
    method: Method,
    schedule: &NetSchedule,
    wiring: &Wiring,
    batch: &NetBatch,
) -> (NetResult, Vec<f64>) {
    let mut trace = Vec::new();
    let result = integrate_network(
        isa,
        method,
        schedule,
        wiring,
        batch,
        &mut trace,
        &StopToken::new(),
    )
    .expect("nobody asked to stop");
    (result, trace)
}

/// Node `i` of run `l`: its group's result and its slot there.
fn node_result(result: &NetResult, i: usize, l: usize) -> (&BatchResult, usize) {
    let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
    (&result.groups[g], q * NET_LANES + l)
}

/// What a kernel returns about one slot after `count` statistics samples: final r (kHz)
/// and v, then the r and v statistics (mean, std, min, max).
fn slot_values(res: &BatchResult, slot: usize, count: u64) -> [f64; 10] {
    let (r, v) = (res.r.summary(slot, count), res.v.summary(slot, count));
    [
        res.r_final[slot],
        res.v_final[slot],
        r.mean,
        r.std,
        r.min,
        r.max,
        v.mean,
        v.std,
        v.min,
        v.max,
    ]
}

/// Asserts `got` and `want` equal bit for bit; else names the first difference and the
/// largest absolute one.
fn assert_same_bits(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let differ = |(a, b): (&f64, &f64)| a.to_bits() != b.to_bits();
    if let Some(first) = got.iter().zip(want).position(differ) {
        let worst = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        panic!(
            "{what}: value {first} is {:e}, expected {:e} (difference {:e}); {} of {} values \
             differ, the largest by {worst:e}",
            got[first],
            want[first],
            got[first] - want[first],
            got.iter().zip(want).filter(|&p| differ(p)).count(),
            got.len()
        );
    }
}

fn matrix<T>(v: &Value, f: impl Fn(&Value) -> T) -> Vec<Vec<T>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(&f).collect())
        .collect()
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A brainmass reference case: the network as its JSON gives it and the trajectory rows
/// `(step, node, r_hz, v)`.
fn brainmass_case(case: &str) -> (Net, Vec<(usize, usize, f64, f64)>) {
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DATA}/brainmass_ref_{case}.json")).unwrap(),
    )
    .unwrap();
    let n = json["N"].as_u64().unwrap() as usize;
    assert_eq!(json["coupling"], "diffusive");
    assert_eq!(json["method"], "exp_euler");
    let tau = json["tau_ms"].as_f64().unwrap();
    assert_eq!(
        tau, 1.0,
        "brainmass's delta in Hz is the paper's delta at tau = 1 ms"
    );
    let params = NodeParams::from_user(
        tau,
        json["eta"].as_f64().unwrap(),
        json["J"].as_f64().unwrap(),
        json["delta_hz"].as_f64().unwrap() / 1000.0,
        0.0,
        0.0,
    );
    let delay_steps = match json.get("delay_steps") {
        Some(d) => matrix(d, |x| x.as_u64().unwrap() as usize),
        None => vec![vec![0; n]; n],
    };
    let net = Net {
        w: matrix(&json["W"], |x| x.as_f64().unwrap()),
        delay_steps,
        coupling: Coupling::Diffusive,
        k: json["k"].as_f64().unwrap(),
        nodes: vec![params; n],
        r0_hz: vector(&json["r0_hz"]),
        v0: vector(&json["v0"]),
        history_hz: vector(&json["history_hz"]),
        method: Method::ExpEuler,
        dt: json["dt_ms"].as_f64().unwrap(),
        steps: json["steps"].as_u64().unwrap(),
    };
    let rows = std::fs::read_to_string(format!("{DATA}/brainmass_ref_{case}.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect();
    (net, rows)
}

/// Every node's r and v at every step within 1e-9 * max(1, |ref|) of brainmass, in every
/// lane, on every kernel path this CPU has.
fn matches_brainmass(case: &str) {
    let (net, rows) = brainmass_case(case);
    assert_eq!(rows.len() as u64, (net.steps + 1) * net.w.len() as u64);
    let groups = net.wiring().groups();
    for isa in Isa::available() {
        let (_, trace) = net.run(isa);
        let mut worst: f64 = 0.0;
        for &(step, node, r_ref, v_ref) in &rows {
            for l in [0, NET_LANES - 1] {
                let (r, v) = traced(&trace, groups, step, node, l);
                for (got, want) in [(r, r_ref), (v, v_ref)] {
                    let err = (got - want).abs() / want.abs().max(1.0);
                    worst = worst.max(err);
                    assert!(
                        err <= 1e-9,
                        "case {case}, {isa:?}: step {step}, node {node}: {got} vs brainmass {want}"
                    );
                }
            }
        }
        eprintln!("case {case}, {isa:?}: worst scaled error {worst:.2e}");
    }
}

#[test]
fn three_nodes_without_delays_match_brainmass_network() {
    matches_brainmass("a");
}

#[test]
fn four_nodes_with_delays_match_brainmass_network() {
    matches_brainmass("b");
}

/// A five-node network for the tests below: W[i][j] (edge j -> i), every node with a
/// zero-delay source, delays up to 40 steps.
const W5: [[f64; 5]; 5] = [
    [0.0, 0.8, 0.3, 0.5, 0.2],
    [0.4, 0.0, 0.9, 0.1, 0.6],
    [0.7, 0.2, 0.0, 0.5, 0.3],
    [0.3, 0.6, 0.4, 0.0, 0.8],
    [0.5, 0.1, 0.7, 0.9, 0.0],
];
const D5: [[usize; 5]; 5] = [
    [0, 0, 17, 40, 3],
    [25, 0, 0, 9, 33],
    [1, 12, 0, 0, 40],
    [38, 5, 21, 0, 0],
    [0, 30, 2, 14, 0],
];

fn w5() -> Vec<Vec<f64>> {
    W5.iter().map(|row| row.to_vec()).collect()
}

fn d5() -> Vec<Vec<usize>> {
    D5.iter().map(|row| row.to_vec()).collect()
}

/// With k = 0 every node of a network (different parameters per node and per run, nonzero
/// W and delays) is a single node: its trace, final state and statistics equal bit for bit
/// those of the single-node kernel running the same node, for every method on every path,
/// without noise and (for the methods that take it) with white noise on r and v. The
/// single-node kernel runs node `i` of every run in one batch (lane `s` is run
/// `s % NET_LANES`), so the slots differ from the network's packing too.
#[test]
fn k_zero_gives_n_independent_single_nodes_bit_for_bit() {
    const N: usize = 5;
    let (dt, steps, first_stat_step) = (0.01, 2005, 37);
    let wiring = wiring(Coupling::Diffusive, &w5(), &d5());
    assert_eq!(wiring.history_len(), 41);
    let node = |i: usize, l: usize, sigma: [f64; 2]| {
        let (x, y) = (i as f64, l as f64);
        NodeInit {
            params: NodeParams::from_user(
                0.6 + 0.15 * x + 0.01 * y,
                -6.0 + 1.1 * x + 0.2 * y,
                8.0 + 3.0 * x - 0.5 * y,
                0.7 + 0.2 * x,
                0.0,
                0.0,
            ),
            sigma,
            r0_khz: 0.02 + 0.01 * x + 0.003 * y,
            v0: -1.5 + 0.3 * x - 0.05 * y,
            stream: node_stream(i, l),
        }
    };
    let cases: [([bool; 2], [f64; 2], &[Method]); 2] = [
        ([false; 2], [0.0; 2], &METHODS),
        ([true; 2], [0.005, 0.3], &NOISY_METHODS),
    ];
    for (white, sigma, methods) in cases {
        let schedule = net_schedule(dt, steps, first_stat_step, 5, white, 0);
        let count = schedule.base.stat_count();
        let rows = schedule.base.trace_rows();
        let batch = net_batch(
            &wiring,
            dt,
            [0.0; NET_LANES],
            |i, l| node(i, l, sigma),
            |i, l| 0.01 * (1 + i + l) as f64,
        );
        let singles: Vec<Batch> = (0..N)
            .map(|i| {
                let mut b = Batch::default();
                for s in 0..LANES {
                    let n = node(i, s % NET_LANES, sigma);
                    b.coef.set_lane(s, &n.params, n.sigma[0], n.sigma[1], dt);
                    b.r0[s] = n.r0_khz;
                    b.v0[s] = n.v0;
                    b.rng.set_lane(s, &n.stream);
                }
                b
            })
            .collect();
        for isa in Isa::available() {
            for &method in methods {
                let (net, trace) = run_net(isa, method, &schedule, &wiring, &batch);
                for (i, single) in singles.iter().enumerate() {
                    let mut single_trace = Vec::new();
                    let one = integrate(
                        isa,
                        method,
                        &schedule.base,
                        single,
                        &mut single_trace,
                        &StopToken::new(),
                    )
                    .expect("nobody asked to stop");
                    assert_eq!(single_trace.len(), rows * 2 * LANES);
                    for l in 0..NET_LANES {
                        let what = format!("{isa:?} {method:?} white {white:?}: node {i}, run {l}");
                        let (res, slot) = node_result(&net, i, l);
                        assert_eq!(res.finite_steps[slot], steps, "{what}: diverged");
                        assert_eq!(one.finite_steps[l], steps, "{what}: single diverged");
                        assert_same_bits(
                            &slot_values(res, slot, count),
                            &slot_values(&one, l, count),
                            &format!("{what}: final state and statistics"),
                        );
                        let (got, want): (Vec<f64>, Vec<f64>) = (0..rows)
                            .flat_map(|row| {
                                let (r, v) = traced_khz(&trace, wiring.groups(), row, i, l);
                                let at = row * 2 * LANES + l;
                                [(r, single_trace[at]), (v, single_trace[at + LANES])]
                            })
                            .unzip();
                        assert_same_bits(&got, &want, &format!("{what}: trace (r, v by row)"));
                    }
                }
            }
        }
    }
}

/// Six identical nodes starting in step, diffusively coupled (k = 2, an asymmetric W, no
/// delays), stay in step: brainmass's per-edge form `W (r_j - r_i)` is an exact zero, so
/// every node's trace, final state and statistics equal bit for bit those of one uncoupled
/// node (a network of one node), for every method on every path. Started off step by 0.1
/// in one node's v, the coupling does move the other nodes off that trajectory.
#[test]
fn identical_nodes_in_step_stay_on_one_uncoupled_nodes_trajectory() {
    const N: usize = 6;
    let (dt, steps) = (0.01, 3000);
    let w: Vec<Vec<f64>> = (0..N)
        .map(|i| {
            (0..N)
                .map(|j| 0.2 + 0.1 * ((2 * i + 5 * j) % 7) as f64)
                .collect()
        })
        .collect();
    assert_ne!(w[0][1], w[1][0], "W must be asymmetric");
    let coupled = wiring(Coupling::Diffusive, &w, &vec![vec![0; N]; N]);
    let alone = Wiring::new(Coupling::Diffusive, &[vec![]]);
    let node = |l: usize| NodeInit {
        params: NodeParams::from_user(1.0, -5.0 + 0.5 * l as f64, 15.0, 1.0, 0.0, 0.0),
        sigma: [0.0; 2],
        r0_khz: 0.1,
        v0: -2.0 + 0.1 * l as f64,
        stream: node_stream(0, l),
    };
    let schedule = net_schedule(dt, steps, 500, 1, [false; 2], 0);
    let (count, rows) = (schedule.base.stat_count(), schedule.base.trace_rows());
    let k = [2.0; NET_LANES];
    let single = net_batch(&alone, dt, [0.0; NET_LANES], |_, l| node(l), |_, _| 0.0);
    let in_step = net_batch(&coupled, dt, k, |_, l| node(l), |_, _| 0.0);
    let off_step = net_batch(
        &coupled,
        dt,
        k,
        |i, l| NodeInit {
            v0: node(l).v0 + if i == 0 { 0.1 } else { 0.0 },
            ..node(l)
        },
        |_, _| 0.0,
    );
    for isa in Isa::available() {
        for method in METHODS {
            let (one, one_trace) = run_net(isa, method, &schedule, &alone, &single);
            let (all, all_trace) = run_net(isa, method, &schedule, &coupled, &in_step);
            let (_, off_trace) = run_net(isa, method, &schedule, &coupled, &off_step);
            for l in 0..NET_LANES {
                let one_node: Vec<f64> = (0..rows)
                    .flat_map(|row| <[f64; 2]>::from(traced_khz(&one_trace, 1, row, 0, l)))
                    .collect();
                let (res_one, slot_one) = node_result(&one, 0, l);
                for i in 0..N {
                    let what = format!("{isa:?} {method:?}: node {i}, run {l}");
                    let (res, slot) = node_result(&all, i, l);
                    assert_same_bits(
                        &slot_values(res, slot, count),
                        &slot_values(res_one, slot_one, count),
                        &format!("{what}: final state and statistics"),
                    );
                    let node_trace: Vec<f64> = (0..rows)
                        .flat_map(|row| {
                            <[f64; 2]>::from(traced_khz(&all_trace, coupled.groups(), row, i, l))
                        })
                        .collect();
                    assert_same_bits(&node_trace, &one_node, &format!("{what}: trace"));
                }
                let moved = (0..rows)
                    .map(|row| {
                        let (r, _) = traced_khz(&off_trace, coupled.groups(), row, N - 1, l);
                        (r - one_node[2 * row]).abs()
                    })
                    .fold(0.0, f64::max);
                assert!(
                    moved > 1e-4,
                    "{isa:?} {method:?}, run {l}: node {} stayed within {moved:e} kHz of the \
                     uncoupled trajectory although node 0 started off step",
                    N - 1
                );
            }
        }
    }
}

/// A network integrated one node at a time in plain scalar f64 (no lanes, no ring, no
/// fused arithmetic): the reference for the delays.
struct ScalarNet<'a> {
    params: &'a [NodeParams],
    w: &'a [Vec<f64>],
    delay_steps: &'a [Vec<usize>],
    /// Coupling strength.
    k: f64,
    /// Diffusive coupling (`W_ij (x_j - r_i)`) instead of additive (`W_ij x_j`).
    diffusive: bool,
    r0_khz: &'a [f64],
    v0: &'a [f64],
    /// Each node's rate before t = 0, kHz.
    history_khz: &'a [f64],
    dt: f64,
    steps: usize,
}

impl ScalarNet<'_> {
    /// `[r (kHz), v]` of every node at every step `0..=steps`. Over step `n` node `i` is
    /// driven by `k sum_j W_ij x_j`, held over the step, where `x_j` is `r_j(n - d_ij)`, or
    /// the history `h_j` when `n - d_ij < 0`; with `history_at_lag_zero`, also when
    /// `n - d_ij = 0` (the rule the kernel must not follow: it tells the two apart).
    fn trajectory(&self, method: Method, history_at_lag_zero: bool) -> Vec<Vec<[f64; 2]>> {
        let n = self.params.len();
        let mut states = vec![(0..n).map(|i| [self.r0_khz[i], self.v0[i]]).collect()];
        for step in 0..self.steps {
            let now: &Vec<[f64; 2]> = &states[step];
            let next = (0..n)
                .map(|i| {
                    let mut c = 0.0;
                    for j in (0..n).filter(|&j| j != i) {
                        let d = self.delay_steps[i][j];
                        let past = if step < d || (history_at_lag_zero && step == d) {
                            self.history_khz[j]
                        } else {
                            states[step - d][j][0]
                        };
                        let x = if self.diffusive {
                            past - now[i][0]
                        } else {
                            past
                        };
                        c += self.w[i][j] * x;
                    }
                    let [r, v] = now[i];
                    scalar_step(method, &self.params[i], r, v, self.k * c, self.dt)
                })
                .collect();
            states.push(next);
        }
        states
    }
}

/// The MPR right-hand side in kernel units (r in kHz, t in ms) with a rate input `c`
/// (kHz/ms): `(dr/dt, dv/dt)`.
fn mpr_rhs(p: &NodeParams, r: f64, v: f64, c: f64) -> (f64, f64) {
    let tau = p.tau_ms;
    let pi_tau_r = PI * tau * r;
    (
        p.delta / (PI * tau * tau) + 2.0 * r * v / tau + c,
        (v * v + p.eta + p.j * tau * r - pi_tau_r * pi_tau_r) / tau,
    )
}

/// One step of exponential Euler (both variables with `h = dt phi1(2 v dt / tau)`,
/// `phi1(z) = (e^z - 1)/z` by std's `exp_m1`) or of classical RK4, the input held.
fn scalar_step(method: Method, p: &NodeParams, r: f64, v: f64, c: f64, dt: f64) -> [f64; 2] {
    match method {
        Method::ExpEuler => {
            let (f_r, f_v) = mpr_rhs(p, r, v, c);
            let z = 2.0 * v * dt / p.tau_ms;
            let phi1 = if z == 0.0 { 1.0 } else { z.exp_m1() / z };
            let h = dt * phi1;
            [r + h * f_r, v + h * f_v]
        }
        Method::Rk4 => {
            let (k1r, k1v) = mpr_rhs(p, r, v, c);
            let (k2r, k2v) = mpr_rhs(p, r + 0.5 * dt * k1r, v + 0.5 * dt * k1v, c);
            let (k3r, k3v) = mpr_rhs(p, r + 0.5 * dt * k2r, v + 0.5 * dt * k2v, c);
            let (k4r, k4v) = mpr_rhs(p, r + dt * k3r, v + dt * k3v, c);
            [
                r + dt / 6.0 * (k1r + 2.0 * k2r + 2.0 * k3r + k4r),
                v + dt / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v),
            ]
        }
        other => panic!("no scalar reference for {other:?}"),
    }
}

/// Largest `|a - b| / max(1, |b|)` over two trajectories.
fn worst_scaled(a: &[Vec<[f64; 2]>], b: &[Vec<[f64; 2]>]) -> f64 {
    a.iter()
        .flatten()
        .flatten()
        .zip(b.iter().flatten().flatten())
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f64::max)
}

/// Additive coupling with delays of 0 to 40 steps and a zero history (not the initial
/// rates, so what the sources read before their delay has passed matters), tau = 0.8 ms,
/// a different eta per node and a different k per run: every node's r (kHz) and v at every
/// step within 1e-12 * max(1, |x|) of the scalar reference, for exponential Euler and RK4
/// on every path. The reference reads `r_j(n - d)` from `n - d = 0` on (the initial rate)
/// and the history before; the test checks that reading the history at `n - d = 0` too,
/// or a history equal to the initial rates, would have been told apart. (brainmass 0.1.1
/// reads the history at `n - d = 0` too, its buffer never holding the initial state; the
/// two rules agree when the history is the initial rates, as in the brainmass cases
/// above.)
#[test]
fn delays_match_an_independent_scalar_implementation() {
    delays_match_the_scalar_reference(d5(), Coupling::Additive);
}

/// The same with every delay at least 16 steps (D5 + 16 off the diagonal), additive and
/// diffusive: the kernel then reads the delayed sums of 16 steps in one pass (its blocked
/// form, with the diffusive term as `r_i sum_j W_ij`), which must agree with the reference
/// as well.
#[test]
fn long_delays_read_in_blocks_match_the_scalar_reference() {
    let d: Vec<Vec<usize>> = d5()
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(|(j, &d)| if i == j { 0 } else { d + 16 })
                .collect()
        })
        .collect();
    delays_match_the_scalar_reference(d.clone(), Coupling::Additive);
    delays_match_the_scalar_reference(d, Coupling::Diffusive);
}

fn delays_match_the_scalar_reference(d: Vec<Vec<usize>>, coupling: Coupling) {
    const N: usize = 5;
    let (dt, steps) = (0.005, 2000);
    let w = w5();
    let params: Vec<NodeParams> = (0..N)
        .map(|i| NodeParams::from_user(0.8, -4.6 + 0.9 * i as f64, 14.0, 0.9, 0.0, 0.0))
        .collect();
    let r0_khz: Vec<f64> = (0..N).map(|i| 0.05 + 0.02 * i as f64).collect();
    let v0: Vec<f64> = (0..N).map(|i| -1.8 + 0.25 * i as f64).collect();
    let history_khz = vec![0.0; N];
    let k: NetLanes = std::array::from_fn(|l| 0.2 + 0.1 * l as f64);
    let wiring = wiring(coupling, &w, &d);
    let batch = net_batch(
        &wiring,
        dt,
        k,
        |i, l| NodeInit {
            params: params[i],
            sigma: [0.0; 2],
            r0_khz: r0_khz[i],
            v0: v0[i],
            stream: node_stream(i, l),
        },
        |i, _| history_khz[i],
    );
    let schedule = net_schedule(dt, steps as u64, 1, 1, [false; 2], 0);
    for method in [Method::ExpEuler, Method::Rk4] {
        let references: Vec<_> = k
            .iter()
            .map(|&k| {
                let net = ScalarNet {
                    params: &params,
                    w: &w,
                    delay_steps: &d,
                    k,
                    diffusive: coupling == Coupling::Diffusive,
                    r0_khz: &r0_khz,
                    v0: &v0,
                    history_khz: &history_khz,
                    dt,
                    steps,
                };
                let want = net.trajectory(method, false);
                let at_zero = net.trajectory(method, true);
                let from_r0 = ScalarNet {
                    history_khz: &r0_khz,
                    ..net
                }
                .trajectory(method, false);
                (want, at_zero, from_r0)
            })
            .collect();
        let (want, at_zero, from_r0) = &references[0];
        let apart = (worst_scaled(at_zero, want), worst_scaled(from_r0, want));
        assert!(
            apart.0 > 1e-9 && apart.1 > 1e-6,
            "{method:?}: the case cannot tell the rules apart: {apart:?}"
        );
        eprintln!(
            "{method:?}: the reference moves by {:.2e} with the history read at lag zero, by \
             {:.2e} with the initial rates as history",
            apart.0, apart.1
        );
        for isa in Isa::available() {
            let (_, trace) = run_net(isa, method, &schedule, &wiring, &batch);
            for (l, (want, at_zero, _)) in references.iter().enumerate() {
                let got: Vec<Vec<[f64; 2]>> = (0..=steps)
                    .map(|row| {
                        (0..N)
                            .map(|i| traced_khz(&trace, wiring.groups(), row, i, l).into())
                            .collect()
                    })
                    .collect();
                let worst = worst_scaled(&got, want);
                eprintln!("{method:?} {isa:?} run {l}: worst scaled error {worst:.2e}");
                if worst > 1e-12 {
                    let (step, i) = (0..=steps)
                        .flat_map(|s| (0..N).map(move |i| (s, i)))
                        .find(|&(s, i)| {
                            (0..2).any(|x| {
                                (got[s][i][x] - want[s][i][x]).abs() / want[s][i][x].abs().max(1.0)
                                    > 1e-12
                            })
                        })
                        .expect("a step beyond the tolerance");
                    panic!(
                        "{method:?} {isa:?} run {l}: first beyond 1e-12 at step {step}, node \
                         {i}: kernel {:?}, reference {:?}; worst {worst:e}; the kernel's worst \
                         against the history read at lag zero too: {:e}",
                        got[step][i],
                        want[step][i],
                        worst_scaled(&got, at_zero)
                    );
                }
            }
        }
    }
}

/// Pearson correlation of two equally long series, two-pass (means first).
fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Functional connectivity with `fc_stride = 3` of a noisy five-node network (white noise
/// on v, sigma 0.3/sqrt(ms); diffusive coupling with delays): the kernel's correlations
/// within 1e-10 of the Pearson correlations of the traced rates at the sampled steps
/// (`first_stat_step`, then every third step) computed here in two passes, and the
/// statistics of the mean rate over the nodes within 1e-12 (relative to max(1e-3 kHz,
/// |x|)) of those of the traced rates' mean, for heun and exponential Euler on every path,
/// in two runs.
#[test]
fn fc_and_mean_rate_match_a_direct_computation_from_the_trace() {
    const N: usize = 5;
    let (dt, steps, first_stat_step, fc_stride) = (0.01, 3000, 101, 3);
    let wiring = wiring(Coupling::Diffusive, &w5(), &d5());
    let batch = net_batch(
        &wiring,
        dt,
        std::array::from_fn(|l| 0.5 + 0.1 * l as f64),
        |i, l| NodeInit {
            params: NodeParams::from_user(1.0, -5.0 + 0.4 * i as f64, 15.0, 1.0, 0.0, 0.0),
            sigma: [0.0, 0.3],
            r0_khz: 0.05 + 0.01 * i as f64,
            v0: -2.0,
            stream: node_stream(i, l),
        },
        |_, _| 0.05,
    );
    let schedule = net_schedule(dt, steps, first_stat_step, 1, [false, true], fc_stride);
    let sampled: Vec<usize> = (first_stat_step as usize..=steps as usize)
        .step_by(fc_stride as usize)
        .collect();
    for isa in Isa::available() {
        for method in [Method::Heun, Method::ExpEuler] {
            let (result, trace) = run_net(isa, method, &schedule, &wiring, &batch);
            let fc = result.fc.as_ref().expect("fc_stride > 0 gives FC");
            assert_eq!(
                fc.count,
                sampled.len() as u64,
                "{isa:?} {method:?}: samples"
            );
            for l in [0, 5] {
                let what = format!("{isa:?} {method:?}, run {l}");
                let rate = |i: usize, row: usize| traced_khz(&trace, wiring.groups(), row, i, l).0;
                let series: Vec<Vec<f64>> = (0..N)
                    .map(|i| sampled.iter().map(|&row| rate(i, row)).collect())
                    .collect();
                let want: Vec<f64> = (0..N)
                    .flat_map(|i| (i + 1..N).map(move |j| (i, j)))
                    .map(|(i, j)| pearson(&series[i], &series[j]))
                    .collect();
                let got = fc.correlations(l);
                assert_eq!(got.len(), N * (N - 1) / 2, "{what}: pairs");
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(g, w)| (g - w).abs())
                    .fold(0.0, f64::max);
                eprintln!("{what}: FC {want:.3?}, largest difference {worst:.1e}");
                for (p, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(w.is_finite(), "{what}: pair {p} has no correlation");
                    assert!(
                        (g - w).abs() <= 1e-10,
                        "{what}: pair {p}: FC {g} vs direct {w}"
                    );
                }
                let mean: Vec<f64> = (first_stat_step as usize..=steps as usize)
                    .map(|row| (0..N).map(|i| rate(i, row)).sum::<f64>() / N as f64)
                    .collect();
                let n = mean.len() as f64;
                let m = mean.iter().sum::<f64>() / n;
                let std = (mean.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt();
                let lo = mean.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let s = result.mean_rate.summary(l, schedule.base.stat_count());
                for (name, g, w) in [
                    ("mean", s.mean, m),
                    ("std", s.std, std),
                    ("min", s.min, lo),
                    ("max", s.max, hi),
                ] {
                    assert!(
                        (g - w).abs() <= 1e-12 * w.abs().max(1e-3),
                        "{what}: mean rate {name} {g} vs direct {w} (kHz)"
                    );
                }
            }
        }
    }
}

/// Everything the kernel produced about run `l` of a network of `nodes` nodes, as bits:
/// each node's final state, statistics, finite steps and trace, the mean rate's statistics
/// and the FC.
fn run_bits(result: &NetResult, trace: &[f64], nodes: usize, l: usize, count: u64) -> Vec<u64> {
    let groups = result.groups.len();
    let rows = trace.len() / (groups * 2 * LANES);
    let mut bits = Vec::new();
    for i in 0..nodes {
        let (res, slot) = node_result(result, i, l);
        bits.extend(slot_values(res, slot, count).map(f64::to_bits));
        bits.push(res.finite_steps[slot]);
        for row in 0..rows {
            let (r, v) = traced_khz(trace, groups, row, i, l);
            bits.extend([r.to_bits(), v.to_bits()]);
        }
    }
    let s = result.mean_rate.summary(l, count);
    bits.extend([s.mean, s.std, s.min, s.max].map(f64::to_bits));
    if let Some(fc) = &result.fc {
        bits.extend(fc.correlations(l).into_iter().map(f64::to_bits));
    }
    bits
}

/// A batch run twice gives the same bits in every run; changing run 3's eta (mildly, and
/// to -1000, which takes exponential Euler's v out of phi1's series range so that every
/// group takes the general form) leaves run 0's bits alone (traces, statistics, mean rate,
/// FC) and changes run 3's: for every method on every path, with white noise on r and v
/// for the methods that take it.
#[test]
fn reruns_and_other_runs_leave_a_runs_bits_alone() {
    const N: usize = 5;
    let (dt, steps) = (0.01, 2500);
    let wiring = wiring(Coupling::Diffusive, &w5(), &d5());
    let batch = |eta_3: Option<f64>, sigma: [f64; 2]| {
        net_batch(
            &wiring,
            dt,
            std::array::from_fn(|l| 0.5 + 0.1 * l as f64),
            |i, l| {
                let eta = -5.0 + 0.4 * i as f64 + 0.1 * l as f64;
                NodeInit {
                    params: NodeParams::from_user(
                        1.0,
                        eta_3.filter(|_| l == 3).unwrap_or(eta),
                        15.0,
                        1.0,
                        0.0,
                        0.0,
                    ),
                    sigma,
                    r0_khz: 0.05 + 0.01 * i as f64,
                    v0: -2.0 + 0.1 * l as f64,
                    stream: node_stream(i, l),
                }
            },
            |i, _| 0.02 + 0.01 * i as f64,
        )
    };
    for isa in Isa::available() {
        for method in METHODS {
            let noisy = NOISY_METHODS.contains(&method);
            let white = [noisy; 2];
            let sigma = if noisy { [0.005, 0.3] } else { [0.0; 2] };
            let schedule = net_schedule(dt, steps, 300, 1, white, 4);
            let count = schedule.base.stat_count();
            let bits = |(result, trace): &(NetResult, Vec<f64>), l: usize| {
                run_bits(result, trace, N, l, count)
            };
            let base = run_net(isa, method, &schedule, &wiring, &batch(None, sigma));
            let again = run_net(isa, method, &schedule, &wiring, &batch(None, sigma));
            for l in 0..NET_LANES {
                assert!(
                    bits(&base, l) == bits(&again, l),
                    "{isa:?} {method:?}: run {l} changed on a rerun"
                );
            }
            for eta_3 in [-4.3, -1000.0] {
                let other = run_net(isa, method, &schedule, &wiring, &batch(Some(eta_3), sigma));
                assert!(
                    bits(&base, 0) == bits(&other, 0),
                    "{isa:?} {method:?}: run 0 changed with run 3's eta set to {eta_3}"
                );
                assert!(
                    bits(&base, 3) != bits(&other, 3),
                    "{isa:?} {method:?}: run 3 did not change with its eta set to {eta_3}"
                );
            }
        }
    }
}

/// Every method's instance of the network kernel polls the stop token: asked before it
/// starts, it returns `Stopped` at the first poll, having traced exactly the initial state
/// and POLL_STEPS steps.
#[test]
fn a_stop_requested_beforehand_ends_the_network_kernel_at_the_first_poll() {
    let dt = 0.01;
    let wiring = wiring(Coupling::Diffusive, &w5(), &d5());
    let batch = net_batch(
        &wiring,
        dt,
        [1.0; NET_LANES],
        |i, l| NodeInit {
            params: NodeParams::from_user(1.0, -5.0, 15.0, 1.0, 0.0, 0.0),
            sigma: [0.0; 2],
            r0_khz: 0.05 + 0.01 * i as f64,
            v0: -2.0,
            stream: node_stream(i, l),
        },
        |_, _| 0.05,
    );
    let schedule = net_schedule(dt, 4 * POLL_STEPS, 1, 1, [false; 2], 1);
    let stop = StopToken::new();
    stop.request();
    for isa in Isa::available() {
        for method in METHODS {
            let mut trace = Vec::new();
            let got = integrate_network(isa, method, &schedule, &wiring, &batch, &mut trace, &stop);
            assert_eq!(got.err(), Some(Stopped), "{isa:?} {method:?}");
            let rows = trace.len() / (wiring.groups() * 2 * LANES);
            assert_eq!(rows as u64, POLL_STEPS + 1, "{isa:?} {method:?}");
        }
    }
}

//! Networks of MPR nodes: the network kernel against brainmass 0.1.1's `Network`
//! (tests/data/network: two reference cases with every node's r and v at every step), and
//! against what must hold whatever the reference: k = 0 gives independent single nodes bit
//! for bit, identical nodes in step stay on one uncoupled node's trajectory, and delays
//! against an independent scalar implementation written here.

use mpr_sweep::integrate::network::{
    Coupling, NET_LANES, NODES_PER_GROUP, NetBatch, NetResult, NetSchedule, NodeInit, Wiring,
    integrate_network,
};
use mpr_sweep::integrate::{Isa, LANES, Method, Schedule, StopToken, Xoshiro};
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
        let n = self.w.len();
        let incoming: Vec<Vec<(usize, f64, usize)>> = (0..n)
            .map(|i| {
                (0..n)
                    .filter(|&j| j != i && self.w[i][j] != 0.0)
                    .map(|j| (j, self.w[i][j], self.delay_steps[i][j]))
                    .collect()
            })
            .collect();
        Wiring::new(self.coupling, &incoming)
    }

    /// Every lane runs this network; returns the result and the trace (every step).
    fn run(&self, isa: Isa) -> (NetResult, Vec<f64>) {
        let wiring = self.wiring();
        let n = self.w.len();
        let mut batch = NetBatch::new(wiring.groups());
        for l in 0..NET_LANES {
            for i in 0..wiring.groups() * NODES_PER_GROUP {
                let src = if i < n { i } else { 0 };
                let node = NodeInit {
                    params: self.nodes[src],
                    sigma: [0.0, 0.0],
                    r0_khz: self.r0_hz[src] / HZ_PER_KHZ,
                    v0: self.v0[src],
                    stream: Xoshiro::from_run(0, l as u64),
                };
                batch.set_node(i, l, &node, self.dt);
            }
        }
        batch.k = [self.k; NET_LANES];
        batch.history = self
            .history_hz
            .iter()
            .map(|h| [h / HZ_PER_KHZ; NET_LANES])
            .collect();
        let schedule = NetSchedule {
            base: Schedule {
                dt: self.dt,
                steps: self.steps,
                first_stat_step: 1,
                trace_stride: 1,
                white: [false; 2],
            },
            fc_stride: 0,
        };
        let mut trace = Vec::new();
        let result = integrate_network(
            isa,
            self.method,
            &schedule,
            &wiring,
            &batch,
            &mut trace,
            &StopToken::new(),
        )
        .expect("nobody asked to stop");
        (result, trace)
    }
}

/// (r in Hz, v) of node `i`, lane `l` at trace row `row` of a network with `groups` groups.
fn traced(trace: &[f64], groups: usize, row: usize, i: usize, l: usize) -> (f64, f64) {
    let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
    let base = row * groups * 2 * LANES + g * 2 * LANES + q * NET_LANES + l;
    (trace[base] * HZ_PER_KHZ, trace[base + LANES])
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

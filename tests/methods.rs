//! The integration methods against independent references (DESIGN.md sections 2, 3, 9).
//!
//! 1. brainmass 0.1.1's rk4 trajectory (tests/data, case "f").
//! 2. A straightforward scalar f64 implementation of the model and of the four schemes,
//!    written here from DESIGN.md section 2, row by row against the library's traces.
//! 3. Time-varying inputs (step, pulse, sine on I_v and I_r), held at the step's start.
//! 4. The stochastic schemes with white (and OU) noise, reproducing each run's random stream.
//! 5. The OU process (stationary std and autocorrelation) and an OU-driven run against the
//!    linear-noise (3-D Lyapunov) prediction.
//! 6. `dt_ms` as an axis: convergence orders of rk4, heun, euler and exp_euler.
//! 7. The fixed-point columns against the closed forms of DESIGN.md section 9.
//!
//! Every library result goes through the public path: spec text → `spec::parse` →
//! `Plan::new` → `Simulator::simulate`, on every instruction-set path this CPU has.
//! Units: the spec and the results use r in Hz; the references integrate r in kHz (1/ms).

mod common;

use std::f64::consts::PI;

use mpr_sweep::integrate::Xoshiro;
use mpr_sweep::integrate::math::Unfused;
use mpr_sweep::integrate::{Isa, LANES, LaneNormals, LaneRng, Method, Ou};
use mpr_sweep::model::{Settled, StableStates};
use mpr_sweep::simulate::TracePoint;
use mpr_sweep::spec::Slot;

use common::closed_forms::{
    FixedPoint, bistable_interval, cusp, fixed_points, jacobian, saddle_node_eta, saddle_node_j,
    saddle_node_xs,
};
use common::linalg::{Mat, add, identity, inverse, lyapunov, matmul, stein, transpose};
use common::sim::{Finished, finished, isas, mean_run_variance, simulate};

// ---------------------------------------------------------------------------------------
// Driving the library
// ---------------------------------------------------------------------------------------

/// A list of numbers as a YAML flow sequence; `{}` prints the shortest text that parses
/// back to the same f64, so the spec carries every value exactly.
fn yaml_list(xs: &[f64]) -> String {
    let items: Vec<String> = xs.iter().map(|x| format!("{x}")).collect();
    format!("[{}]", items.join(", "))
}

/// Relative error, with a floor of 1e-3 on the scale (r in Hz and v here are >> 1e-3).
fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-3)
}

// ---------------------------------------------------------------------------------------
// The scalar reference: DESIGN.md section 2, written out plainly
// ---------------------------------------------------------------------------------------

/// One node in the units of DESIGN.md section 2 (tau in ms, eta, J, delta dimensionless).
#[derive(Debug, Clone, Copy)]
struct Node {
    tau: f64,
    eta: f64,
    j: f64,
    delta: f64,
}

impl Node {
    /// `(dr/dt, dv/dt)` with r in kHz, I_r in kHz/ms:
    /// dr/dt = delta/(pi tau^2) + 2 r v/tau + I_r,
    /// dv/dt = (v^2 + eta + J tau r - (pi tau r)^2 + I_v)/tau.
    fn f(&self, r: f64, v: f64, (i_r, i_v): (f64, f64)) -> (f64, f64) {
        let tau = self.tau;
        let dr = self.delta / (PI * tau * tau) + 2.0 * r * v / tau + i_r;
        let dv = (v * v + self.eta + self.j * tau * r - (PI * tau * r).powi(2) + i_v) / tau;
        (dr, dv)
    }
}

/// phi1(z) = expm1(z)/z, phi1(0) = 1 (std's expm1 is accurate for tiny z).
fn phi1(z: f64) -> f64 {
    if z == 0.0 { 1.0 } else { z.exp_m1() / z }
}

/// When a step evaluates time-varying inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hold {
    /// The contract: every stage uses the input at the step's start t_k.
    Start,
    /// A wrong variant: the input at the step's end t_{k+1}.
    End,
    /// A wrong variant for rk4: each stage at its own time (t, t + dt/2, t + dt/2, t + dt).
    Stages,
    /// A wrong variant: the step's start time from a clock accumulated as t += dt.
    Accumulated,
}

/// One step from `(r, v)` at time `t`; `input(t)` gives (I_r in kHz/ms, I_v), `dw` the
/// white-noise increments (added after the deterministic step; heun uses the same
/// increment in predictor and corrector).
#[allow(clippy::too_many_arguments)]
fn step(
    method: Method,
    node: &Node,
    dt: f64,
    t: f64,
    (r, v): (f64, f64),
    input: &dyn Fn(f64) -> (f64, f64),
    hold: Hold,
    (dw_r, dw_v): (f64, f64),
) -> (f64, f64) {
    let at = |stage_t: f64| match hold {
        Hold::Start | Hold::Accumulated => input(t),
        Hold::End => input(t + dt),
        Hold::Stages => input(stage_t),
    };
    match method {
        Method::Euler => {
            let (fr, fv) = node.f(r, v, at(t));
            (r + dt * fr + dw_r, v + dt * fv + dw_v)
        }
        Method::Heun | Method::Rk2 => {
            let (fr, fv) = node.f(r, v, at(t));
            let (pr, pv) = (r + dt * fr + dw_r, v + dt * fv + dw_v);
            let (gr, gv) = node.f(pr, pv, at(t + dt));
            (
                r + dt / 2.0 * (fr + gr) + dw_r,
                v + dt / 2.0 * (fv + gv) + dw_v,
            )
        }
        Method::ExpEuler => {
            let (fr, fv) = node.f(r, v, at(t));
            let a = 2.0 * v / node.tau;
            let h = dt * phi1(a * dt);
            (r + h * fr + dw_r, v + h * fv + dw_v)
        }
        Method::Rk4 => {
            assert_eq!((dw_r, dw_v), (0.0, 0.0), "rk4 takes no white noise");
            let k1 = node.f(r, v, at(t));
            let k2 = node.f(r + dt / 2.0 * k1.0, v + dt / 2.0 * k1.1, at(t + dt / 2.0));
            let k3 = node.f(r + dt / 2.0 * k2.0, v + dt / 2.0 * k2.1, at(t + dt / 2.0));
            let k4 = node.f(r + dt * k3.0, v + dt * k3.1, at(t + dt));
            (
                r + dt / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0),
                v + dt / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1),
            )
        }
        Method::Dopri5 => {
            assert_eq!((dw_r, dw_v), (0.0, 0.0), "dopri5 takes no white noise");
            // Dormand & Prince (1980), Table 2: nodes c, stage matrix a, fifth-order b.
            let c = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0];
            let a: [&[f64]; 6] = [
                &[],
                &[1.0 / 5.0],
                &[3.0 / 40.0, 9.0 / 40.0],
                &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
                &[
                    19372.0 / 6561.0,
                    -25360.0 / 2187.0,
                    64448.0 / 6561.0,
                    -212.0 / 729.0,
                ],
                &[
                    9017.0 / 3168.0,
                    -355.0 / 33.0,
                    46732.0 / 5247.0,
                    49.0 / 176.0,
                    -5103.0 / 18656.0,
                ],
            ];
            let b = [
                35.0 / 384.0,
                0.0,
                500.0 / 1113.0,
                125.0 / 192.0,
                -2187.0 / 6784.0,
                11.0 / 84.0,
            ];
            let mut k: Vec<(f64, f64)> = Vec::new();
            for i in 0..6 {
                let (mut sr, mut sv) = (r, v);
                for (j, aij) in a[i].iter().enumerate() {
                    sr += dt * aij * k[j].0;
                    sv += dt * aij * k[j].1;
                }
                k.push(node.f(sr, sv, at(t + c[i] * dt)));
            }
            (
                r + dt * (0..6).map(|i| b[i] * k[i].0).sum::<f64>(),
                v + dt * (0..6).map(|i| b[i] * k[i].1).sum::<f64>(),
            )
        }
        Method::Dop853 => unreachable!("dop853 has no fixed step (tests/adaptive.rs tests it)"),
    }
}

/// Noise of a reference run, in user units (DESIGN.md section 2).
#[derive(Debug, Clone, Copy, Default)]
struct Noise {
    /// White-noise sigma on (r_hz, v): Hz/sqrt(ms) and 1/sqrt(ms).
    white: [Option<f64>; 2],
    /// OU (sigma, tau_ms) on (I_r, I_v): sigma in Hz/ms and dimensionless.
    ou: [Option<(f64, f64)>; 2],
    /// The run's stream: (sweep.seed, run_id).
    stream: (u64, u64),
    /// The stream positioned after drawing the initial values, when they are drawn.
    after_init: Option<Xoshiro>,
    /// A wrong variant: white v drawn before white r.
    swapped: bool,
}

/// A run's standard normals: the ziggurat sequence of its stream (src/integrate/stream.rs).
struct Normals {
    rng: Xoshiro,
}

impl Normals {
    fn new(seed: u64, run_id: u64) -> Normals {
        Normals {
            rng: Xoshiro::from_run(seed, run_id),
        }
    }

    fn next(&mut self) -> f64 {
        self.rng.normal()
    }
}

/// Everything a reference run needs.
struct RefRun<'a> {
    node: Node,
    method: Method,
    dt: f64,
    steps: usize,
    r0_hz: f64,
    v0: f64,
    /// (I_r in Hz/ms, I_v) at time t (ms), as the user gives them.
    input: &'a dyn Fn(f64) -> (f64, f64),
    hold: Hold,
    noise: Noise,
}

/// Rows (r_hz, v): the initial state, then the state after every step.
fn reference(run: &RefRun) -> Vec<(f64, f64)> {
    let dt = run.dt;
    // User units to kernel units: r (and I_r, sigma_r) from Hz to kHz.
    let scale = [1e-3, 1.0];
    let mut rows = Vec::with_capacity(run.steps + 1);
    rows.push((run.r0_hz, run.v0));
    let mut state = (run.r0_hz / 1000.0, run.v0);
    let mut normals = Normals::new(run.noise.stream.0, run.noise.stream.1);
    if let Some(rng) = run.noise.after_init {
        normals.rng = rng;
    }
    let mut ou = [0.0; 2];
    let mut clock = 0.0;
    for k in 0..run.steps {
        let t = if run.hold == Hold::Accumulated {
            clock
        } else {
            k as f64 * dt
        };
        clock += dt;
        // Per step: white r, white v (the increments), the step, then OU r, OU v.
        let mut dw = [0.0; 2];
        let order = if run.noise.swapped { [1, 0] } else { [0, 1] };
        for x in order {
            if let Some(sigma) = run.noise.white[x] {
                dw[x] = sigma * scale[x] * dt.sqrt() * normals.next();
            }
        }
        // The OU value of the step's start is held over the whole step.
        let held_ou = ou;
        let input = move |t: f64| {
            let (i_r, i_v) = (run.input)(t);
            (i_r / 1000.0 + held_ou[0], i_v + held_ou[1])
        };
        state = step(
            run.method,
            &run.node,
            dt,
            t,
            state,
            &input,
            run.hold,
            (dw[0], dw[1]),
        );
        for (x, value) in ou.iter_mut().enumerate() {
            if let Some((sigma, tau)) = run.noise.ou[x] {
                let e = (-dt / tau).exp();
                *value = *value * e + sigma * scale[x] * (1.0 - e * e).sqrt() * normals.next();
            }
        }
        rows.push((1000.0 * state.0, state.1));
    }
    rows
}

fn no_input(_: f64) -> (f64, f64) {
    (0.0, 0.0)
}

/// Worst relative error of a library trace against reference rows (after checking the
/// row count and times), the row where it occurs, and how many rows agree bit for bit.
fn trace_error(got: &[TracePoint], want: &[(f64, f64)], dt: f64) -> (f64, usize, usize) {
    assert_eq!(got.len(), want.len(), "trace rows");
    let (mut worst, mut at, mut bitwise) = (0.0f64, 0, 0);
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.t_ms - k as f64 * dt).abs() <= 1e-12 * (k as f64 * dt).max(1.0),
            "row {k}: t {} ms, expected {} ms",
            g.t_ms,
            k as f64 * dt
        );
        let err = rel_err(g.r_hz, w.0).max(rel_err(g.v, w.1));
        if err > worst {
            (worst, at) = (err, k);
        }
        bitwise += (g.r_hz.to_bits() == w.0.to_bits() && g.v.to_bits() == w.1.to_bits()) as usize;
    }
    (worst, at, bitwise)
}

/// Asserts a trace matches the reference within `tol`; returns the worst error.
fn assert_trace(label: &str, got: &[TracePoint], want: &[(f64, f64)], dt: f64, tol: f64) -> f64 {
    let (worst, at, bitwise) = trace_error(got, want, dt);
    println!(
        "{label}: worst relative error {worst:.2e} (row {at}), {bitwise}/{} rows bitwise equal",
        want.len()
    );
    assert!(
        worst <= tol,
        "{label}: row {at}: library (r_hz {}, v {}) vs reference (r_hz {}, v {}): relative \
         error {worst:.3e} > {tol:e}",
        got[at].r_hz,
        got[at].v,
        want[at].0,
        want[at].1
    );
    worst
}

// (1. brainmass's rk4 trajectory, case "f", is checked with the other reference cases in
// tests/reference.rs.)

// ---------------------------------------------------------------------------------------
// 2. The deterministic schemes against the scalar reference
// ---------------------------------------------------------------------------------------

/// Same arithmetic up to operation order and rounding (the library folds constants such as
/// delta/(pi tau^2) + I_r, fuses multiply-adds on the AVX2 path, and uses its own phi1
/// within 2 ulp): differences of ~1e-16 per step, which a contracting trajectory does not
/// amplify over 2000 steps.
const TOL_SAME_ARITHMETIC: f64 = 1e-12;

const METHODS: [Method; 6] = Method::FIXED_STEP;

#[test]
fn deterministic_schemes_match_the_scalar_reference() {
    // A well-conditioned point (the paper's eta, J, delta; start at 100 Hz, v = -2), at
    // tau = 1 and 2.5, with and without constant inputs on r (Hz/ms) and v.
    let (dt, duration) = (0.01, 20.0);
    for method in METHODS {
        let text = format!(
            "model: {{tau_ms: [1, 2.5], eta: -5, J: 15, delta: 1}}\n\
             init: {{r_hz: 100, v: -2}}\n\
             input: {{r_hz: [0, 20], v: [0, 0.3]}}\n\
             simulation: {{dt_ms: {dt}, duration_ms: {duration}, transient_ms: 5, method: {}}}\n\
             output: {{traces: {{every_ms: {dt}, runs: all}}}}\n",
            method.name()
        );
        for isa in isas() {
            let results = simulate(&text, isa);
            assert_eq!(results.len(), 8);
            let mut seen = Vec::new();
            for res in &results {
                let values = res.row.values;
                let (tau, i_r, i_v) = (
                    values.get(Slot::TauMs),
                    values.get(Slot::InputRHz),
                    values.get(Slot::InputV),
                );
                seen.push((tau, i_r, i_v));
                let input = move |_: f64| (i_r, i_v);
                let want = reference(&RefRun {
                    node: Node {
                        tau,
                        eta: -5.0,
                        j: 15.0,
                        delta: 1.0,
                    },
                    method,
                    dt,
                    steps: 2000,
                    r0_hz: 100.0,
                    v0: -2.0,
                    input: &input,
                    hold: Hold::Start,
                    noise: Noise::default(),
                });
                let label = format!(
                    "{} ({}) tau {tau} I_r {i_r} Hz/ms I_v {i_v}",
                    method.name(),
                    isa.name()
                );
                assert_trace(&label, &res.trace, &want, dt, TOL_SAME_ARITHMETIC);
                // The summary's final state is the last trace row, and its statistics
                // are those of the rows with t >= transient_ms = 5 (rows 500..=2000).
                let f = finished(res);
                let last = res.trace.last().unwrap();
                assert_eq!((f.r_hz_final, f.v_final), (last.r_hz, last.v));
                check_summary(&label, &res.trace[500..], &f);
            }
            seen.sort_by(|a, b| a.partial_cmp(b).unwrap());
            seen.dedup();
            assert_eq!(seen.len(), 8, "every (tau, I_r, I_v) combination once");
        }
    }
}

/// The summary statistics against the trace rows they cover (two-pass, ddof = 0). Mean,
/// min and max to 1e-12 relative (the kernel sums in kHz and scales by 1e3); the std to
/// 1e-9 of the std plus 1e-12 of the mean (one-pass shifted sums lose a few digits when
/// the std is small against the mean).
fn check_summary(label: &str, rows: &[TracePoint], f: &Finished) {
    let n = rows.len() as f64;
    for (name, xs, got) in [
        (
            "r_hz",
            rows.iter().map(|p| p.r_hz).collect::<Vec<_>>(),
            f.r_hz,
        ),
        ("v", rows.iter().map(|p| p.v).collect(), f.v),
    ] {
        let mean = xs.iter().sum::<f64>() / n;
        let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
        assert!(
            close(got.mean, mean) && close(got.min, min) && close(got.max, max),
            "{label}: {name} summary {got:?} vs trace mean {mean}, min {min}, max {max}"
        );
        assert!(
            (got.std - std).abs() <= 1e-9 * std + 1e-12 * mean.abs(),
            "{label}: {name} std {} vs trace {std}",
            got.std
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Time-varying inputs
// ---------------------------------------------------------------------------------------

/// (I_r in Hz/ms, I_v) at time t (ms).
type InputFn = fn(f64) -> (f64, f64);

/// A waveform, as the spec writes it and as the reference evaluates it.
struct InputCase {
    name: &'static str,
    /// The `input:` mapping's body.
    yaml: &'static str,
    input: InputFn,
    /// Wrong semantics that the comparison must reject: (what, input).
    wrong: Vec<(&'static str, InputFn)>,
    /// Whether the input jumps at 2.5, 5 or 7.5 ms.
    jumps: bool,
}

fn sine(amplitude: f64, freq_hz: f64, phase: f64, offset: f64, t_ms: f64) -> f64 {
    offset + amplitude * (2.0 * PI * freq_hz * t_ms / 1000.0 + phase).sin()
}

fn input_cases() -> Vec<InputCase> {
    vec![
        InputCase {
            name: "step on v",
            jumps: true,
            yaml: "v: {step: {at_ms: 5, before: -0.5, after: 1.0}}",
            input: |t| (0.0, if t < 5.0 { -0.5 } else { 1.0 }),
            wrong: vec![("before also at t = at_ms", |t| {
                (0.0, if t <= 5.0 { -0.5 } else { 1.0 })
            })],
        },
        InputCase {
            name: "pulse on v",
            jumps: true,
            yaml: "v: {pulse: {start_ms: 2.5, stop_ms: 7.5, amplitude: 2.0}}",
            input: |t| (0.0, if (2.5..7.5).contains(&t) { 2.0 } else { 0.0 }),
            wrong: vec![("on for start < t <= stop", |t| {
                (0.0, if 2.5 < t && t <= 7.5 { 2.0 } else { 0.0 })
            })],
        },
        InputCase {
            name: "sine on v",
            jumps: false,
            yaml: "v: {sine: {amplitude: 1.0, freq_hz: 100, phase: 0.3, offset: 0.2}}",
            input: |t| (0.0, sine(1.0, 100.0, 0.3, 0.2, t)),
            wrong: vec![("phase dropped", |t| (0.0, sine(1.0, 100.0, 0.0, 0.2, t)))],
        },
        InputCase {
            name: "step on r_hz",
            jumps: true,
            yaml: "r_hz: {step: {at_ms: 5, before: 10, after: 50}}",
            input: |t| (if t < 5.0 { 10.0 } else { 50.0 }, 0.0),
            wrong: vec![("before also at t = at_ms", |t| {
                (if t <= 5.0 { 10.0 } else { 50.0 }, 0.0)
            })],
        },
        InputCase {
            name: "pulse on r_hz",
            jumps: true,
            yaml: "r_hz: {pulse: {start_ms: 2.5, stop_ms: 7.5, amplitude: 100}}",
            input: |t| (if (2.5..7.5).contains(&t) { 100.0 } else { 0.0 }, 0.0),
            wrong: vec![
                ("on for start < t <= stop", |t| {
                    (if 2.5 < t && t <= 7.5 { 100.0 } else { 0.0 }, 0.0)
                }),
                ("I_r read as kHz/ms", |t| {
                    (if (2.5..7.5).contains(&t) { 1e5 } else { 0.0 }, 0.0)
                }),
            ],
        },
        InputCase {
            name: "sine on r_hz",
            jumps: false,
            yaml: "r_hz: {sine: {amplitude: 50, freq_hz: 100, phase: 0.3, offset: 20}}",
            input: |t| (sine(50.0, 100.0, 0.3, 20.0, t), 0.0),
            wrong: vec![("frequency in rad/ms", |t| {
                (20.0 + 50.0 * (100.0 * t + 0.3).sin(), 0.0)
            })],
        },
        InputCase {
            name: "sine on r_hz and pulse on v",
            jumps: true,
            yaml: "r_hz: {sine: {amplitude: 50, freq_hz: 250, phase: -1, offset: 0}}, \
                   v: {pulse: {start_ms: 2.5, stop_ms: 7.5, amplitude: -1.5}}",
            input: |t| {
                (
                    sine(50.0, 250.0, -1.0, 0.0, t),
                    if (2.5..7.5).contains(&t) { -1.5 } else { 0.0 },
                )
            },
            wrong: vec![("pulse on r_hz instead of v", |t| {
                (
                    sine(50.0, 250.0, -1.0, 0.0, t)
                        + if (2.5..7.5).contains(&t) { -1.5 } else { 0.0 },
                    0.0,
                )
            })],
        },
    ]
}

#[test]
fn time_varying_inputs_are_held_at_each_steps_start() {
    // The boundaries (the step at 5 ms, the pulse's start 2.5 ms and stop 7.5 ms) fall
    // exactly on step times t_k = k dt, so the rules "before for t < at_ms" and "on for
    // start <= t < stop" are exercised at both steps:
    // * dt = 2^-7 ms: every k dt is exact (k = 320, 640, 960);
    // * dt = 0.01 ms: k dt rounds to 2.5, 5, 7.5 exactly (k = 250, 500, 750), while a
    //   clock accumulated as t += dt falls short of them (2.4999999999999907 at k = 250):
    //   only the contract's t_k = k dt switches on the boundary step.
    let node = Node {
        tau: 1.0,
        eta: -5.0,
        j: 15.0,
        delta: 1.0,
    };
    for (dt, first_k) in [(0.0078125f64, 320usize), (0.01, 250)] {
        let steps = (20.0 / dt).round() as usize;
        let mut clock = 0.0;
        for k in 1..=3 * first_k {
            clock += dt;
            if k % first_k == 0 {
                let boundary = 2.5 * (k / first_k) as f64;
                assert_eq!(k as f64 * dt, boundary);
                assert!(
                    dt == 0.0078125 || clock < boundary,
                    "accumulated clock at k = {k}"
                );
            }
        }
        for case in input_cases() {
            for method in [Method::ExpEuler, Method::Rk4] {
                let text = format!(
                    "model: {{eta: -5, J: 15, delta: 1}}\n\
                     init: {{r_hz: 100, v: -2}}\n\
                     input: {{{}}}\n\
                     simulation: {{dt_ms: {dt}, duration_ms: 20, method: {}}}\n\
                     output: {{traces: {{every_ms: {dt}, runs: all}}}}\n",
                    case.yaml,
                    method.name()
                );
                let run = |input: &dyn Fn(f64) -> (f64, f64), hold: Hold| {
                    reference(&RefRun {
                        node,
                        method,
                        dt,
                        steps,
                        r0_hz: 100.0,
                        v0: -2.0,
                        input,
                        hold,
                        noise: Noise::default(),
                    })
                };
                let want = run(&case.input, Hold::Start);
                // Wrong semantics the comparison must tell apart (by far more than its
                // tolerance): the input at the step's end, rk4 stages at their own times,
                // an accumulated clock (at the boundaries), and the case's own alternatives.
                let mut wrong: Vec<(String, Vec<(f64, f64)>)> =
                    vec![("held at the step's end".into(), run(&case.input, Hold::End))];
                if method == Method::Rk4 {
                    wrong.push((
                        "rk4 stages at their own times".into(),
                        run(&case.input, Hold::Stages),
                    ));
                }
                if case.jumps && dt == 0.01 {
                    wrong.push((
                        "an accumulated clock".into(),
                        run(&case.input, Hold::Accumulated),
                    ));
                }
                for (what, f) in &case.wrong {
                    wrong.push((what.to_string(), run(f, Hold::Start)));
                }
                for isa in isas() {
                    let results = simulate(&text, isa);
                    let res = &results[0];
                    assert!(
                        res.row.stable_states.is_none(),
                        "no fixed points with time-varying inputs"
                    );
                    let label =
                        format!("{} (dt {dt}, {}, {})", case.name, method.name(), isa.name());
                    assert_trace(&label, &res.trace, &want, dt, TOL_SAME_ARITHMETIC);
                    for (what, rows) in &wrong {
                        let (err, _, _) = trace_error(&res.trace, rows, dt);
                        assert!(
                            err > 1e3 * TOL_SAME_ARITHMETIC,
                            "{label}: the test cannot tell the contract from `{what}` ({err:.1e})"
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 4. Stochastic schemes: exact noise injection
// ---------------------------------------------------------------------------------------

#[test]
fn noise_is_injected_as_documented() {
    let (seed, replicates, dt, steps) = (2026u64, 4u64, 0.01, 400usize);
    let node = Node {
        tau: 1.0,
        eta: -5.0,
        j: 15.0,
        delta: 1.0,
    };
    // (label, noise mapping, noise for the reference, methods)
    let cases: Vec<(&str, &str, Noise, Vec<Method>)> = vec![
        (
            "white v",
            "v: {white: {sigma: 0.5}}",
            Noise {
                white: [None, Some(0.5)],
                ..Noise::default()
            },
            vec![Method::Euler, Method::Heun, Method::ExpEuler],
        ),
        (
            "white r_hz and v",
            "r_hz: {white: {sigma: 20}}, v: {white: {sigma: 0.5}}",
            Noise {
                white: [Some(20.0), Some(0.5)],
                ..Noise::default()
            },
            vec![Method::Euler, Method::Heun, Method::ExpEuler],
        ),
        (
            "white v, OU r_hz",
            "r_hz: {ou: {sigma: 30, tau_ms: 2}}, v: {white: {sigma: 0.5}}",
            Noise {
                white: [None, Some(0.5)],
                ou: [Some((30.0, 2.0)), None],
                ..Noise::default()
            },
            vec![Method::Heun, Method::ExpEuler],
        ),
        (
            "OU r_hz and v",
            "r_hz: {ou: {sigma: 30, tau_ms: 2}}, v: {ou: {sigma: 0.4, tau_ms: 0.5}}",
            Noise {
                ou: [Some((30.0, 2.0)), Some((0.4, 0.5))],
                ..Noise::default()
            },
            vec![Method::Rk4, Method::Euler],
        ),
    ];
    // Fixed initial values: nothing is drawn before the noise.
    let init = "init: {r_hz: 100, v: -2}";
    for (label, yaml, noise, methods) in cases {
        for method in methods {
            let text = format!(
                "model: {{eta: -5, J: 15, delta: 1}}\n\
                 {init}\n\
                 noise: {{{yaml}}}\n\
                 simulation: {{dt_ms: {dt}, duration_ms: {}, method: {}}}\n\
                 sweep: {{seed: {seed}, replicates: {replicates}}}\n\
                 output: {{traces: {{every_ms: {dt}, runs: all}}}}\n",
                steps as f64 * dt,
                method.name()
            );
            for isa in isas() {
                let results = simulate(&text, isa);
                assert_eq!(results.len() as u64, replicates);
                for res in &results {
                    let run_id = res.row.address.run_id;
                    let mk = |noise: Noise, node: Node| {
                        reference(&RefRun {
                            node,
                            method,
                            dt,
                            steps,
                            r0_hz: 100.0,
                            v0: -2.0,
                            input: &no_input,
                            hold: Hold::Start,
                            noise: Noise {
                                stream: (seed, run_id),
                                ..noise
                            },
                        })
                    };
                    let want = mk(noise, node);
                    let name = format!("{label} ({}, {}) run {run_id}", method.name(), isa.name());
                    // Same arithmetic up to operation order: 1e-12 (see section 2).
                    assert_trace(&name, &res.trace, &want, dt, TOL_SAME_ARITHMETIC);
                    // The comparison resolves the noise: another run's stream, or white
                    // r and v drawn in the other order, are far off.
                    let other = reference(&RefRun {
                        node,
                        method,
                        dt,
                        steps,
                        r0_hz: 100.0,
                        v0: -2.0,
                        input: &no_input,
                        hold: Hold::Start,
                        noise: Noise {
                            stream: (seed, run_id + replicates),
                            ..noise
                        },
                    });
                    assert!(trace_error(&res.trace, &other, dt).0 > 1e-6, "{name}");
                    if noise.white.iter().all(Option::is_some) {
                        let swapped = mk(
                            Noise {
                                swapped: true,
                                ..noise
                            },
                            node,
                        );
                        assert!(trace_error(&res.trace, &swapped, dt).0 > 1e-6, "{name}");
                    }
                }
            }
        }
    }
}

#[test]
fn drawn_initial_values_come_before_the_noise() {
    // src/integrate/stream.rs: init.r_hz then init.v are drawn first (uniform: one u64;
    // normal: one Box–Muller pair, its first value kept), then the noise takes the
    // ziggurat's normals from there.
    let (seed, dt, steps) = (31u64, 0.01, 300usize);
    let text = format!(
        "model: {{eta: -5, J: 15, delta: 1}}\n\
         init: {{r_hz: {{uniform: [90, 110]}}, v: {{normal: [-2, 0.1]}}}}\n\
         noise: {{r_hz: {{ou: {{sigma: 30, tau_ms: 2}}}}, v: {{white: {{sigma: 0.5}}}}}}\n\
         simulation: {{dt_ms: {dt}, duration_ms: {}, method: heun}}\n\
         sweep: {{seed: {seed}, replicates: 5}}\n\
         output: {{traces: {{every_ms: {dt}, runs: all}}}}\n",
        steps as f64 * dt
    );
    for isa in isas() {
        for res in simulate(&text, isa) {
            let run_id = res.row.address.run_id;
            let mut rng = Xoshiro::from_run(seed, run_id);
            let r0_hz = 90.0 + 20.0 * rng.uniform();
            let v0 = -2.0 + 0.1 * rng.normal_pair::<Unfused>().0;
            assert_eq!(
                (res.row.init_r_hz, res.row.init_v),
                (r0_hz, v0),
                "drawn initial values"
            );
            assert_eq!(
                (res.trace[0].r_hz, res.trace[0].v),
                (r0_hz, v0),
                "trace row 0"
            );
            let want = reference(&RefRun {
                node: Node {
                    tau: 1.0,
                    eta: -5.0,
                    j: 15.0,
                    delta: 1.0,
                },
                method: Method::Heun,
                dt,
                steps,
                r0_hz,
                v0,
                input: &no_input,
                hold: Hold::Start,
                noise: Noise {
                    white: [None, Some(0.5)],
                    ou: [Some((30.0, 2.0)), None],
                    stream: (seed, run_id),
                    after_init: Some(rng),
                    ..Noise::default()
                },
            });
            let label = format!("drawn init, heun ({}) run {run_id}", isa.name());
            assert_trace(&label, &res.trace, &want, dt, TOL_SAME_ARITHMETIC);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. Ornstein–Uhlenbeck noise
// ---------------------------------------------------------------------------------------

#[test]
fn ou_process_has_the_stationary_std_and_autocorrelation() {
    let (dt, tau, sigma, steps, seed) = (0.05, 5.0, 2.0, 200_000usize, 99u64);
    // Burn-in of 10 tau: from x = 0 the variance is sigma^2 (1 - e^(-2t/tau)), off by
    // e^-20 after it.
    let burn = (10.0 * tau / dt) as usize;
    let lags = [
        (tau / 2.0 / dt) as usize,
        (tau / dt) as usize,
        (2.0 * tau / dt) as usize,
    ];
    let max_lag = lags[2];
    let mut ou = Ou::new();
    let mut rng = LaneRng::default();
    for l in 0..LANES {
        ou.set_lane(l, sigma, tau, dt);
        rng.set_lane(l, &Xoshiro::from_run(seed, l as u64));
    }
    // The exact update's coefficients (DESIGN.md section 2).
    let e = (-dt / tau).exp();
    assert!(
        (ou.decay[0] - e).abs() <= 1e-15
            && (ou.kick[0] - sigma * (1.0 - e * e).sqrt()).abs() <= 1e-15
    );
    let mut normals = LaneNormals::new(rng);
    let (mut x, mut xi) = ([0.0; LANES], [0.0; LANES]);
    // A ring of the last max_lag + 1 states, for the lagged products.
    let mut ring = vec![[0.0; LANES]; max_lag + 1];
    let (mut n, mut sum, mut sum_sq) = (0usize, 0.0, 0.0);
    let mut lagged = [(0usize, 0.0); 3];
    for k in 1..=steps {
        normals.fill(&mut xi);
        ou.advance(&mut x, &xi);
        ring[k % (max_lag + 1)] = x;
        if k <= burn {
            continue;
        }
        n += LANES;
        sum += x.iter().sum::<f64>();
        sum_sq += x.iter().map(|a| a * a).sum::<f64>();
        for (i, &lag) in lags.iter().enumerate() {
            if k - lag > burn {
                let past = &ring[(k - lag) % (max_lag + 1)];
                lagged[i].0 += LANES;
                lagged[i].1 += x.iter().zip(past).map(|(a, b)| a * b).sum::<f64>();
            }
        }
    }
    // The process has mean 0: moments about 0, so no mean-subtraction bias.
    let var = sum_sq / n as f64;
    let std = var.sqrt();
    let mean = sum / n as f64;
    // Tolerances from the number of effectively independent samples. The total sampled
    // time is T = LANES * (steps - burn) * dt (lanes are independent streams), here
    // 32 * 199000 * 0.05 = 318,400 ms. For a Gaussian process with correlation
    // rho(s) = e^(-|s|/tau):
    //   Var(mean)       = (1/T) int C(s) ds         = 2 sigma^2 tau / T,
    //   Var(var est.)   = (2/T) int C(s)^2 ds       = 2 sigma^4 tau / T
    //                     (N_eff = T/tau ~ 64,000 samples: 0.56% on var, 0.28% on std),
    //   Var(rho_hat(L)) = (tau/T) (1 - (1 + 2a) e^(-2a)),  a = L/tau
    //                     (Bartlett's formula, integrated for the exponential rho).
    // The sampled chain is an exact AR(1) with coefficient e^(-dt/tau), so its
    // autocorrelation at lag L is exactly e^(-L/tau): no discretisation bias. 5 standard
    // errors each.
    let t_total = (LANES * (steps - burn)) as f64 * dt;
    let se_mean = sigma * (2.0 * tau / t_total).sqrt();
    let se_std = 0.5 * sigma * (2.0 * tau / t_total).sqrt();
    println!(
        "OU: mean {mean:+.5} (5 SE {:.5}), std {std:.5} vs sigma {sigma} (5 SE {:.5})",
        5.0 * se_mean,
        5.0 * se_std
    );
    assert!(mean.abs() <= 5.0 * se_mean, "mean {mean}");
    assert!((std - sigma).abs() <= 5.0 * se_std, "std {std} vs {sigma}");
    for (i, &lag) in lags.iter().enumerate() {
        let lag_ms = lag as f64 * dt;
        let rho = lagged[i].1 / lagged[i].0 as f64 / var;
        let want = (-lag_ms / tau).exp();
        let a = lag_ms / tau;
        let se = (tau / t_total * (1.0 - (1.0 + 2.0 * a) * (-2.0 * a).exp())).sqrt();
        println!(
            "OU: autocorrelation at lag {lag_ms} ms: {rho:.5} vs exp(-lag/tau) = {want:.5} \
             (5 SE {:.5})",
            5.0 * se
        );
        assert!(
            (rho - want).abs() <= 5.0 * se,
            "lag {lag_ms}: {rho} vs {want}"
        );
    }
}

#[test]
fn ou_driven_fluctuations_match_the_three_dimensional_lyapunov_equation() {
    let (eta, j, delta) = (-3.25, 15.0, 1.0);
    let (tau_ou, dt) = (2.0, 0.01);
    let fps = fixed_points(eta, j, delta);
    assert_eq!(fps.len(), 3, "eta {eta} lies inside the bistable interval");
    let (low, saddle) = (fps[0], fps[1]);
    // The low state is a stable node: real eigenvalues, both negative (here -0.57 and
    // -4.20 per ms: the slow time scale, 1.75 ms, is comparable to tau_ou).
    assert!(
        low.real && low.re[1] < 0.0 && low.re[0] < low.re[1],
        "{low:?}"
    );
    assert!(!saddle.stable);

    // The linear system with the OU input as a third state, w = (r [kHz], v, eta_OU):
    //   d(r, v)/dt = A (r, v) + (0, eta_OU / tau_model),  tau_model = 1,
    //   d eta_OU   = -eta_OU/tau_ou dt + sqrt(2/tau_ou) sigma dW.
    let a = jacobian(&low, j);
    let m = vec![
        vec![a[0][0], a[0][1], 0.0],
        vec![a[1][0], a[1][1], 1.0],
        vec![0.0, 0.0, -1.0 / tau_ou],
    ];
    let q_of = |sigma: f64| {
        let mut q = vec![vec![0.0; 3]; 3];
        q[2][2] = 2.0 * sigma * sigma / tau_ou;
        q
    };
    // What rk4 with the OU value held over the step computes, linearised at the node: a
    // linear map on w. For z' = A z + B u with u held, rk4 gives
    // z' = T4(hA) z + h (I + hA/2 + (hA)^2/6 + (hA)^3/24) B u, T4 the degree-4 Taylor
    // polynomial of exp; the OU then advances exactly: u' = e u + sigma sqrt(1 - e^2) xi.
    let ha: Mat = a
        .iter()
        .map(|row| row.iter().map(|x| x * dt).collect())
        .collect();
    let ha2 = matmul(&ha, &ha);
    let ha3 = matmul(&ha2, &ha);
    let ha4 = matmul(&ha3, &ha);
    let t4 = add(
        &add(
            &add(&add(&identity(2), &ha, 1.0), &ha2, 0.5),
            &ha3,
            1.0 / 6.0,
        ),
        &ha4,
        1.0 / 24.0,
    );
    let s_mat = add(
        &add(&add(&identity(2), &ha, 0.5), &ha2, 1.0 / 6.0),
        &ha3,
        1.0 / 24.0,
    );
    let e = (-dt / tau_ou).exp();
    let f = vec![
        vec![t4[0][0], t4[0][1], dt * s_mat[0][1]],
        vec![t4[1][0], t4[1][1], dt * s_mat[1][1]],
        vec![0.0, 0.0, e],
    ];
    let qd_of = |sigma: f64| {
        let mut q = vec![vec![0.0; 3]; 3];
        q[2][2] = sigma * sigma * (1.0 - e * e);
        q
    };

    // Noise level: the stationary std at 0.25% of the node's distance to the saddle in
    // both r and v, so nonlinear corrections (relative O((std/distance)^2) ~ 1e-5) are
    // negligible and escape over the saddle (400 sigma) never happens.
    let unit = lyapunov(&m, &q_of(1.0));
    assert!(
        (unit[2][2] - 1.0).abs() < 1e-12,
        "the OU state has variance sigma^2"
    );
    let sigma = 0.0025
        * ((saddle.x - low.x).abs() / unit[0][0].sqrt())
            .min((saddle.v - low.v).abs() / unit[1][1].sqrt());
    let p_cont = lyapunov(&m, &q_of(sigma));
    let p_disc = stein(&f, &qd_of(sigma));
    // The time mean of a run has covariance S0 / T to leading order, with
    // S0 = M^-1 Q M^-T the integral of the autocovariance over all lags; a run's variance
    // (about its own mean, ddof = 0) is biased low by it.
    let mi = inverse(&m);
    let s0 = matmul(&matmul(&mi, &q_of(sigma)), &transpose(&mi));

    let (replicates, transient, duration) = (512u32, 20.0, 1020.0);
    let t_stat = duration - transient;
    let text = format!(
        "model: {{eta: {eta}, J: {j}, delta: {delta}}}\n\
         init: {{r_hz: {}, v: {}}}\n\
         noise: {{v: {{ou: {{sigma: {sigma}, tau_ms: {tau_ou}}}}}}}\n\
         simulation: {{dt_ms: {dt}, duration_ms: {duration}, transient_ms: {transient}, \
                       method: rk4}}\n\
         sweep: {{seed: 5, replicates: {replicates}}}\n",
        1000.0 * low.x,
        low.v
    );
    for isa in isas() {
        let results = simulate(&text, isa);
        assert!(
            results.iter().all(|r| r.row.stable_states.is_none()),
            "OU input is not constant"
        );
        // Tolerances, relative on sqrt(ensemble mean of the per-run variance):
        // * Statistics: the runs are independent, so the empirical standard error across
        //   runs is the honest measure; asserted below 0.3% on the std (measured ~0.21%: a
        //   1000 ms run holds ~200 effectively independent samples of v, ~10% on its
        //   variance, /sqrt(512) over the runs, halved for the std), so 5 SE < 1.5%.
        // * Finite-T bias: subtracted (S0/T above; ~0.4% on the std here).
        // * Nonlinearity ~1e-5: negligible.
        // * Discretisation: rk4 with the OU input held over each step is not the SDE. The
        //   hold delays the input by dt/2 on average, which leaves a stationary variance
        //   alone; what remains is O((dt/tau)^2) plus rk4's O(dt^4) (printed: ~1e-5). The
        //   Stein solution of the linearised rk4+OU chain accounts for it exactly, the
        //   continuous one does not.
        // So: continuous prediction within 3% (>= bias + 5 SE), discrete within 1.5% (5 SE).
        // A slip in the units or scaling (OU sigma as a variance, kHz vs Hz, a missing
        // 1/tau) is off by far more.
        const TOL_CONT: f64 = 0.03;
        const TOL_DISC: f64 = 0.015;
        for (name, (var, se), scale, i) in [
            ("v", mean_run_variance(&results, |f| f.v.std), 1.0, 1),
            ("r_hz", mean_run_variance(&results, |f| f.r_hz.std), 1e6, 0),
        ] {
            let want_cont = (scale * (p_cont[i][i] - s0[i][i] / t_stat)).sqrt();
            let want_disc = (scale * (p_disc[i][i] - s0[i][i] / t_stat)).sqrt();
            let got = var.sqrt();
            let se_rel = 0.5 * se / var;
            let (e_cont, e_disc) = (got / want_cont - 1.0, got / want_disc - 1.0);
            println!(
                "OU-driven node ({}): std({name}) measured {got:.6e} (SE {:.2}%), \
                 Lyapunov {want_cont:.6e} ({:+.2}%, tol {:.1}%), linearised rk4 \
                 {want_disc:.6e} ({:+.2}%, tol {:.1}%); discretisation {:+.4}%, finite-T \
                 correction {:.2}%",
                isa.name(),
                100.0 * se_rel,
                100.0 * e_cont,
                100.0 * TOL_CONT,
                100.0 * e_disc,
                100.0 * TOL_DISC,
                100.0 * ((p_disc[i][i] / p_cont[i][i]).sqrt() - 1.0),
                -50.0 * s0[i][i] / t_stat / p_cont[i][i],
            );
            assert!(se_rel < 0.003, "std({name}): standard error {se_rel:.4}");
            assert!(
                e_cont.abs() <= TOL_CONT,
                "std({name}) {got:e} vs Lyapunov {want_cont:e}"
            );
            assert!(
                e_disc.abs() <= TOL_DISC,
                "std({name}) {got:e} vs linearised rk4 {want_disc:e}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. dt as an axis: convergence orders
// ---------------------------------------------------------------------------------------

/// The final states (r_hz, v) of a sweep, keyed by dt.
fn finals_by_dt(point: &str, dts: &[f64], method: Method, isa: Isa) -> Vec<(f64, (f64, f64))> {
    let text = format!(
        "{point}simulation: {{dt_ms: {}, duration_ms: 20, method: {}}}\n",
        yaml_list(dts),
        method.name()
    );
    let results = simulate(&text, isa);
    assert_eq!(results.len(), dts.len());
    results
        .iter()
        .map(|r| {
            let f = finished(r);
            (r.row.values.get(Slot::DtMs), (f.r_hz_final, f.v_final))
        })
        .collect()
}

/// Error of a final state against the reference, relative per component, as one norm.
fn final_error(got: (f64, f64), want: (f64, f64)) -> f64 {
    ((got.0 - want.0) / want.0).hypot((got.1 - want.1) / want.1)
}

#[test]
fn dt_axis_runs_converge_at_each_methods_order() {
    // A well-conditioned point whose state still moves at t = 20 ms (a slowly decaying
    // spiral into the high state at tau = 10 ms: eigenvalues (-0.031 ± 0.33i)/ms), so the
    // final-state error is the accumulated global error, not rounding. (At tau = 1 every
    // start settles on a fixed point well within 20 ms and the error decays with it.)
    let point = "model: {tau_ms: 10, eta: -5, J: 15, delta: 1}\ninit: {r_hz: 150, v: -0.3}\n";
    let dts = [0.02, 0.01, 0.005];
    for isa in isas() {
        // The reference: rk4 at dt = 0.001 (a second sweep), whose own error is
        // ~(0.001/0.02)^4 = 6e-6 of rk4's error at 0.02, ~5e-15 here.
        let reference = finals_by_dt(point, &[0.001], Method::Rk4, isa)[0].1;
        let rk4 = finals_by_dt(point, &dts, Method::Rk4, isa);
        // One run per dt value, in the axis order.
        for ((dt, _), want) in rk4.iter().zip(dts) {
            assert_eq!(*dt, want);
        }
        // A dt-axis run is the same run as in a sweep with that dt alone (runs are batched
        // by dt, and nothing else about a run depends on the batch).
        let alone = finals_by_dt(point, &[0.01], Method::Rk4, isa)[0].1;
        assert_eq!(rk4[1].1, alone, "dt = 0.01 inside the axis and alone");

        // rk4: the error shrinks like dt^4. Its constant is estimated without the
        // reference, by Richardson extrapolation from the 0.02 and 0.01 runs:
        // err(0.02) ~ |x(0.02) - x(0.01)| * 16/15; the tolerance is 1.5 times that,
        // scaled by (dt/0.02)^4, plus 1e-13 for rounding over 4000 steps.
        let richardson = final_error(rk4[0].1, rk4[1].1) * 16.0 / 15.0;
        for (dt, state) in &rk4 {
            let err = final_error(*state, reference);
            let tol = 1.5 * richardson * (dt / 0.02).powi(4) + 1e-13;
            println!(
                "rk4 ({}) dt {dt}: final state ({:.12} Hz, {:.12}), error vs dt = 0.001: \
                 {err:.3e} (tolerance {tol:.3e})",
                isa.name(),
                state.0,
                state.1
            );
            assert!(err <= tol, "rk4 dt {dt}: error {err:e} > {tol:e}");
        }

        // Observed orders log2(err(dt)/err(dt/2)) against the rk4 reference. In the
        // asymptotic regime (checked: the orders from 0.01 to 0.005 agree) the higher terms
        // of the error expansion move the observed order by O(dt) (measured: <= 0.01, and
        // 0.09 for rk4 from 0.01 to 0.005); +-0.2 (rk4) and +-0.1 (the others) leave margin
        // and still tell the orders apart.
        for (method, order, tol) in [
            (Method::Rk4, 4.0, 0.2),
            (Method::Heun, 2.0, 0.1),
            (Method::Euler, 1.0, 0.1),
            (Method::ExpEuler, 1.0, 0.1),
        ] {
            let finals = if method == Method::Rk4 {
                rk4.clone()
            } else {
                finals_by_dt(point, &dts, method, isa)
            };
            let e: Vec<f64> = finals
                .iter()
                .map(|(_, s)| final_error(*s, reference))
                .collect();
            let p = [(e[0] / e[1]).log2(), (e[1] / e[2]).log2()];
            println!(
                "{} ({}): errors {:.3e} {:.3e} {:.3e}, observed orders {:.3} {:.3} \
                 (expected {order})",
                method.name(),
                isa.name(),
                e[0],
                e[1],
                e[2],
                p[0],
                p[1]
            );
            for p in p {
                assert!(
                    (p - order).abs() <= tol,
                    "{}: observed order {p}",
                    method.name()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 7. Fixed-point columns against the closed forms
// ---------------------------------------------------------------------------------------

/// The point of the other saddle-node branch with the same J (J(x) is convex with its
/// minimum at x_c, so each J > J_c has one x on each side).
fn partner(x: f64, delta: f64) -> f64 {
    let (x_c, _, _) = cusp(delta);
    let (below, above) = saddle_node_xs(saddle_node_j(x, delta), delta).expect("J above the cusp");
    if x < x_c { above } else { below }
}

/// The analytic counterpart of `StableStates`: (count, low, high).
fn analytic_states(
    eta: f64,
    j: f64,
    delta: f64,
) -> (usize, Option<FixedPoint>, Option<FixedPoint>) {
    let fps = fixed_points(eta, j, delta);
    let stable: Vec<FixedPoint> = fps.iter().copied().filter(|f| f.stable).collect();
    let low = stable.first().copied();
    let high = (stable.len() > 1).then(|| stable[stable.len() - 1]);
    (fps.len(), low, high)
}

/// One point of a fixed-point sweep: eta, J, delta, constant I_v, and the expected count.
#[derive(Debug, Clone, Copy)]
struct FpPoint {
    eta: f64,
    j: f64,
    delta: f64,
    i_v: f64,
    /// Constant I_r in Hz/ms.
    i_r: f64,
    count: Option<usize>,
}

/// The library's stable states of each point (one short run each, zipped axes).
fn library_states(points: &[FpPoint], tau: f64, isa: Isa) -> Vec<StableStates> {
    let col = |f: fn(&FpPoint) -> f64| yaml_list(&points.iter().map(f).collect::<Vec<_>>());
    let text = format!(
        "model: {{tau_ms: {tau}, eta: {}, J: {}, delta: {}}}\n\
         input: {{r_hz: {}, v: {}}}\n\
         init: {{r_hz: 1, v: -1}}\n\
         simulation: {{dt_ms: 0.01, duration_ms: 0.01}}\n\
         sweep: {{zip: [[eta, J, delta, input_r_hz, input_v]]}}\n",
        col(|p| p.eta),
        col(|p| p.j),
        col(|p| p.delta),
        col(|p| p.i_r),
        col(|p| p.i_v),
    );
    let results = simulate(&text, isa);
    assert_eq!(results.len(), points.len());
    results
        .iter()
        .zip(points)
        .map(|(r, p)| {
            let v = r.row.values;
            assert_eq!(
                (
                    v.get(Slot::Eta),
                    v.get(Slot::J),
                    v.get(Slot::Delta),
                    v.get(Slot::InputRHz),
                    v.get(Slot::InputV)
                ),
                (p.eta, p.j, p.delta, p.i_r, p.i_v),
                "the spec carries the values exactly"
            );
            r.row
                .stable_states
                .expect("constant inputs have fixed points")
        })
        .collect()
}

/// Checks the library's states against the closed forms: the count, which stable states
/// exist, and their (r_hz, v) within 1e-9 relative (both sides solve the quartic to full
/// precision; 1e-9 leaves room for ill-conditioning near the saddle-node curves).
fn check_states(label: &str, points: &[FpPoint], tau: f64) {
    for isa in isas() {
        for (p, got) in points.iter().zip(library_states(points, tau, isa)) {
            // With a constant I_v the quartic takes eta + I_v; x is the same for every tau
            // and r = x / tau. A constant I_r (kHz/ms) enters where delta/pi does:
            // dr/dt = 0 gives v* = -(delta/pi + I_r tau^2)/(2x), so the tau = 1 formulas hold
            // with delta replaced by delta + pi I_r tau^2 (quartic, v* and eigenvalues alike).
            let delta_eff = p.delta + PI * (p.i_r / 1000.0) * tau * tau;
            let (count, low, high) = analytic_states(p.eta + p.i_v, p.j, delta_eff);
            let what = format!("{label}, tau {tau} ({}): {p:?}", isa.name());
            if let Some(c) = p.count {
                assert_eq!(count, c, "{what}: analytic count");
            }
            assert_eq!(got.count as usize, count, "{what}: fp_count");
            for (name, mine, theirs) in [("low", low, got.low), ("high", high, got.high)] {
                match (mine, theirs) {
                    (None, None) => {}
                    (Some(m), Some(t)) => {
                        let r_hz = 1000.0 * m.x / tau;
                        assert!(t.stable, "{what}: {name} is stable");
                        assert!(
                            rel_err(t.r_hz, r_hz) <= 1e-9 && (t.v - m.v).abs() <= 1e-9 * m.v.abs(),
                            "{what}: fp_{name} ({} Hz, {}) vs analytic ({r_hz} Hz, {})",
                            t.r_hz,
                            t.v,
                            m.v
                        );
                    }
                    _ => panic!("{what}: fp_{name}: library {theirs:?}, analytic {mine:?}"),
                }
            }
        }
    }
}

#[test]
fn fixed_point_columns_match_the_closed_forms() {
    let mut points = Vec::new();
    let point = |eta, j, delta, count| FpPoint {
        eta,
        j,
        delta,
        i_v: 0.0,
        i_r: 0.0,
        count,
    };
    for delta in [0.5, 1.0, 2.0] {
        let (x_c, eta_c, j_c) = cusp(delta);
        // The cusp closed form is the minimum of the saddle-node curve J(x).
        assert!((saddle_node_j(x_c, delta) / j_c - 1.0).abs() < 1e-14);
        assert!((saddle_node_eta(x_c, delta) / eta_c - 1.0).abs() < 1e-14);
        assert!(saddle_node_j(x_c * 1.001, delta) > j_c && saddle_node_j(x_c / 1.001, delta) > j_c);

        // At the cusp the three roots merge (a triple root, known only to ~eps^(1/3) ~ 6e-6
        // relative): every fixed point the library finds is at x_c within 1e-4.
        let at_cusp = mpr_sweep::model::NodeParams::from_user(1.0, eta_c, j_c, delta, 0.0, 0.0);
        let fps = at_cusp.fixed_points();
        assert!(!fps.is_empty());
        for fp in fps {
            assert!(
                rel_err(fp.r_hz, 1000.0 * x_c) < 1e-4,
                "cusp, delta {delta}: {fp:?} vs x_c {x_c}"
            );
        }
        // Around the cusp: 5% above it in J the wedge is open; its middle has 3 fixed
        // points, 10% of its width beyond either edge 1. Below the cusp, or at its J off its
        // eta, 1.
        let j_in = 1.05 * j_c;
        let (lo, hi) = bistable_interval(j_in, delta);
        let width = hi - lo;
        assert!(width > 1e-3, "wedge width {width}");
        points.push(point(0.5 * (lo + hi), j_in, delta, Some(3)));
        points.push(point(lo - 0.1 * width, j_in, delta, Some(1)));
        points.push(point(hi + 0.1 * width, j_in, delta, Some(1)));
        points.push(point(eta_c, 0.95 * j_c, delta, Some(1)));
        points.push(point(eta_c + 0.01, j_c, delta, Some(1)));
        points.push(point(eta_c - 0.01, j_c, delta, Some(1)));

        // Across each saddle-node edge, on both branches (x below and above x_c): eta 1e-3
        // into the wedge (towards the other edge at the same J) gives 3, 1e-3 out gives 1.
        for f in [0.35, 0.6, 1.7, 3.0] {
            let x = f * x_c;
            let (j, eta) = (saddle_node_j(x, delta), saddle_node_eta(x, delta));
            let other = saddle_node_eta(partner(x, delta), delta);
            assert!((other - eta).abs() > 1e-2, "wedge too narrow at x = {x}");
            let inward = (other - eta).signum();
            points.push(point(eta + 1e-3 * inward, j, delta, Some(3)));
            points.push(point(eta - 1e-3 * inward, j, delta, Some(1)));
        }
    }
    // A few generic points: the paper's (bistable), low-coupling, monostable high and low,
    // tiny delta (brainmass's default 1 Hz: a low state at 0.07 Hz), positive eta without
    // coupling, strong coupling, and delta = 0 (two fixed points x = (J ± sqrt(J^2 + 4 pi^2
    // eta))/(2 pi^2), v* = 0, neither strictly stable).
    for (eta, j, delta, count) in [
        (-5.0, 15.0, 1.0, Some(3)),
        (-10.0, 5.0, 2.0, None),
        (-2.0, 15.0, 1.0, Some(1)),
        (-7.0, 15.0, 1.0, Some(1)),
        (-6.0, 20.0, 0.5, None),
        (-5.0, 15.0, 0.001, Some(3)),
        (2.0, 0.0, 0.5, Some(1)),
        (-10.0, 50.0, 0.2, None),
        (-5.0, 15.0, 0.0, Some(2)),
    ] {
        points.push(point(eta, j, delta, count));
    }
    check_states("tau 1", &points, 1.0);
    // tau = 2: the same x roots, r = x / tau.
    check_states("tau 2", &points, 2.0);
    // A constant I_v: the spec's eta lowered by 0.75 and I_v = 0.75 has the states of eta.
    let shifted: Vec<FpPoint> = points
        .iter()
        .map(|p| FpPoint {
            eta: p.eta - 0.75,
            i_v: 0.75,
            ..*p
        })
        .collect();
    check_states("eta - 0.75 with input.v 0.75", &shifted, 1.0);
    // A constant I_r = 100 Hz/ms, at tau 1 and 2 (the counts may change: not asserted).
    let driven: Vec<FpPoint> = points
        .iter()
        .map(|p| FpPoint {
            i_r: 100.0,
            count: None,
            ..*p
        })
        .filter(|p| p.eta != cusp(p.delta).1)
        .collect();
    check_states("input.r_hz 100 Hz/ms", &driven, 1.0);
    check_states("input.r_hz 100 Hz/ms", &driven, 2.0);
    println!(
        "fixed-point columns: {} points checked at tau 1 and 2, with input.v and with input.r_hz",
        points.len()
    );
}

#[test]
fn bistability_sweep_settles_where_the_closed_forms_say() {
    let (j, delta) = (15.0, 1.0);
    let (eta_lo, eta_hi) = bistable_interval(j, delta);
    println!("bistable interval at J {j}, delta {delta}: ({eta_lo:.6}, {eta_hi:.6})");
    // Two zipped starts: low (0.1 Hz, v = -2) and high (1000 Hz, v = -0.16, near
    // v* = -delta/(2 pi x) at x = 1 kHz).
    // After 300 ms every run has settled. After 10 ms some have (the low node decays at
    // ~2.4/ms) and some have not (the high focus at ~0.3/ms): settled = none is checked too.
    for isa in isas() {
        let mut inside = 0;
        let mut unsettled = 0;
        for duration in [300.0, 10.0] {
            let text = format!(
                "model: {{eta: {{linspace: [-7, -2, 21]}}, J: 15, delta: 1}}\n\
             init: {{r_hz: [0.1, 1000], v: [-2, -0.16]}}\n\
             simulation: {{dt_ms: 0.01, duration_ms: {duration}, method: rk4}}\n\
             sweep: {{zip: [[init_r_hz, init_v]]}}\n"
            );
            let results = simulate(&text, isa);
            assert_eq!(results.len(), 42);
            for res in &results {
                let eta = res.row.values.get(Slot::Eta);
                let high_start = res.row.init_r_hz > 1.0;
                let f = finished(res);
                let states = res.row.stable_states.expect("constant inputs");
                let settled = states.settled(f.r_hz_final, f.v_final);
                // Which analytic stable state is the final state within 0.1% of (in r and v)?
                let (_, low, high) = analytic_states(eta, j, delta);
                let near = |fp: Option<FixedPoint>| {
                    fp.map(|fp| {
                        let r_hz = 1000.0 * fp.x;
                        ((f.r_hz_final - r_hz).abs() / r_hz)
                            .max((f.v_final - fp.v).abs() / fp.v.abs())
                    })
                };
                let (d_low, d_high) = (near(low), near(high));
                let mine = if d_low.is_some_and(|d| d <= 1e-3) {
                    Settled::Low
                } else if d_high.is_some_and(|d| d <= 1e-3) {
                    Settled::High
                } else {
                    Settled::None
                };
                if duration < 300.0 {
                    assert_eq!(
                        settled, mine,
                        "{duration} ms: eta {eta}, high start {high_start}"
                    );
                    unsettled += (settled == Settled::None) as usize;
                    continue;
                }
                println!(
                    "eta {eta:+.3} start {}: final ({:.6} Hz, {:.6}); distance to low {d_low:?}, \
                 high {d_high:?}; settled {} (analytic {})",
                    if high_start { "high" } else { "low" },
                    f.r_hz_final,
                    f.v_final,
                    settled.name(),
                    mine.name()
                );
                assert_eq!(settled, mine, "eta {eta}, high start {high_start}");
                if eta > eta_lo && eta < eta_hi {
                    // Bistable: each start keeps its state.
                    inside += 1;
                    let want = if high_start {
                        Settled::High
                    } else {
                        Settled::Low
                    };
                    assert_eq!(settled, want, "eta {eta} inside the bistable interval");
                } else {
                    // One stable state (the low-rate or the high-rate branch), reported as `low`:
                    // both starts end on it.
                    assert!(high.is_none());
                    assert_eq!(
                        settled,
                        Settled::Low,
                        "eta {eta} outside the bistable interval"
                    );
                }
            }
        }
        // eta = -5.5, -5.25, ..., -3.25 lie inside (-5.7435, -3.1361): 10 points, 2 starts each.
        assert_eq!(inside, 20, "runs inside the bistable interval");
        println!("after 10 ms: {unsettled} of 42 runs not yet within 0.1% of a stable state");
        assert!(
            (1..42).contains(&unsettled),
            "after 10 ms some runs have settled and some not ({unsettled} of 42 unsettled)"
        );
    }
}

#[test]
fn dt_axis_runs_equal_the_same_runs_swept_alone() {
    // 25 eta values x 3 dt values, dt varying fastest (run ids interleave the steps), so
    // the simulator must regroup runs into lane batches by dt (more than one batch each).
    // Every run must equal, bit for bit, the same eta in a sweep with that dt alone, and
    // its trace (every 0.02 ms = 4, 2 or 1 steps) must sit on t = 0, 0.02, ..., 20.
    let model = "model: {tau_ms: 10, eta: {linspace: [-5.5, -4.5, 25]}, J: 15, delta: 1}\n\
                 init: {r_hz: 150, v: -0.3}\n";
    let traces = "output: {traces: {every_ms: 0.02, runs: {every: 7}}}\n";
    let dts = [0.02, 0.01, 0.005];
    for isa in isas() {
        let text = format!(
            "{model}simulation: {{dt_ms: {}, duration_ms: 20, method: heun}}\n{traces}",
            yaml_list(&dts)
        );
        let swept = simulate(&text, isa);
        assert_eq!(swept.len(), 75);
        for (k, dt) in dts.iter().enumerate() {
            let text = format!(
                "{model}simulation: {{dt_ms: {dt}, duration_ms: 20, method: heun}}\n{traces}"
            );
            let alone = simulate(&text, isa);
            for (i, single) in alone.iter().enumerate() {
                let run = &swept[3 * i + k];
                assert_eq!(run.row.values.get(Slot::DtMs), *dt);
                assert_eq!(
                    run.row.values.get(Slot::Eta),
                    single.row.values.get(Slot::Eta)
                );
                let (a, b) = (finished(run), finished(single));
                assert_eq!(
                    (a.r_hz_final, a.v_final, a.r_hz, a.v),
                    (b.r_hz_final, b.v_final, b.r_hz, b.v),
                    "eta index {i}, dt {dt} ({})",
                    isa.name()
                );
                let traced = run.row.address.run_id.is_multiple_of(7);
                assert_eq!(run.trace.is_empty(), !traced);
                if traced {
                    assert_eq!(run.trace.len(), 1001);
                    for (j, p) in run.trace.iter().enumerate() {
                        assert!((p.t_ms - 0.02 * j as f64).abs() < 1e-12, "t {}", p.t_ms);
                    }
                    let last = run.trace.last().unwrap();
                    assert_eq!((last.r_hz, last.v), (a.r_hz_final, a.v_final));
                }
            }
        }
    }
}

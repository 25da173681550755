//! Adaptive steps (`simulation.adaptive`, docs/adaptive.md) of both pairs, Dormand–Prince
//! 5(4) (`method: dopri5`) and 8(5,3) (`method: dop853`), against independent references:
//!
//! 1. converged fixed-step solutions: rk4 at dt = 0.0005 ms through the library, on points
//!    that ring (eta = 0, J = 15), settle (eta = -2, J = 25; eta = -8, J = 5) and sit on the
//!    high branch at J = 30; final states within 10 rtol;
//! 2. time averages against Simpson's rule over the fine rk4 trajectory;
//! 3. the analytic fixed points of long runs;
//! 4. a pulse that switches a bistable node: edges landed on exactly, against rk4 with the
//!    edges on its grid;
//! 5. rejected steps occur, and no run depends on the other runs of its batch, on how the
//!    runs are split into batches, or on the lane and the moment a refilled queue gives
//!    it; the two kernel paths agree;
//! 6. a sine input evaluated at the stages' own times, against a scalar rk4 written here;
//! 7. the spec's refusals, and `plan` on the command line.
//!
//! Units: the spec and results use r in Hz.

use mpr_sweep::integrate::{
    AdaptivePair, AdaptiveRun, AdaptiveSchedule, Batch, Isa, LANES, MAX_TRIAL_STEPS, StopToken,
    Summary, Tolerances, integrate_adaptive,
};
use mpr_sweep::model::NodeParams;
use mpr_sweep::output::Outcome;
use mpr_sweep::plan::Plan;
use mpr_sweep::simulate::{RunResult, Simulator, TracePoint};
use mpr_sweep::spec;

fn simulate_on(text: &str, isa: Isa, runs: Option<std::ops::Range<u64>>) -> Vec<RunResult> {
    let spec = spec::parse(text).unwrap_or_else(|e| panic!("spec rejected: {e}\n{text}"));
    let plan = Plan::new(&spec).unwrap();
    Simulator::new(&plan, isa).simulate(runs.unwrap_or(0..plan.runs))
}

fn simulate(text: &str) -> Vec<RunResult> {
    simulate_on(text, Isa::detect(), None)
}

/// `(r_hz stats, r_hz_final, v stats, v_final)` of a run that must have finished.
fn finished(res: &RunResult) -> (Summary, f64, Summary, f64) {
    match res.row.outcome {
        Outcome::Finished {
            r_hz,
            r_hz_final,
            v,
            v_final,
        } => (r_hz, r_hz_final, v, v_final),
        other => panic!("run {} did not finish: {other:?}", res.row.address.run_id),
    }
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

/// Global error bounds of a final state at tolerance `rtol`: r within 20 rtol relative, v
/// within 50 rtol on the scale max(|v|, 1). The tolerance bounds each step's local error;
/// the global error at the end of a ringing run is larger (measured up to 6 rtol in r and
/// 1.6e-4 relative at rtol 1e-6 in v = -0.09 at J = 30, i.e. 15 rtol on that scale).
fn assert_state_close(what: &str, (r, v): (f64, f64), (r_ref, v_ref): (f64, f64), rtol: f64) {
    assert!(
        rel(r, r_ref) <= 20.0 * rtol,
        "{what}: r {r} vs {r_ref} ({:.2e} relative)",
        rel(r, r_ref)
    );
    assert!(
        (v - v_ref).abs() <= 50.0 * rtol * v_ref.abs().max(1.0),
        "{what}: v {v} vs {v_ref}"
    );
}

/// The test points as `(eta, J)`: ringing, settling, the J = 30 high branch, a low state.
const POINTS: [(f64, f64); 4] = [(0.0, 15.0), (-2.0, 25.0), (-1.0, 30.0), (-8.0, 5.0)];

fn zipped_points() -> String {
    let etas: Vec<String> = POINTS.iter().map(|p| p.0.to_string()).collect();
    let js: Vec<String> = POINTS.iter().map(|p| p.1.to_string()).collect();
    format!(
        "model: {{eta: [{}], J: [{}], delta: 1}}\ninit: {{r_hz: 100, v: -2}}\nsweep: {{zip: [[eta, J]]}}\n",
        etas.join(", "),
        js.join(", ")
    )
}

const DURATION_MS: f64 = 40.0;
const TRANSIENT_MS: f64 = 10.0;
const FINE_DT_MS: f64 = 0.0005;

/// The adaptive methods.
const METHODS: [&str; 2] = ["dopri5", "dop853"];

fn adaptive_spec(method: &str, rtol: f64) -> String {
    format!(
        "{}simulation: {{method: {method}, adaptive: {{rtol: {rtol}, atol_r_hz: 1e-9, atol_v: 1e-12}}, duration_ms: {DURATION_MS}, transient_ms: {TRANSIENT_MS}}}\n",
        zipped_points()
    )
}

/// rk4 at 0.0005 ms with a trace at every step.
fn fine_reference() -> Vec<RunResult> {
    simulate(&format!(
        "{}simulation: {{method: rk4, dt_ms: {FINE_DT_MS}, duration_ms: {DURATION_MS}, transient_ms: {TRANSIENT_MS}}}\noutput: {{traces: {{every_ms: {FINE_DT_MS}, runs: all}}}}\n",
        zipped_points()
    ))
}

/// Time average and standard deviation over [TRANSIENT_MS, DURATION_MS] of a trace on the
/// fine grid, by composite Simpson's rule.
fn simpson_moments(trace: &[TracePoint], get: fn(&TracePoint) -> f64) -> (f64, f64) {
    let first = (TRANSIENT_MS / FINE_DT_MS).round() as usize;
    let last = (DURATION_MS / FINE_DT_MS).round() as usize;
    assert_eq!(trace.len(), last + 1);
    assert!((last - first).is_multiple_of(2));
    let integrate = |f: &dyn Fn(f64) -> f64| {
        let mut s = f(get(&trace[first])) + f(get(&trace[last]));
        for (i, p) in trace[first + 1..last].iter().enumerate() {
            s += if i % 2 == 0 { 4.0 } else { 2.0 } * f(get(p));
        }
        s * FINE_DT_MS / 3.0
    };
    let span = DURATION_MS - TRANSIENT_MS;
    let mean = integrate(&|x| x) / span;
    let var = integrate(&|x| (x - mean) * (x - mean)) / span;
    (mean, var.sqrt())
}

#[test]
fn final_states_and_time_averages_match_a_converged_rk4_solution() {
    let reference = fine_reference();
    // rk4 at 0.0005 ms is itself within about 3e-9 relative (against 0.001 ms: 5e-8 in v at
    // J = 30, fourth order), which limits the tolerances tested here to 1e-8.
    for (method, rtol) in METHODS.into_iter().flat_map(|m| [(m, 1e-6), (m, 1e-8)]) {
        let adaptive = simulate(&adaptive_spec(method, rtol));
        for (i, (a, f)) in adaptive.iter().zip(&reference).enumerate() {
            let (ar, ar_final, av, av_final) = finished(a);
            let (_, fr_final, _, fv_final) = finished(f);
            let what = format!("{method}, rtol {rtol}, point {:?}", POINTS[i]);
            assert_state_close(&what, (ar_final, av_final), (fr_final, fv_final), rtol);
            let tol = 20.0 * rtol;
            // Time averages against Simpson's rule on the rk4 trajectory (its quadrature
            // error at 0.0005 ms is below 1e-11 relative here). The std is compared on the
            // scale of the mean: at settled points it is the tiny remnant of the transient.
            let (rm, rs) = simpson_moments(&f.trace, |p| p.r_hz);
            let (vm, vs) = simpson_moments(&f.trace, |p| p.v);
            // v is compared on the scale max(|v|, 1) as its final value.
            let v_scale = vm.abs().max(1.0);
            assert!(
                rel(ar.mean, rm) <= tol,
                "{what}: r mean {} vs {rm}",
                ar.mean
            );
            assert!(
                (av.mean - vm).abs() <= 2.5 * tol * v_scale,
                "{what}: v mean {} vs {vm}",
                av.mean
            );
            assert!(
                (ar.std - rs).abs() <= tol * rm.abs(),
                "{what}: r std {} vs {rs}",
                ar.std
            );
            assert!(
                (av.std - vs).abs() <= 2.5 * tol * v_scale,
                "{what}: v std {} vs {vs}",
                av.std
            );
            // min and max lie within the trajectory's range: the reference samples it every
            // 0.0005 ms, which misses a 2 kHz ringing's extremes by up to (2 pi f dt)^2/8,
            // 1e-5 of its swing.
            let window = &f.trace[(TRANSIENT_MS / FINE_DT_MS) as usize..];
            let lo = window.iter().map(|p| p.r_hz).fold(f64::INFINITY, f64::min);
            let hi = window
                .iter()
                .map(|p| p.r_hz)
                .fold(f64::NEG_INFINITY, f64::max);
            let slack = 1e-5 * (hi - lo) + tol * hi;
            assert!(
                ar.min >= lo - slack && ar.max <= hi + slack,
                "{what}: [{}, {}] vs [{lo}, {hi}]",
                ar.min,
                ar.max
            );
        }
    }
}

#[test]
fn long_runs_reach_the_analytic_fixed_points() {
    let rtol = 1e-8;
    for method in METHODS {
        let text = format!(
            "{}simulation: {{method: {method}, adaptive: {{rtol: {rtol}, atol_r_hz: 1e-9, atol_v: 1e-12}}, duration_ms: 300}}\n",
            zipped_points()
        );
        long_runs_of(method, &text, rtol);
    }
}

fn long_runs_of(method: &str, text: &str, rtol: f64) {
    for res in simulate(text) {
        let (_, r_final, _, v_final) = finished(&res);
        let fp = res.row.stable_states.expect("constant inputs");
        let target = [fp.low, fp.high]
            .into_iter()
            .flatten()
            .min_by(|a, b| {
                rel(r_final, a.r_hz)
                    .partial_cmp(&rel(r_final, b.r_hz))
                    .unwrap()
            })
            .unwrap();
        // Settled, the step grows to the method's stability limit, where the state
        // wanders within the tolerance (measured: 7e-9 in v = -0.053 at J = 30).
        let what = format!("{method}, run {}", res.row.address.run_id);
        assert_state_close(&what, (r_final, v_final), (target.r_hz, target.v), rtol);
        // With no fixed step, there is no step-stability verdict.
        assert!(res.row.dt_stability.is_none());
    }
}

/// The bistable node of sweeps/pulse.yaml, switched to the high state by a pulse on I_v.
const PULSE: &str = "model: {eta: -5.0, J: 15.0, delta: 1.0}
init: {r_hz: 81.13, v: -1.96}
input:
  v: {pulse: {start_ms: 20.0003, stop_ms: 25.0007, amplitude: [1.0, 3.0]}}
";

#[test]
fn a_pulse_switches_the_node_with_steps_landing_on_its_edges() {
    // rk4 with the edges on its grid (0.0001 ms divides 20.0003 and 25.0007), so that it
    // too integrates each piece of the input exactly as a constant.
    let reference = simulate(&format!(
        "{PULSE}simulation: {{method: rk4, dt_ms: 0.0001, duration_ms: 40}}\n"
    ));
    for method in METHODS {
        pulse_switches(method, &reference);
    }
}

fn pulse_switches(method: &str, reference: &[RunResult]) {
    let adaptive = simulate(&format!(
        "{PULSE}simulation: {{method: {method}, adaptive: {{rtol: 1e-9}}, duration_ms: 40}}\noutput: {{traces: {{every_ms: 0.05, runs: all}}}}\n"
    ));
    let mut switched = 0;
    for (a, f) in adaptive.iter().zip(reference) {
        let (_, ar, _, av) = finished(a);
        let (_, fr, _, fv) = finished(f);
        assert_state_close(method, (ar, av), (fr, fv), 1e-9);
        switched += (ar > 1000.0) as u32;
        // The trace is the dense output: rows at every 0.05 ms up to 40 ms.
        assert_eq!(a.trace.len(), 801);
        assert_eq!(a.trace.last().unwrap().t_ms, 40.0);
    }
    // Amplitude 1 leaves the node low, 3 switches it high (sweeps/pulse.yaml).
    assert_eq!(switched, 1, "{method}");
}

/// `(dr/dt, dv/dt)` at tau = 1 ms, r in kHz, with I_v = `iv`.
fn mpr(eta: f64, j: f64, delta: f64, (r, v): (f64, f64), iv: f64) -> (f64, f64) {
    use std::f64::consts::PI;
    (
        delta / PI + 2.0 * r * v,
        v * v + eta + j * r - (PI * r).powi(2) + iv,
    )
}

#[test]
fn a_sine_input_is_evaluated_at_each_stage_time() {
    // The reference: classical rk4 written out here with the input at each stage's time
    // (t, t + h/2, t + h/2, t + h), at h = 0.0002 ms.
    let iv = |t: f64| 0.5 + 2.0 * (std::f64::consts::TAU * 0.2 * t + 0.3).sin();
    let f = |y: (f64, f64), t: f64| mpr(-5.0, 15.0, 1.0, y, iv(t));
    let h = 0.0002;
    let (mut y, mut t) = ((0.1, -2.0), 0.0);
    for k in 0..100_000 {
        let k1 = f(y, t);
        let k2 = f((y.0 + 0.5 * h * k1.0, y.1 + 0.5 * h * k1.1), t + 0.5 * h);
        let k3 = f((y.0 + 0.5 * h * k2.0, y.1 + 0.5 * h * k2.1), t + 0.5 * h);
        let k4 = f((y.0 + h * k3.0, y.1 + h * k3.1), t + h);
        y.0 += h / 6.0 * (k1.0 + 2.0 * (k2.0 + k3.0) + k4.0);
        y.1 += h / 6.0 * (k1.1 + 2.0 * (k2.1 + k3.1) + k4.1);
        t = (k + 1) as f64 * h;
    }
    for method in METHODS {
        // I_v(t) = 0.5 + 2 sin(2 pi 200 Hz t + 0.3) on the node eta = -5, J = 15, delta = 1.
        let text = format!(
            "model: {{eta: -5, J: 15, delta: 1}}
init: {{r_hz: 100, v: -2}}
input:
  v: {{sine: {{amplitude: 2, freq_hz: 200, phase: 0.3, offset: 0.5}}}}
simulation: {{method: {method}, adaptive: {{rtol: 1e-9, atol_r_hz: 1e-9, atol_v: 1e-12}}, duration_ms: 20}}
"
        );
        let res = simulate(&text);
        let (_, r_hz, _, v) = finished(&res[0]);
        assert_state_close(method, (r_hz, v), (1000.0 * y.0, y.1), 1e-9);
    }
}

#[test]
fn rejections_happen_and_runs_do_not_depend_on_their_batch() {
    for method in METHODS {
        // 64 runs over a W1-like grid; run 37 also alone.
        let grid = format!(
            "model: {{eta: {{linspace: [-10, 0, 8]}}, J: {{linspace: [0, 30, 8]}}, delta: 1}}
init: {{r_hz: 100, v: -2}}
simulation: {{method: {method}, adaptive: {{rtol: 1e-7}}, duration_ms: 30, transient_ms: 5}}
"
        );
        runs_do_not_depend_on_their_batch(&grid);
    }
}

fn runs_do_not_depend_on_their_batch(grid: &str) {
    let all = simulate(grid);
    let rejected: u64 = all.iter().map(|r| r.row.steps.unwrap().rejected).sum();
    assert!(rejected > 0, "no step was rejected on the grid: {grid}");
    let bits = |r: &RunResult| {
        let (rs, rf, vs, vf) = finished(r);
        let s = r.row.steps.unwrap();
        (
            [
                rs.mean, rs.std, rs.min, rs.max, rf, vs.mean, vs.std, vs.min, vs.max, vf,
            ]
            .map(f64::to_bits),
            s.steps,
            s.rejected,
        )
    };
    let isa = Isa::detect();
    for split in [37..38, 30..45, 0..64] {
        let part = simulate_on(grid, isa, Some(split.clone()));
        for r in &part {
            let id = r.row.address.run_id as usize;
            assert_eq!(
                bits(r),
                bits(&all[id]),
                "run {id} within runs {split:?}: {grid}"
            );
        }
    }
    const { assert!(LANES < 64, "the grid spans more than one batch") };
}

#[test]
fn both_kernel_paths_mostly_take_the_same_steps() {
    if !Isa::Avx2Fma.is_available() {
        eprintln!("SKIPPED: no AVX2+FMA on this CPU");
        return;
    }
    for method in METHODS {
        paths_agree(method);
    }
}

fn paths_agree(method: &str) {
    let rtol = 1e-8;
    let text = format!(
        "model: {{eta: {{linspace: [-10, 0, 16]}}, J: {{linspace: [0, 30, 16]}}, delta: [0.5, 4]}}\ninit: {{r_hz: 100, v: -2}}\nsimulation: {{method: {method}, adaptive: {{rtol: {rtol}}}, duration_ms: 100}}\n"
    );
    let p = simulate_on(&text, Isa::Portable, None);
    let a = simulate_on(&text, Isa::Avx2Fma, None);
    let (mut same_steps, mut within_1e12, mut worst_same) = (0, 0, 0.0f64);
    for (x, y) in p.iter().zip(&a) {
        let (_, xrf, _, xvf) = finished(x);
        let (_, yrf, _, yvf) = finished(y);
        // Fused multiply-adds round differently, which moves the error estimates in their
        // last bits; the controller rounds its step-size factors to 8 mantissa bits, so
        // that such a difference changes a step only where a factor lies that close to a
        // rounding boundary (or the error to 1). All runs agree to the global error.
        let what = format!("{method}, run {}", x.row.address.run_id);
        assert_state_close(&what, (xrf, xvf), (yrf, yvf), rtol);
        let scaled = |g: f64, w: f64| (g - w).abs() / w.abs().max(1.0);
        let diff = scaled(xrf, yrf).max(scaled(xvf, yvf));
        within_1e12 += (diff <= 1e-12) as usize;
        if x.row.steps == y.row.steps {
            same_steps += 1;
            worst_same = worst_same.max(diff);
        }
    }
    // Measured on this grid (final r in Hz and v, scaled by max(1, |x|)), dopri5: 505 of
    // the 512 runs take as many accepted and rejected steps on both paths, and those agree
    // within 6e-10; 295 runs agree within 1e-12. Equal counts are not equal steps: 279 of
    // the 505 take the same step sizes on both paths and agree within 1.4e-12; the other
    // 226 crossed a rounding boundary of the factor at some step and differ by up to 6e-10
    // (docs/adaptive.md, "Lanes and reproducibility"). dop853's error estimates are
    // differences of larger terms (coefficients up to 43), so its paths part more often:
    // 277 runs with equal counts, agreeing within 2.0e-8, 56 within 1e-12, all within the
    // global error as above.
    eprintln!(
        "{method}: {same_steps} of {} runs take the same step counts (worst difference \
         {worst_same:e}); {within_1e12} agree within 1e-12",
        p.len()
    );
    // The measured counts, with a margin: (same step counts in percent, their worst
    // difference, agreeing within 1e-12 in percent).
    let (same_percent, worst, close_percent) = match method {
        "dopri5" => (97, 2e-9, 50),
        _ => (45, 5e-8, 8),
    };
    assert!(
        same_steps * 100 >= p.len() * same_percent,
        "{method}: {same_steps} of {}",
        p.len()
    );
    assert!(
        worst_same <= worst,
        "{method}: runs with the same steps differ by {worst_same:e}"
    );
    assert!(
        within_1e12 * 100 >= p.len() * close_percent,
        "{method}: {within_1e12} of {}",
        p.len()
    );
    // The AVX-512 path runs the same fused arithmetic on wider vectors: the same bits.
    if Isa::Avx512.is_available() {
        let w = simulate_on(&text, Isa::Avx512, None);
        for (x, y) in a.iter().zip(&w) {
            // Debug prints each float's shortest round-trip form: equal text, equal bits
            // (and the unused parameter slots, NaN, compare equal).
            assert_eq!(format!("{x:?}"), format!("{y:?}"));
        }
    }
}

#[test]
fn the_spec_refuses_what_adaptive_steps_cannot_do() {
    let cases = [
        (
            "simulation: {adaptive: {rtol: 1e-6}}\n",
            "simulation.adaptive",
            "method: dopri5",
        ),
        (
            "simulation: {method: dopri5, adaptive: {}}\nnoise: {v: {ou: {sigma: 1, tau_ms: 5}}}\n",
            "noise.v.ou",
            "cannot be used with simulation.adaptive",
        ),
        (
            "simulation: {method: dopri5, adaptive: {}}\nnoise: {r_hz: {white: {sigma: 1}}}\n",
            "noise.r_hz.white",
            "white noise",
        ),
        (
            "simulation: {method: dopri5, adaptive: {rtol: 0}}\n",
            "simulation.adaptive.rtol",
            "rtol must be in [1e-14, 1)",
        ),
        (
            "simulation: {method: dopri5, adaptive: {atol_v: -1}}\n",
            "simulation.adaptive.atol_v",
            "atol_v must be >= 0",
        ),
        (
            "simulation: {method: dopri5, adaptive: {dt_max_ms: 0}}\n",
            "simulation.adaptive.dt_max_ms",
            "dt_max_ms must be > 0",
        ),
        (
            "simulation: {method: dopri5, adaptive: {rtl: 1e-6}}\n",
            "simulation.adaptive.rtl",
            "",
        ),
        (
            "simulation: {method: dop853, dt_ms: 0.01}\n",
            "simulation.method",
            "method dop853 takes adaptive steps only",
        ),
        (
            "simulation: {method: dop853, adaptive: {}}\nnoise: {v: {white: {sigma: 1}}}\n",
            "noise.v.white",
            "cannot be used with simulation.adaptive",
        ),
    ];
    for (text, path, message) in cases {
        let e = spec::parse(text).expect_err(text);
        assert_eq!(e.path, path, "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
    }
    // Tolerances are axes like any number; every_ms need not be a multiple of dt_ms.
    let s = spec::parse(
        "simulation: {method: dopri5, adaptive: {rtol: [1e-6, 1e-8]}, dt_ms: 0.01}\noutput: {traces: {every_ms: 0.037}}\n",
    )
    .unwrap();
    assert_eq!(Plan::new(&s).unwrap().runs, 2);
}

#[test]
fn the_command_line_plans_adaptive_sweeps_and_refuses_a_wrong_method() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("a.yaml");
    std::fs::write(
        &spec,
        "simulation: {method: dopri5, adaptive: {rtol: [1e-6, 1e-8]}}\n",
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("mpr-sweep")
        .unwrap()
        .arg("plan")
        .arg(&spec)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("adaptive steps: each run chooses its own steps"),
        "{text}"
    );
    assert!(!text.contains("dt check"), "no fixed-step check: {text}");

    std::fs::write(&spec, "simulation: {method: rk4, adaptive: {}}\n").unwrap();
    let out = assert_cmd::Command::cargo_bin("mpr-sweep")
        .unwrap()
        .arg("plan")
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("simulation.adaptive") && err.contains("method: dopri5"),
        "{err}"
    );
}

/// 96 W1-like runs (ringing, settling and bistable nodes mixed) as queue batches, run `q`
/// in lane `q % LANES` of batch `q / LANES`; `order[q]` says which run sits at `q`.
fn queue_of(order: &[usize]) -> Vec<(Batch, Tolerances)> {
    let mut queue = Vec::new();
    for chunk in order.chunks(LANES) {
        let mut batch = Batch::default();
        for l in 0..LANES {
            // Lanes past the queue's runs repeat its first run.
            let i = chunk.get(l).copied().unwrap_or(order[0]);
            let eta = -10.0 + 10.0 * (i % 12) as f64 / 11.0;
            let j = 30.0 * (i / 12) as f64 / 7.0;
            let p = NodeParams::from_user(1.0, eta, j, [0.5, 1.0, 2.0, 4.0][i % 4], 0.0, 0.0);
            batch.coef.set_lane(l, &p, 0.0, 0.0, 0.01);
            batch.r0[l] = 0.1;
            batch.v0[l] = -2.0;
        }
        let tol = Tolerances {
            rtol: [1e-7; LANES],
            ..Tolerances::default()
        };
        queue.push((batch, tol));
    }
    queue
}

#[test]
fn a_run_has_the_same_bits_alone_and_anywhere_in_a_refilled_queue() {
    for pair in [AdaptivePair::Dopri5, AdaptivePair::Dop853] {
        same_bits_alone_and_anywhere(pair);
    }
}

fn same_bits_alone_and_anywhere(pair: AdaptivePair) {
    let schedule = AdaptiveSchedule {
        pair,
        duration_ms: 30.0,
        transient_ms: 5.0,
        dt_init_ms: 0.01,
        dt_max_ms: 30.0,
        trace_every_ms: 0.0,
        max_trial_steps: MAX_TRIAL_STEPS,
    };
    let stop = StopToken::new();
    let integrate = |isa: Isa, order: &[usize]| {
        integrate_adaptive(
            isa,
            &schedule,
            &queue_of(order),
            order.len(),
            &mut Vec::new(),
            &stop,
        )
        .expect("nobody asks to stop")
    };
    let bits = |r: &AdaptiveRun| {
        let s = [r.r, r.v].map(|s| [s.mean, s.std, s.min, s.max].map(f64::to_bits));
        (
            r.end,
            r.end_ms.to_bits(),
            r.steps,
            r.rejected,
            s,
            r.r_final.to_bits(),
            r.v_final.to_bits(),
        )
    };
    let forward: Vec<usize> = (0..96).collect();
    let backward: Vec<usize> = (0..96).rev().collect();
    for isa in Isa::available() {
        let fwd = integrate(isa, &forward);
        let bwd = integrate(isa, &backward);
        // Refill keeps lanes busy: the queue takes fewer iterations than its three lane
        // batches one after another.
        let batches: u64 = forward
            .chunks(LANES)
            .map(|chunk| integrate(isa, chunk).iterations)
            .sum();
        assert!(
            fwd.iterations < batches,
            "{pair:?}, {isa:?}: {} iterations as a queue, {batches} as batches",
            fwd.iterations
        );
        assert!(fwd.runs.iter().map(|r| r.rejected).sum::<u64>() > 0);
        // Once the queue is empty, the AVX kernels pack the remaining runs into the lowest
        // lanes and compute fewer than all of them (runs move between lanes: the
        // comparisons below check that they keep their bits).
        assert!(fwd.lane_steps <= LANES as u64 * fwd.iterations);
        if isa != Isa::Portable {
            assert!(
                fwd.lane_steps < LANES as u64 * fwd.iterations,
                "{pair:?}, {isa:?}: {} lane-steps in {} iterations",
                fwd.lane_steps,
                fwd.iterations
            );
        }
        for run in 0..96 {
            let got = bits(&fwd.runs[run]);
            assert_eq!(
                got,
                bits(&bwd.runs[95 - run]),
                "{pair:?}, {isa:?}: run {run}, queue reversed"
            );
            if run % 7 == 0 {
                let alone = integrate(isa, &[run]);
                assert_eq!(
                    got,
                    bits(&alone.runs[0]),
                    "{pair:?}, {isa:?}: run {run} alone"
                );
            }
        }
    }
}

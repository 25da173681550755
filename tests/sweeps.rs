//! Every example spec in `sweeps/` is valid and plans; the cheap ones run through the
//! library and produce finite, non-diverged results (the README promises they run as
//! written). No example has a point whose step cannot settle on a stable state, and in the
//! deterministic constant-input examples every run that ends settled sits on an analytic
//! stable state.

use mpr_sweep::diagnose::DtReport;
use mpr_sweep::integrate::Isa;
use mpr_sweep::model::Settled;
use mpr_sweep::output::Outcome;
use mpr_sweep::plan::Plan;
use mpr_sweep::simulate::Simulator;
use mpr_sweep::spec::{self, NoiseKind};

const SWEEPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sweeps");

/// Run-steps above which a sweep is only planned here (the test profile is not a release
/// build).
const RUN_LIMIT: f64 = 2e7;

#[test]
fn every_example_sweep_is_valid_and_the_small_ones_run() {
    let mut names: Vec<_> = std::fs::read_dir(SWEEPS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "expected the documented example sweeps, found {names:?}"
    );
    let mut ran = 0;
    let mut settled = 0;
    for path in &names {
        let text = std::fs::read_to_string(path).unwrap();
        let spec = spec::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let plan = Plan::new(&spec).unwrap();
        assert!(plan.runs > 0);
        if let Some(report) = DtReport::compute(&plan) {
            assert_eq!(
                report.unstable_points,
                0,
                "{}: {}",
                path.display(),
                report.warning().unwrap_or_default()
            );
            assert!(!report.sampled());
        }
        let deterministic = spec.noise == [NoiseKind::None; 2];
        let mean_steps = spec
            .dt_values()
            .iter()
            .map(|&dt| spec.timing(dt).steps as f64)
            .sum::<f64>()
            / spec.dt_values().len() as f64;
        if plan.runs as f64 * mean_steps > RUN_LIMIT {
            continue;
        }
        let results = Simulator::new(&plan, Isa::detect()).simulate(0..plan.runs);
        assert_eq!(results.len() as u64, plan.runs);
        for r in &results {
            let Outcome::Finished {
                r_hz,
                v,
                r_hz_final,
                v_final,
            } = r.row.outcome
            else {
                panic!("{}: run {} diverged", path.display(), r.row.address.run_id);
            };
            assert!(r_hz.mean.is_finite() && v.mean.is_finite() && r_hz.min >= 0.0);
            if let Some(s) = r.row.dt_stability {
                assert!(s.stable, "{}: run {}", path.display(), r.row.address.run_id);
            }
            // Ended settled: r and v flat to 1e-4 (relative) over the statistics window.
            let flat = |x: mpr_sweep::integrate::Summary| x.max - x.min <= 1e-4 * x.mean.abs();
            if let Some(states) = r.row.stable_states.filter(|_| deterministic)
                && flat(r_hz)
                && flat(v)
            {
                assert_ne!(
                    states.settled(r_hz_final, v_final),
                    Settled::None,
                    "{}: run {} is flat at ({r_hz_final} Hz, {v_final}) off the analytic states {states:?}",
                    path.display(),
                    r.row.address.run_id
                );
                settled += 1;
            }
        }
        ran += 1;
    }
    // The quickstart alone has ~330 runs flat to 1e-4 by 100 ms (the rest still ring
    // down, physically: damping times of 5-10 ms at high J).
    assert!(settled >= 300, "only {settled} settled runs were checked");
    assert!(
        ran >= 5,
        "only {ran} example sweeps were small enough to run"
    );
}

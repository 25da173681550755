//! Every example spec in `sweeps/` is valid and plans; the cheap ones run through the
//! library and produce finite, non-diverged results (the README promises they run as
//! written).

use mpr_sweep::integrate::Isa;
use mpr_sweep::output::Outcome;
use mpr_sweep::plan::Plan;
use mpr_sweep::simulate::Simulator;
use mpr_sweep::spec;

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
    for path in &names {
        let text = std::fs::read_to_string(path).unwrap();
        let spec = spec::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let plan = Plan::new(&spec).unwrap();
        assert!(plan.runs > 0);
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
            let Outcome::Finished { r_hz, v, .. } = r.row.outcome else {
                panic!("{}: run {} diverged", path.display(), r.row.address.run_id);
            };
            assert!(r_hz.mean.is_finite() && v.mean.is_finite() && r_hz.min >= 0.0);
        }
        ran += 1;
    }
    assert!(
        ran >= 5,
        "only {ran} example sweeps were small enough to run"
    );
}

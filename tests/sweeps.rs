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

/// `sweeps/network/k-eta.yaml` is valid on the connectome `sweeps/network/fetch_connectome.py`
/// fetches (80 regions of a human connectome and its empirical FC), and a short version of
/// it (20 ms, statistics from 5 ms, its first 8 runs) runs: every run finite, with an FC
/// fit to the empirical target (the noise makes every pair's correlation defined). Without
/// the fetched data the test says so and checks nothing, unless
/// `MPR_SWEEP_REQUIRE_CONNECTOME=1` (CI fetches it), which makes the absence a failure.
#[test]
fn the_network_example_plans_on_the_fetched_connectome_and_a_short_version_runs() {
    let dir = std::path::Path::new(SWEEPS).join("network");
    if !dir.join("data/weights.txt").exists() {
        let why = "sweeps/network/data is missing (run python3 sweeps/network/fetch_connectome.py)";
        if std::env::var("MPR_SWEEP_REQUIRE_CONNECTOME").is_ok_and(|v| v == "1") {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        return;
    }
    let text = std::fs::read_to_string(dir.join("k-eta.yaml")).unwrap();
    let load = |text: &str| {
        let mut spec = spec::parse(text).unwrap();
        spec.load_files(&dir).unwrap();
        spec
    };
    let spec = load(&text);
    let data = spec.network_data().expect("a network");
    assert_eq!(
        (data.connectome.nodes(), data.connectome.edges()),
        (80, 6320)
    );
    assert!(Plan::new(&spec).unwrap().runs >= 50);
    let short = text.replace(
        "duration_ms: 2000, transient_ms: 500",
        "duration_ms: 20, transient_ms: 5",
    );
    assert_ne!(
        short, text,
        "the example's simulation line changed: update this test"
    );
    let spec = load(&short);
    let plan = Plan::new(&spec).unwrap();
    let results = Simulator::new(&plan, Isa::detect()).simulate(0..8);
    for r in &results {
        let id = r.row.address.run_id;
        assert!(
            matches!(r.row.outcome, Outcome::Finished { r_hz, .. } if r_hz.mean.is_finite()),
            "run {id}: {:?}",
            r.row.outcome
        );
        assert_eq!(r.nodes.len(), 80, "run {id}");
        assert_eq!(r.fc.len(), 80 * 79 / 2, "run {id}");
        let fit = r.row.network.and_then(|n| n.fc_fit).expect("an fc_target");
        assert!((-1.0..=1.0).contains(&fit), "run {id}: fc_fit {fit}");
    }
}

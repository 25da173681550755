//! Running a spec through the library in-process: spec text → `spec::parse` →
//! `Plan::new` → `Simulator::simulate`, on one instruction-set path.

use mpr_sweep::integrate::{Isa, Summary};
use mpr_sweep::output::Outcome;
use mpr_sweep::plan::Plan;
use mpr_sweep::simulate::{RunResult, Simulator};
use mpr_sweep::spec;

/// The instruction-set paths of this CPU.
pub fn isas() -> Vec<Isa> {
    let isas = Isa::available();
    for missing in Isa::ALL.into_iter().filter(|i| !isas.contains(i)) {
        eprintln!(
            "no {} on this CPU: its path is not checked",
            missing.features()
        );
    }
    isas
}

/// Every run of the spec `text`, in run order.
pub fn simulate(text: &str, isa: Isa) -> Vec<RunResult> {
    let spec = spec::parse(text).unwrap_or_else(|e| panic!("spec rejected: {e}\n{text}"));
    let plan = Plan::new(&spec).unwrap();
    let results = Simulator::new(&plan, isa).simulate(0..plan.runs);
    assert_eq!(results.len() as u64, plan.runs);
    results
}

/// The statistics of a run that must not have diverged.
pub struct Finished {
    pub r_hz: Summary,
    pub r_hz_final: f64,
    pub v: Summary,
    pub v_final: f64,
}

/// The statistics of `res`, or a panic naming the run if it diverged.
pub fn finished(res: &RunResult) -> Finished {
    match res.row.outcome {
        Outcome::Finished {
            r_hz,
            r_hz_final,
            v,
            v_final,
        } => Finished {
            r_hz,
            r_hz_final,
            v,
            v_final,
        },
        other => panic!("run {} did not finish: {other:?}", res.row.address.run_id),
    }
}

/// The mean over runs of the squared `pick` (a run's std: its time variance), and the
/// standard error of that mean from the spread across runs (the runs are independent).
pub fn mean_run_variance(results: &[RunResult], pick: fn(&Finished) -> f64) -> (f64, f64) {
    let xs: Vec<f64> = results.iter().map(|r| pick(&finished(r)).powi(2)).collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    (mean, sd / n.sqrt())
}

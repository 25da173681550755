//! From planned runs to results: fills lane batches, calls the kernel, and turns lanes back
//! into per-run rows in user units. No I/O here.

use std::ops::Range;

use crate::integrate::{self, Batch, Isa, LANES, Schedule};
use crate::model::NodeParams;
use crate::noise::Xoshiro;
use crate::output::{Outcome, SummaryRow};
use crate::plan::Plan;
use crate::spec::{InitDist, Slot};

/// One trace row in user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TracePoint {
    pub t_ms: f64,
    pub r_hz: f64,
    pub v: f64,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub row: SummaryRow,
    /// Empty unless the spec traces this run; stops before the first non-finite state.
    pub trace: Vec<TracePoint>,
}

/// Simulates runs of a plan on one instruction-set path.
pub struct Simulator<'a> {
    plan: &'a Plan<'a>,
    schedule: Schedule,
    isa: Isa,
}

impl<'a> Simulator<'a> {
    pub fn new(plan: &'a Plan<'a>, isa: Isa) -> Simulator<'a> {
        let spec = plan.spec;
        let schedule = Schedule {
            dt: spec.dt_ms(),
            steps: spec.steps(),
            first_stat_step: spec.first_stat_step(),
            trace_stride: spec.trace_stride().unwrap_or(0),
            noise_r: spec.noise_r_hz,
            noise_v: spec.noise_v,
        };
        Simulator {
            plan,
            schedule,
            isa,
        }
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Simulates `runs` in batches of [`LANES`], in order.
    pub fn simulate(&self, runs: Range<u64>) -> Vec<RunResult> {
        let mut scratch = Vec::new();
        let mut out = Vec::with_capacity((runs.end - runs.start) as usize);
        let mut start = runs.start;
        while start < runs.end {
            let end = (start + LANES as u64).min(runs.end);
            out.extend(self.simulate_batch(start..end, &mut scratch));
            start = end;
        }
        out
    }

    /// Simulates at most [`LANES`] consecutive runs as one batch. `scratch` is the trace
    /// buffer, reused across calls.
    pub fn simulate_batch(&self, runs: Range<u64>, scratch: &mut Vec<f64>) -> Vec<RunResult> {
        let n = (runs.end - runs.start) as usize;
        assert!(n > 0 && n <= LANES, "a batch holds 1 to {LANES} runs");
        let spec = self.plan.spec;
        let dt = self.schedule.dt;
        let mut batch = Batch::default();
        let mut rows = Vec::with_capacity(n);
        let mut traced = [false; LANES];
        for l in 0..LANES {
            // Lanes past the last run repeat the first one; their results are dropped.
            let run_id = if l < n {
                runs.start + l as u64
            } else {
                runs.start
            };
            let address = self.plan.address(run_id);
            let values = self.plan.values(address.point_id);
            let mut rng = Xoshiro::from_run(spec.seed, run_id);
            let init_r_hz = draw(spec.init_r_hz, values.get(Slot::InitRHz), &mut rng);
            let init_v = draw(spec.init_v, values.get(Slot::InitV), &mut rng);
            let node = NodeParams::from_user(
                values.get(Slot::TauMs),
                values.get(Slot::Eta),
                values.get(Slot::J),
                values.get(Slot::Delta),
                values.get(Slot::InputRHz),
                values.get(Slot::InputV),
            );
            let sigma =
                |on: bool, slot: Slot, scale: f64| if on { values.get(slot) * scale } else { 0.0 };
            batch.coef.set_lane(
                l,
                &node,
                sigma(spec.noise_r_hz, Slot::NoiseRHzSigma, 1e-3),
                sigma(spec.noise_v, Slot::NoiseVSigma, 1.0),
                dt,
            );
            batch.r0[l] = init_r_hz * 1e-3;
            batch.v0[l] = init_v;
            batch.rng.set_lane(l, &rng);
            if l < n {
                traced[l] = spec
                    .traces
                    .as_ref()
                    .is_some_and(|t| t.runs.contains(run_id));
                rows.push(SummaryRow {
                    address,
                    values,
                    init_r_hz,
                    init_v,
                    outcome: Outcome::Diverged { at_ms: f64::NAN },
                });
            }
        }
        let mut schedule = self.schedule;
        if !traced.iter().any(|&t| t) {
            schedule.trace_stride = 0;
        }
        let result = integrate::integrate(self.isa, &schedule, &batch, scratch);
        let stat_count = schedule.steps + 1 - schedule.first_stat_step;
        let rows_recorded = scratch.len() / (2 * LANES);
        rows.into_iter()
            .enumerate()
            .map(|(l, mut row)| {
                let finite = result.finite_steps[l];
                row.outcome = if finite < schedule.steps {
                    Outcome::Diverged {
                        at_ms: (finite + 1) as f64 * dt,
                    }
                } else {
                    Outcome::Finished {
                        r_hz: result.r.summary(l, stat_count).scaled(1e3),
                        r_hz_final: result.r_final[l] * 1e3,
                        v: result.v.summary(l, stat_count),
                        v_final: result.v_final[l],
                    }
                };
                let trace = if traced[l] {
                    (0..rows_recorded)
                        .map(|i| (i as u64 * schedule.trace_stride, i))
                        .take_while(|&(step, _)| step <= finite)
                        .map(|(step, i)| TracePoint {
                            t_ms: step as f64 * dt,
                            // Row 0 is the initial state as drawn: kHz and back may move
                            // it by an ulp.
                            r_hz: if i == 0 {
                                row.init_r_hz
                            } else {
                                scratch[i * 2 * LANES + l] * 1e3
                            },
                            v: scratch[i * 2 * LANES + LANES + l],
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                RunResult { row, trace }
            })
            .collect()
    }
}

/// A run's initial value: the parameter's value, or a draw from the run's stream.
fn draw(dist: InitDist, value: f64, rng: &mut Xoshiro) -> f64 {
    match dist {
        InitDist::Param => value,
        InitDist::Uniform { lo, hi } => lo + (hi - lo) * rng.uniform(),
        InitDist::Normal { mean, std } => mean + std * rng.normal_pair().0,
    }
}

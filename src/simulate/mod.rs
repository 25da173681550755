//! From planned runs to results: groups runs into lane batches, fills them, calls the
//! kernel, and turns lanes back into per-run rows in user units (networks: [`network`]).
//! No I/O here.

mod network;

use std::f64::consts::TAU;
use std::ops::Range;

use crate::integrate::Xoshiro;
use crate::integrate::math::Unfused;
use crate::integrate::network::NET_LANES;
use crate::integrate::{
    self, AdaptivePair, AdaptiveSchedule, Batch, Isa, LANES, LaneEnd, Lanes, Ou, Schedule,
    StopToken, Stopped, Tolerances, Waveform,
};
use crate::model::{HZ_PER_KHZ, Method, NodeParams, StableStates, StepStability};
pub use crate::output::NodeRow;
use crate::output::{Outcome, StepCounts, SummaryRow};
use crate::plan::{Plan, Values};
use crate::spec::{InitDist, InputForm, NoiseKind, Slot, Var};

/// Most runs per kernel call of an adaptive sweep without traces (32 lane batches): when a
/// lane's run ends, the kernel gives the lane the next run of the queue, so lanes idle
/// only at the queue's end, where the AVX kernels pack the remaining runs into fewer lanes
/// (docs/adaptive.md). On W1, 256 runs keep the lanes 91 % busy, 1024 runs 98 % (67 and
/// 88 % on the portable path, which does not pack).
pub const ADAPTIVE_QUEUE_RUNS: usize = 32 * LANES;

/// A stable-state analysis and step-size check of a node, kept for its replicates.
type Analysis = (NodeParams, StableStates, Option<StepStability>);

/// One lane batch filled with runs: the kernel's inputs and the rows of its runs.
struct Filled {
    batch: Batch,
    tol: Tolerances,
    rows: Vec<SummaryRow>,
    traced: [bool; LANES],
}

/// One trace row in user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TracePoint {
    /// Time, ms (0 for the initial state).
    pub t_ms: f64,
    /// The network node (0 for single nodes).
    pub node: u32,
    /// Rate, Hz.
    pub r_hz: f64,
    /// Mean membrane potential (dimensionless).
    pub v: f64,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The run's summary row.
    pub row: SummaryRow,
    /// Empty unless the spec traces this run; stops before the first non-finite state.
    pub trace: Vec<TracePoint>,
    /// A network run's per-node rows (empty for single nodes).
    pub nodes: Vec<NodeRow>,
    /// A network run's simulated FC, upper triangle row by row (empty unless computed).
    pub fc: Vec<f64>,
}

impl RunResult {
    /// A single node's result: no node rows, no FC.
    fn single_node(row: SummaryRow, trace: Vec<TracePoint>) -> RunResult {
        RunResult {
            row,
            trace,
            nodes: Vec::new(),
            fc: Vec::new(),
        }
    }
}

/// The fixed-step schedule of runs with step `dt`; `traced`: some run of the batch records
/// traces.
fn fixed_schedule(spec: &crate::spec::Spec, dt: f64, traced: bool) -> Schedule {
    let timing = spec.timing(dt);
    Schedule {
        dt,
        steps: timing.steps,
        first_stat_step: timing.first_stat_step,
        trace_stride: if traced { timing.trace_stride } else { 0 },
        white: [Var::RHz, Var::V].map(|v| spec.noise[v as usize] == NoiseKind::White),
    }
}

/// Simulates runs of a plan on one instruction-set path.
pub struct Simulator<'a> {
    plan: &'a Plan<'a>,
    isa: Isa,
    /// `dt_ms` (or a network's conduction speed) is an axis: runs must be grouped by
    /// their step (and speed).
    dt_swept: bool,
    /// Runs per batch.
    lanes: usize,
}

impl<'a> Simulator<'a> {
    /// A simulator of `plan`'s runs with the kernel for `isa`.
    pub fn new(plan: &'a Plan<'a>, isa: Isa) -> Simulator<'a> {
        let swept = |slot| plan.spec.param(slot).is_some_and(|p| p.axis.is_swept());
        Simulator {
            plan,
            isa,
            dt_swept: swept(Slot::DtMs) || swept(Slot::SpeedMmPerMs),
            lanes: if plan.spec.network.is_some() {
                NET_LANES
            } else {
                LANES
            },
        }
    }

    /// Most runs per kernel call: a lane batch, or for an adaptive sweep without traces a
    /// queue of up to [`ADAPTIVE_QUEUE_RUNS`] whose runs refill the lanes. A queue keeps
    /// every run's trace rows until it ends, so traced adaptive sweeps keep to one lane
    /// batch per call.
    pub fn batch_runs(&self) -> usize {
        let spec = self.plan.spec;
        if spec.network.is_none() && spec.adaptive.is_some() && spec.traces.is_none() {
            ADAPTIVE_QUEUE_RUNS
        } else {
            self.lanes
        }
    }

    /// Splits `runs` into batches that share a step size (and, in a network, a conduction
    /// speed), in run-id order of each batch's first run; without a `dt_ms` (or speed)
    /// axis these are consecutive runs. Fixed-step batches are lane batches; adaptive
    /// queues are as long as [`Simulator::batch_runs`] allows
    /// while every thread of the pool (rayon's current one: the cores, unless called
    /// inside another pool) still gets four of them.
    pub fn batches(&self, runs: Range<u64>) -> Vec<Vec<u64>> {
        let share = (runs.end - runs.start) as usize / (4 * rayon::current_num_threads());
        let cap = (share / self.lanes * self.lanes).clamp(self.lanes, self.batch_runs());
        if !self.dt_swept {
            return runs
                .clone()
                .step_by(cap)
                .map(|b| (b..(b + cap as u64).min(runs.end)).collect())
                .collect();
        }
        let mut open: Vec<((u64, u64), Vec<u64>)> = Vec::new();
        let mut done = Vec::new();
        for run_id in runs {
            let values = self.values(run_id);
            let key = (
                values.get(Slot::DtMs).to_bits(),
                values.get(Slot::SpeedMmPerMs).to_bits(),
            );
            let i = match open.iter().position(|(d, _)| *d == key) {
                Some(i) => i,
                None => {
                    open.push((key, Vec::with_capacity(cap)));
                    open.len() - 1
                }
            };
            open[i].1.push(run_id);
            if open[i].1.len() == cap {
                done.push(open.swap_remove(i).1);
            }
        }
        done.extend(open.into_iter().map(|(_, b)| b));
        done.sort_by_key(|b| b[0]);
        done
    }

    /// Simulates `runs` and returns the results in run-id order.
    pub fn simulate(&self, runs: Range<u64>) -> Vec<RunResult> {
        let mut scratch = Vec::new();
        let never = StopToken::new();
        let mut out: Vec<RunResult> = self
            .batches(runs)
            .iter()
            .flat_map(|b| {
                self.simulate_batch(b, &mut scratch, &never)
                    .expect("a token nobody holds is never requested")
            })
            .collect();
        out.sort_by_key(|r| r.row.address.run_id);
        out
    }

    fn values(&self, run_id: u64) -> Values {
        self.plan.values(self.plan.address(run_id).point_id)
    }

    /// Simulates 1 to [`Simulator::batch_runs`] runs that share a step size in one kernel
    /// call. `scratch` is the trace buffer, reused across calls. A request on `stop` ends
    /// the batch without results (within [`integrate::POLL_STEPS`] steps).
    pub fn simulate_batch(
        &self,
        runs: &[u64],
        scratch: &mut Vec<f64>,
        stop: &StopToken,
    ) -> Result<Vec<RunResult>, Stopped> {
        if self.plan.spec.network.is_some() {
            return self.simulate_network_batch(runs, scratch, stop);
        }
        let n = runs.len();
        let cap = self.batch_runs();
        assert!(n > 0 && n <= cap, "a batch holds 1 to {cap} runs");
        let spec = self.plan.spec;
        let dt = self.values(runs[0]).get(Slot::DtMs);
        // The analysis of the previous run, reused by its replicates (same node, same dt).
        let mut analysed = None;
        let filled: Vec<Filled> = runs
            .chunks(LANES)
            .map(|chunk| self.fill(chunk, dt, &mut analysed))
            .collect();
        if let Some(adaptive) = spec.adaptive {
            return self.integrate_adaptive(adaptive.dt_max_ms, dt, filled, scratch, stop);
        }
        let [
            Filled {
                batch,
                rows,
                traced,
                ..
            },
        ] = <[Filled; 1]>::try_from(filled)
            .unwrap_or_else(|_| unreachable!("a fixed-step batch is one lane batch"));
        let schedule = fixed_schedule(spec, dt, traced.iter().any(|&t| t));
        let result = integrate::integrate(self.isa, spec.method, &schedule, &batch, scratch, stop)?;
        let rows_recorded = scratch.len() / (2 * LANES);
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(l, mut row)| {
                let finite = result.finite_steps[l];
                row.outcome = if finite < schedule.steps {
                    Outcome::Diverged {
                        at_ms: (finite + 1) as f64 * dt,
                    }
                } else {
                    Outcome::Finished {
                        r_hz: result
                            .r
                            .summary(l, schedule.stat_count())
                            .scaled(HZ_PER_KHZ),
                        r_hz_final: result.r_final[l] * HZ_PER_KHZ,
                        v: result.v.summary(l, schedule.stat_count()),
                        v_final: result.v_final[l],
                    }
                };
                let trace = if traced[l] {
                    (0..rows_recorded)
                        .map(|i| (i as u64 * schedule.trace_stride, i))
                        .take_while(|&(step, _)| step <= finite)
                        .map(|(step, i)| TracePoint {
                            t_ms: step as f64 * dt,
                            node: 0,
                            // Row 0 is the initial state as drawn: kHz and back may move
                            // it by an ulp.
                            r_hz: if i == 0 {
                                row.init_r_hz
                            } else {
                                scratch[i * 2 * LANES + l] * HZ_PER_KHZ
                            },
                            v: scratch[i * 2 * LANES + LANES + l],
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                RunResult::single_node(row, trace)
            })
            .collect())
    }

    /// Fills one lane batch with 1 to [`LANES`] runs that share the step `dt`; lanes past
    /// the last run repeat the first one (their results are dropped). `analysed` is the
    /// analysis of the last run filled, reused by its replicates.
    fn fill(&self, runs: &[u64], dt: f64, analysed: &mut Option<Analysis>) -> Filled {
        let spec = self.plan.spec;
        let n = runs.len();
        let mut batch = Batch::default();
        let mut rows = Vec::with_capacity(n);
        let mut traced = [false; LANES];
        let mut lanes = LaneInputs::new(spec.input, spec.noise);
        let mut tol = Tolerances::default();
        let constant =
            spec.input == [InputForm::Constant; 2] && !spec.noise.contains(&NoiseKind::Ou);
        for l in 0..LANES {
            // Lanes past the last run repeat the first one; their results are dropped.
            let run_id = if l < n { runs[l] } else { runs[0] };
            let address = self.plan.address(run_id);
            let values = self.plan.values(address.point_id);
            debug_assert_eq!(values.get(Slot::DtMs), dt, "a batch shares one dt");
            let mut rng = Xoshiro::from_run(spec.seed, run_id);
            let init_r_hz = draw(spec.init_r_hz, values.get(Slot::InitRHz), &mut rng);
            let init_v = draw(spec.init_v, values.get(Slot::InitV), &mut rng);
            let node = node_params(&values, spec.input);
            let sigma = |var: Var, scale: f64| {
                if spec.noise[var as usize] == NoiseKind::White {
                    values.get(Slot::noise(var, "sigma").unwrap()) * scale
                } else {
                    0.0
                }
            };
            batch.coef.set_lane(
                l,
                &node,
                sigma(Var::RHz, 1.0 / HZ_PER_KHZ),
                sigma(Var::V, 1.0),
                dt,
            );
            lanes.set_lane(l, &values, dt);
            batch.r0[l] = init_r_hz / HZ_PER_KHZ;
            batch.v0[l] = init_v;
            batch.rng.set_lane(l, &rng);
            if spec.adaptive.is_some() {
                tol.rtol[l] = values.get(Slot::Rtol);
                tol.atol_r[l] = values.get(Slot::AtolRHz) / HZ_PER_KHZ;
                tol.atol_v[l] = values.get(Slot::AtolV);
            }
            if l < n {
                traced[l] = spec
                    .traces
                    .as_ref()
                    .is_some_and(|t| t.runs.contains(run_id));
                let analysis = constant.then(|| match *analysed {
                    Some((n, states, stability)) if n == node => (states, stability),
                    _ => {
                        // An adaptive step has no fixed dt whose stability matters.
                        let fixed_dt = spec.adaptive.is_none().then_some(dt);
                        let (states, stability) = node.analyse(spec.method, fixed_dt);
                        *analysed = Some((node, states, stability));
                        (states, stability)
                    }
                });
                rows.push(SummaryRow {
                    address,
                    values,
                    init_r_hz,
                    init_v,
                    outcome: Outcome::Diverged { at_ms: f64::NAN },
                    stable_states: analysis.map(|a| a.0),
                    dt_stability: analysis.and_then(|a| a.1),
                    steps: None,
                    network: None,
                });
            }
        }
        batch.drive = lanes.into_drive();
        Filled {
            batch,
            tol,
            rows,
            traced,
        }
    }

    /// Integrates the filled batches as one adaptive queue.
    fn integrate_adaptive(
        &self,
        dt_max_ms: f64,
        dt: f64,
        filled: Vec<Filled>,
        scratch: &mut Vec<f64>,
        stop: &StopToken,
    ) -> Result<Vec<RunResult>, Stopped> {
        let spec = self.plan.spec;
        let traced: Vec<bool> = filled
            .iter()
            .flat_map(|f| f.traced[..f.rows.len()].iter().copied())
            .collect();
        let schedule = AdaptiveSchedule {
            pair: match spec.method {
                Method::Dop853 => AdaptivePair::Dop853,
                // The spec allows adaptive steps with dopri5 and dop853 only.
                _ => AdaptivePair::Dopri5,
            },
            duration_ms: spec.duration_ms,
            transient_ms: spec.transient_ms,
            dt_init_ms: dt,
            dt_max_ms,
            max_trial_steps: integrate::MAX_TRIAL_STEPS,
            trace_every_ms: match &spec.traces {
                Some(t) if traced.contains(&true) => t.every_ms,
                _ => 0.0,
            },
        };
        let queue: Vec<(Batch, Tolerances)> = filled.iter().map(|f| (f.batch, f.tol)).collect();
        let rows: Vec<SummaryRow> = filled.into_iter().flat_map(|f| f.rows).collect();
        let result =
            integrate::integrate_adaptive(self.isa, &schedule, &queue, rows.len(), scratch, stop)?;
        let trace_rows = schedule.trace_rows();
        Ok(rows
            .into_iter()
            .zip(&result.runs)
            .enumerate()
            .map(|(q, (mut row, run))| {
                row.steps = Some(StepCounts {
                    steps: run.steps,
                    rejected: run.rejected,
                });
                let at_ms = run.end_ms;
                row.outcome = match run.end {
                    LaneEnd::Finished => Outcome::Finished {
                        r_hz: run.r.scaled(HZ_PER_KHZ),
                        r_hz_final: run.r_final * HZ_PER_KHZ,
                        v: run.v,
                        v_final: run.v_final,
                    },
                    LaneEnd::Diverged => Outcome::Diverged { at_ms },
                    end => Outcome::Stopped {
                        at_ms,
                        reason: end.reason().expect("a lane ends with a reason"),
                    },
                };
                let trace = if traced[q] {
                    let row_of = |i: usize| &scratch[2 * (q * trace_rows + i)..][..2];
                    (0..run.trace_len)
                        .map(|i| TracePoint {
                            t_ms: (i as f64 * schedule.trace_every_ms).min(schedule.duration_ms),
                            node: 0,
                            r_hz: if i == 0 {
                                row.init_r_hz
                            } else {
                                row_of(i)[0] * HZ_PER_KHZ
                            },
                            v: row_of(i)[1],
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                RunResult::single_node(row, trace)
            })
            .collect())
    }
}

/// The node's parameters; time-varying inputs contribute no constant part.
pub fn node_params(values: &Values, input: [InputForm; 2]) -> NodeParams {
    let constant = |var: Var| match input[var as usize] {
        InputForm::Constant => values.get(var.input_slot()),
        _ => 0.0,
    };
    NodeParams::from_user(
        values.get(Slot::TauMs),
        values.get(Slot::Eta),
        values.get(Slot::J),
        values.get(Slot::Delta),
        constant(Var::RHz),
        constant(Var::V),
    )
}

/// Per-lane waveform and OU parameters while a batch is filled, in kernel units.
struct LaneInputs {
    input: [InputForm; 2],
    noise: [NoiseKind; 2],
    p: [[Lanes; 4]; 2],
    ou: [Ou; 2],
}

impl LaneInputs {
    fn new(input: [InputForm; 2], noise: [NoiseKind; 2]) -> LaneInputs {
        LaneInputs {
            input,
            noise,
            p: [[[0.0; LANES]; 4]; 2],
            ou: [Ou::new(); 2],
        }
    }

    fn set_lane(&mut self, l: usize, values: &Values, dt: f64) {
        for var in Var::BOTH {
            let x = var as usize;
            // Rate inputs are given in Hz/ms; the kernel works in kHz/ms.
            let scale = if var == Var::RHz {
                1.0 / HZ_PER_KHZ
            } else {
                1.0
            };
            let get = |key: &str| values.get(Slot::input(var, key).expect("input slot"));
            let p = match self.input[x] {
                InputForm::Constant => [0.0; 4],
                InputForm::Step => [
                    get("at_ms"),
                    get("before") * scale,
                    get("after") * scale,
                    0.0,
                ],
                InputForm::Pulse => [
                    get("start_ms"),
                    get("stop_ms"),
                    get("amplitude") * scale,
                    0.0,
                ],
                InputForm::Sine => [
                    get("amplitude") * scale,
                    TAU * get("freq_hz") / HZ_PER_KHZ,
                    get("phase"),
                    get("offset") * scale,
                ],
            };
            for (i, value) in p.into_iter().enumerate() {
                self.p[x][i][l] = value;
            }
            if self.noise[x] == NoiseKind::Ou {
                let sigma = values.get(Slot::noise(var, "sigma").expect("noise slot")) * scale;
                let tau = values.get(Slot::noise(var, "tau_ms").expect("noise slot"));
                self.ou[x].set_lane(l, sigma, tau, dt);
            }
        }
    }

    fn into_drive(self) -> integrate::Drive {
        let waveform = [0, 1].map(|x| {
            let [a, b, c, d] = self.p[x];
            match self.input[x] {
                InputForm::Constant => Waveform::None,
                InputForm::Step => Waveform::Step {
                    at: a,
                    before: b,
                    after: c,
                },
                InputForm::Pulse => Waveform::Pulse {
                    start: a,
                    stop: b,
                    amplitude: c,
                },
                InputForm::Sine => Waveform::Sine {
                    amplitude: a,
                    omega: b,
                    phase: c,
                    offset: d,
                },
            }
        });
        let ou = [0, 1].map(|x| (self.noise[x] == NoiseKind::Ou).then_some(self.ou[x]));
        integrate::Drive { waveform, ou }
    }
}

/// A run's initial value: the parameter's value, or a draw from the run's stream.
fn draw(dist: InitDist, value: f64, rng: &mut Xoshiro) -> f64 {
    match dist {
        InitDist::Param => value,
        InitDist::Uniform { lo, hi } => lo + (hi - lo) * rng.uniform(),
        InitDist::Normal { mean, std } => mean + std * rng.normal_pair::<Unfused>().0,
    }
}

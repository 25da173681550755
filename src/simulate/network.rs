//! Network runs: fills a network lane batch from the plan and the connectome, calls the
//! network kernel, and turns its slots back into per-run and per-node rows.
//!
//! Node `i` of run `r` draws from the run's stream jumped `i` times (2^128 values apart):
//! its initial r then v (when drawn), then its noise in the single-node order. Its
//! parameters are the run's, plus the node's `node_offsets`.

use super::{
    LaneInputs, NodeRow, RunResult, Simulator, TracePoint, draw, fixed_schedule, node_params,
};
use crate::integrate::network::{
    NET_LANES, NODES_PER_GROUP, NetBatch, NetSchedule, NodeInit, Wiring, integrate_network, pearson,
};
use crate::integrate::{LANES, StopToken, Stopped, Xoshiro};
use crate::model::HZ_PER_KHZ;
use crate::network::delay_steps;
use crate::output::{NetworkStats, Outcome, SummaryRow};
use crate::spec::{History, NetworkData, NoiseKind, Slot, Var};

impl Simulator<'_> {
    /// The connectome's edges at step `dt` and conduction speed `speed` (NaN without
    /// tract lengths).
    fn wiring(&self, data: &NetworkData, dt: f64, speed: f64) -> Wiring {
        let c = &data.connectome;
        let coupling = self
            .plan
            .spec
            .network
            .as_ref()
            .expect("a network spec")
            .coupling;
        let incoming: Vec<Vec<(usize, f64, usize)>> = (0..c.nodes())
            .map(|i| {
                c.incoming(i)
                    .iter()
                    .map(|e| {
                        let d = if c.has_lengths() {
                            delay_steps(e.length_mm, speed, dt)
                                .expect("the spec's check bounds every delay")
                                as usize
                        } else {
                            0
                        };
                        (e.source as usize, e.weight, d)
                    })
                    .collect()
            })
            .collect();
        Wiring::new(coupling, &incoming)
    }

    /// Simulates 1 to [`NET_LANES`] network runs that share a step and a speed.
    pub(super) fn simulate_network_batch(
        &self,
        runs: &[u64],
        scratch: &mut Vec<f64>,
        stop: &StopToken,
    ) -> Result<Vec<RunResult>, Stopped> {
        let n_runs = runs.len();
        assert!(
            n_runs > 0 && n_runs <= NET_LANES,
            "a network batch holds 1 to {NET_LANES} runs"
        );
        let spec = self.plan.spec;
        let net = spec.network.as_ref().expect("a network spec");
        let data = spec
            .network_data()
            .expect("the network's files are loaded before runs");
        let first = self.values(runs[0]);
        let dt = first.get(Slot::DtMs);
        let wiring = self.wiring(data, dt, first.get(Slot::SpeedMmPerMs));
        let nodes = wiring.nodes();
        let groups = wiring.groups();
        let mut batch = NetBatch::new(groups);
        let mut inputs: Vec<LaneInputs> = (0..groups)
            .map(|_| LaneInputs::new(spec.input, spec.noise))
            .collect();
        let mut history = vec![[0.0; NET_LANES]; nodes];
        let mut rows = Vec::with_capacity(n_runs);
        let mut traced = [false; NET_LANES];
        // Per lane and node: the initial values as drawn (user units).
        let mut init = vec![[(0.0, 0.0); NET_LANES]; nodes];
        for l in 0..NET_LANES {
            // Lanes past the last run repeat the first one; their results are dropped.
            let run_id = if l < n_runs { runs[l] } else { runs[0] };
            let address = self.plan.address(run_id);
            let values = self.plan.values(address.point_id);
            debug_assert_eq!(values.get(Slot::DtMs), dt, "a batch shares one dt");
            batch.k[l] = values.get(Slot::K);
            let sigma = |var: Var, scale: f64| {
                if spec.noise[var as usize] == NoiseKind::White {
                    values.get(Slot::noise(var, "sigma").expect("noise slot")) * scale
                } else {
                    0.0
                }
            };
            let mut stream = Xoshiro::from_run(spec.seed, run_id);
            for i in 0..groups * NODES_PER_GROUP {
                // Padding slots repeat node 0's parameters and the last node's stream:
                // nothing couples to them and their results are never read.
                let src = if i < nodes { i } else { 0 };
                if i > 0 && i < nodes {
                    stream.jump();
                }
                let mut node_stream = stream;
                let r0_hz = draw(spec.init_r_hz, values.get(Slot::InitRHz), &mut node_stream);
                let v0 = draw(spec.init_v, values.get(Slot::InitV), &mut node_stream);
                let mut params = node_params(&values, spec.input);
                for (slot, offset) in &data.offsets {
                    let x = offset[src];
                    match slot {
                        Slot::TauMs => params.tau_ms += x,
                        Slot::Eta => params.eta += x,
                        Slot::J => params.j += x,
                        Slot::Delta => params.delta += x,
                        _ => unreachable!("node_offsets vary node parameters only"),
                    }
                }
                let node = NodeInit {
                    params,
                    sigma: [sigma(Var::RHz, 1.0 / HZ_PER_KHZ), sigma(Var::V, 1.0)],
                    r0_khz: r0_hz / HZ_PER_KHZ,
                    v0,
                    stream: node_stream,
                };
                batch.set_node(i, l, &node, dt);
                let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
                inputs[g].set_lane(q * NET_LANES + l, &values, dt);
                if i < nodes {
                    init[i][l] = (r0_hz, v0);
                    history[i][l] = match net.history {
                        History::Initial => r0_hz / HZ_PER_KHZ,
                        History::RHz(h) => h / HZ_PER_KHZ,
                    };
                }
            }
            if l < n_runs {
                traced[l] = spec
                    .traces
                    .as_ref()
                    .is_some_and(|t| t.runs.contains(run_id));
                rows.push(SummaryRow {
                    address,
                    values,
                    init_r_hz: init[0][l].0,
                    init_v: init[0][l].1,
                    outcome: Outcome::Diverged { at_ms: f64::NAN },
                    stable_states: None,
                    dt_stability: None,
                    steps: None,
                    network: None,
                });
            }
        }
        for (b, lanes) in batch.groups.iter_mut().zip(inputs) {
            b.drive = lanes.into_drive();
        }
        batch.history = history;
        let fc_wanted = spec.fc_output || data.fc_target.is_some();
        let schedule = NetSchedule {
            base: fixed_schedule(spec, dt, traced.iter().any(|&t| t)),
            fc_stride: if fc_wanted {
                (net.fc_sample_ms / dt).round() as u64
            } else {
                0
            },
        };
        let result = integrate_network(
            self.isa,
            spec.method,
            &schedule,
            &wiring,
            &batch,
            scratch,
            stop,
        )?;
        let steps = schedule.base.steps;
        let stat_count = schedule.base.stat_count();
        let row_len = groups * 2 * LANES;
        let rows_recorded = scratch.len() / row_len.max(1);
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(l, mut row)| {
                let finite = result.finite_steps(nodes, l);
                let diverged = finite < steps;
                row.outcome = if diverged {
                    Outcome::Diverged {
                        at_ms: (finite + 1) as f64 * dt,
                    }
                } else {
                    let r = result.mean_rate.summary(l, stat_count);
                    let v = result.mean_v.summary(l, stat_count);
                    Outcome::Finished {
                        r_hz: r.scaled(HZ_PER_KHZ),
                        r_hz_final: result.final_mean_rate[l] * HZ_PER_KHZ,
                        v,
                        v_final: result.final_mean_v[l],
                    }
                };
                let node_rows: Vec<NodeRow> = (0..nodes)
                    .map(|i| {
                        let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
                        let slot = q * NET_LANES + l;
                        let gr = &result.groups[g];
                        let node_finite = gr.finite_steps[slot];
                        NodeRow {
                            node: i as u32,
                            init_r_hz: init[i][l].0,
                            init_v: init[i][l].1,
                            outcome: if node_finite < steps {
                                Outcome::Diverged {
                                    at_ms: (node_finite + 1) as f64 * dt,
                                }
                            } else {
                                Outcome::Finished {
                                    r_hz: gr.r.summary(slot, stat_count).scaled(HZ_PER_KHZ),
                                    r_hz_final: gr.r_final[slot] * HZ_PER_KHZ,
                                    v: gr.v.summary(slot, stat_count),
                                    v_final: gr.v_final[slot],
                                }
                            },
                        }
                    })
                    .collect();
                let fc = match &result.fc {
                    Some(sums) if !diverged => sums.correlations(l),
                    Some(_) => vec![f64::NAN; nodes * nodes.saturating_sub(1) / 2],
                    None => Vec::new(),
                };
                row.network = Some(NetworkStats {
                    fc_fit: data.fc_target.as_ref().map(|target| pearson(&fc, target)),
                    fc_mean: (!fc.is_empty()).then(|| fc.iter().sum::<f64>() / fc.len() as f64),
                });
                let trace = if traced[l] {
                    let mut points = Vec::new();
                    for (k, rec) in scratch
                        .chunks_exact(row_len)
                        .take(rows_recorded)
                        .enumerate()
                    {
                        let step = k as u64 * schedule.base.trace_stride;
                        if step > finite {
                            break;
                        }
                        for i in 0..nodes {
                            let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
                            let at = g * 2 * LANES + q * NET_LANES + l;
                            points.push(TracePoint {
                                t_ms: step as f64 * dt,
                                node: i as u32,
                                // Row 0 is the initial state as drawn.
                                r_hz: if k == 0 {
                                    init[i][l].0
                                } else {
                                    rec[at] * HZ_PER_KHZ
                                },
                                v: rec[at + LANES],
                            });
                        }
                    }
                    points
                } else {
                    Vec::new()
                };
                let keep_fc = if spec.fc_output { fc } else { Vec::new() };
                RunResult {
                    row,
                    trace,
                    nodes: node_rows,
                    fc: keep_fc,
                }
            })
            .collect())
    }
}

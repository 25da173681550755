//! What `mpr-sweep plan` reports: the axes, run and step counts, output size and time
//! estimates, and the shards, as text or JSON.

use std::fmt::Write as _;

use crate::diagnose::DtReport;
use crate::integrate::Isa;
use crate::integrate::network::{NET_LANES, Wiring};
use crate::network::delay_steps;
use crate::output::summary_fields;
use crate::plan::estimate::{duration, ns_per_run_step, run_steps};
use crate::plan::{Plan, Shard, TRACE_BYTES_PER_ROW};
use crate::spec::{Slot, Spec};

/// Measured zstd ratios of the parts: about 0.6 for the summary, 0.5 for the traces (the
/// traces' ratio is in [`TRACE_BYTES_PER_ROW`]).
const SUMMARY_COMPRESSION: f64 = 0.6;

/// Shard ranges listed at most (the JSON lists them all up to this many shards).
const MAX_LISTED_SHARDS: u64 = 10_000;

/// One dimension of the grid as `plan` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisReport {
    /// Column names of the parameters (several for a zip group).
    pub names: Vec<String>,
    /// Each parameter's form as written (`linspace(-10, 0, 101)`, ...).
    pub forms: Vec<String>,
    /// Values along the dimension.
    pub len: u64,
}

/// The plan of a sweep with its estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanReport {
    /// `name` of the spec.
    pub name: Option<String>,
    /// The swept dimensions, slowest first.
    pub axes: Vec<AxisReport>,
    /// Grid points.
    pub points: u64,
    /// Runs per point.
    pub replicates: u32,
    /// Runs of the whole sweep.
    pub runs: u64,
    /// Steps of the longest run (at the smallest dt).
    pub steps_per_run: u64,
    /// The values dt takes (ms).
    pub dt_ms: Vec<f64>,
    /// Simulated time per run (ms).
    pub duration_ms: f64,
    /// Statistics start here (ms).
    pub transient_ms: f64,
    /// The integration method's name.
    pub method: &'static str,
    /// The steps are adaptive (`simulation.adaptive`): step counts and time are estimated
    /// as if every run took fixed steps of `dt_ms`.
    pub adaptive: bool,
    /// Steps summed over all runs.
    pub run_steps: f64,
    /// Estimated size of the summary parts (bytes).
    pub summary_bytes: f64,
    /// Trace rows of the whole sweep.
    pub trace_rows: f64,
    /// Estimated size of the trace parts (bytes).
    pub trace_bytes: f64,
    /// Why `run` would refuse the traces without `--force`, if it would.
    pub trace_limit: Option<String>,
    /// The kernel path the estimate assumes.
    pub isa: Isa,
    /// Threads the estimate assumes.
    pub threads: usize,
    /// Estimated ns per run-step per core.
    pub ns_per_run_step: f64,
    /// Estimated wall time (s).
    pub seconds: f64,
    /// Expected peak memory of `run` on `threads` threads (bytes): bounded by the rows in
    /// flight, not by the runs (see [`super::memory_estimate`]).
    pub memory_bytes: f64,
    /// Shards asked for.
    pub shards: u64,
    /// Run ranges of the first shards (at most 10,000).
    pub shard_runs: Vec<(u64, u64)>,
    /// The step-size check (None unless the inputs are constant).
    pub dt_stability: Option<DtReport>,
    /// A network sweep's size and memory.
    pub network: Option<NetworkReport>,
}

/// What `plan` says about a network.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkReport {
    /// Nodes.
    pub nodes: usize,
    /// Edges (nonzero off-diagonal weights).
    pub edges: usize,
    /// The longest delay (ms, at the slowest speed), and in steps (at the smallest dt).
    pub max_delay_ms: f64,
    /// The longest delay in steps, `ceil(delay / dt)`.
    pub max_delay_steps: u64,
    /// Bytes a lane batch of the network kernel holds (ring buffer of past rates, states,
    /// statistics, FC sums).
    pub batch_bytes: u64,
}

impl NetworkReport {
    fn new(spec: &Spec) -> Option<NetworkReport> {
        let data = spec.network_data()?;
        let c = &data.connectome;
        let slowest = spec
            .param(Slot::SpeedMmPerMs)
            .map_or(f64::INFINITY, |p| p.axis.range().0);
        let dt = spec.dt_values().into_iter().fold(f64::INFINITY, f64::min);
        let max_delay_steps = if c.has_lengths() {
            delay_steps(c.max_length_mm(), slowest, dt).map_or(u64::MAX, u64::from)
        } else {
            0
        };
        let history_len = (max_delay_steps as usize).saturating_add(1);
        Some(NetworkReport {
            nodes: c.nodes(),
            edges: c.edges(),
            max_delay_ms: if c.has_lengths() {
                c.max_length_mm() / slowest
            } else {
                0.0
            },
            max_delay_steps,
            batch_bytes: Wiring::bytes_for(c.nodes(), history_len, spec.computes_fc()) as u64,
        })
    }
}

impl PlanReport {
    /// The report of `plan` for a run on `threads` threads with the `isa` path, split
    /// into `shards` shards.
    pub fn new(spec: &Spec, plan: &Plan, shards: u64, isa: Isa, threads: usize) -> PlanReport {
        let run_steps = run_steps(spec, plan.runs);
        let ns_per_run_step = ns_per_run_step(spec, isa);
        let network = NetworkReport::new(spec);
        let memory_bytes = super::memory_estimate(
            spec,
            plan,
            threads,
            network.as_ref().map_or(0, |n| n.batch_bytes),
        );
        let summary_cols = summary_fields(spec).len() as f64;
        let trace_rows = plan.trace_rows();
        let axes = plan
            .dims
            .iter()
            .map(|d| AxisReport {
                names: d
                    .params
                    .iter()
                    .map(|&j| spec.params[j].slot.column().to_string())
                    .collect(),
                forms: d
                    .params
                    .iter()
                    .map(|&j| spec.params[j].axis.describe())
                    .collect(),
                len: d.len,
            })
            .collect();
        let shard_runs = (0..shards.min(MAX_LISTED_SHARDS))
            .map(|index| {
                let r = plan.shard_range(Shard {
                    index,
                    count: shards,
                });
                (r.start, r.end)
            })
            .collect();
        PlanReport {
            name: spec.name.clone(),
            axes,
            points: plan.points,
            replicates: spec.replicates,
            runs: plan.runs,
            steps_per_run: spec.max_steps(),
            dt_ms: spec.dt_values(),
            duration_ms: spec.duration_ms,
            transient_ms: spec.transient_ms,
            method: spec.method.name(),
            adaptive: spec.adaptive.is_some(),
            run_steps,
            summary_bytes: plan.runs as f64 * summary_cols * 8.0 * SUMMARY_COMPRESSION,
            trace_rows,
            trace_bytes: trace_rows * TRACE_BYTES_PER_ROW,
            trace_limit: plan.check_trace_size(false).err().map(|e| e.to_string()),
            isa,
            threads,
            ns_per_run_step,
            seconds: run_steps * ns_per_run_step * 1e-9 / threads as f64,
            memory_bytes,
            shards,
            shard_runs,
            dt_stability: DtReport::compute(plan),
            network,
        }
    }

    /// The report as JSON (`plan --json`).
    pub fn json(&self) -> serde_json::Value {
        let dt_ms = match self.dt_ms.as_slice() {
            [dt] => serde_json::json!(dt),
            dts => serde_json::json!(dts),
        };
        serde_json::json!({
            "name": self.name,
            "axes": self.axes.iter().map(|a| serde_json::json!({"names": a.names, "forms": a.forms, "len": a.len})).collect::<Vec<_>>(),
            "points": self.points,
            "replicates": self.replicates,
            "runs": self.runs,
            "steps_per_run": self.steps_per_run,
            "dt_ms": dt_ms,
            "duration_ms": self.duration_ms,
            "transient_ms": self.transient_ms,
            "method": self.method,
            "adaptive": self.adaptive,
            "run_steps": self.run_steps,
            "summary_bytes_estimate": self.summary_bytes.round(),
            "trace_rows": self.trace_rows,
            "trace_bytes_estimate": self.trace_bytes.round(),
            "trace_limit_exceeded": self.trace_limit.is_some(),
            "isa": self.isa.name(),
            "threads": self.threads,
            "seconds_estimate": self.seconds,
            "peak_memory_bytes_estimate": self.memory_bytes.round(),
            "shards": self.shards,
            "shard_runs": self.shard_runs,
            "dt_stability": self.dt_stability.as_ref().map(DtReport::json),
            "network": self.network.as_ref().map(|n| serde_json::json!({
                "nodes": n.nodes,
                "edges": n.edges,
                "max_delay_ms": n.max_delay_ms,
                "max_delay_steps": n.max_delay_steps,
                "batch_bytes": n.batch_bytes,
                "memory_bytes_estimate": n.batch_bytes * self.threads as u64,
            })),
        })
    }

    /// The report as text (`plan`).
    pub fn text(&self) -> String {
        let mut w = String::new();
        if let Some(name) = &self.name {
            let _ = writeln!(w, "sweep: {name}");
        }
        if self.axes.is_empty() {
            let _ = writeln!(w, "axes: none (a single point)");
        } else {
            let _ = writeln!(w, "axes (point ids are row-major, first axis slowest):");
            for a in &self.axes {
                let label = a.names.join(" + ");
                let form = a.forms.join(" | ");
                let zipped = if a.names.len() > 1 { "  (zipped)" } else { "" };
                let _ = writeln!(w, "  {label:<22} {:>10}  {form}{zipped}", a.len);
            }
        }
        let _ = writeln!(
            w,
            "points: {}  x  replicates: {}  =  runs: {}",
            self.points, self.replicates, self.runs
        );
        let several = self.dt_ms.len() > 1;
        let dt_text = match self.dt_ms.as_slice() {
            [dt] => format!("dt {dt} ms"),
            dts => format!(
                "dt from {} ms",
                dts.iter().copied().fold(f64::INFINITY, f64::min)
            ),
        };
        let _ = writeln!(
            w,
            "steps per run: {}{} ({} ms at {dt_text}, statistics from {} ms), method {}",
            if several { "up to " } else { "" },
            self.steps_per_run,
            self.duration_ms,
            self.transient_ms,
            self.method
        );
        if self.adaptive {
            let _ = writeln!(
                w,
                "adaptive steps: each run chooses its own steps; the counts and the time below assume fixed steps of dt_ms"
            );
        }
        if let Some(n) = &self.network {
            let _ = writeln!(
                w,
                "network: {} nodes, {} edges ({:.1} per node), longest delay {:.4} ms = {} steps; {} per lane batch of {NET_LANES} runs, ~{} on {} threads",
                n.nodes,
                n.edges,
                n.edges as f64 / n.nodes as f64,
                n.max_delay_ms,
                n.max_delay_steps,
                human_bytes(n.batch_bytes as f64),
                human_bytes((n.batch_bytes * self.threads as u64) as f64),
                self.threads
            );
        }
        let _ = writeln!(w, "run-steps: {:.3e}", self.run_steps);
        let _ = writeln!(
            w,
            "output: summary ~{}, traces ~{} ({:.0} rows)",
            human_bytes(self.summary_bytes),
            human_bytes(self.trace_bytes),
            self.trace_rows
        );
        if let Some(e) = &self.trace_limit {
            let _ = writeln!(
                w,
                "warning: `run` will refuse this sweep without --force: {e}"
            );
        }
        let time = duration(self.seconds.clamp(0.0, 1e12));
        let about = if time.starts_with('<') { "" } else { "~" };
        let _ = writeln!(
            w,
            "estimated time: {about}{time} on {} threads ({} path, ~{:.1} ns per run-step per core)",
            self.threads,
            self.isa.name(),
            self.ns_per_run_step
        );
        let _ = writeln!(
            w,
            "memory: up to ~{} on {} threads (rows in flight, whatever the number of runs)",
            human_bytes(self.memory_bytes),
            self.threads
        );
        if let Some(report) = &self.dt_stability {
            match report.warning() {
                Some(warning) => w.push_str(&warning),
                None => {
                    let _ = writeln!(w, "{}", report.all_stable_line());
                }
            }
        }
        if self.shards > 1 {
            let (a, b) = self.shard_runs[0];
            let _ = writeln!(
                w,
                "shards: {} of about {} runs each (shard 0: runs {a}..{b})",
                self.shards,
                b - a
            );
        }
        w
    }
}

/// `1.4 MB`: decimal units, one decimal.
fn human_bytes(b: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut x = b;
    let mut i = 0;
    while x >= 1000.0 && i + 1 < units.len() {
        x /= 1000.0;
        i += 1;
    }
    format!("{x:.1} {}", units[i])
}

//! Row building: the summary and trace rows of a piece of a shard, as Arrow batches (built
//! by the workers, then cut into row groups by a [`TableWriter`](super::TableWriter)).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, UInt8Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Schema;

use super::schema::param_slots;
use crate::integrate::Summary;
use crate::model::{StableStates, StepStability};
use crate::plan::{RunAddress, Values};
use crate::spec::{Slot, Spec};

/// Rows per summary row group.
pub const SUMMARY_GROUP_ROWS: usize = 65_536;
/// Rows per trace row group.
pub const TRACE_GROUP_ROWS: usize = 1 << 20;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The run reached `duration_ms` with a finite state.
    Finished {
        /// Statistics of r in Hz over t >= transient_ms.
        r_hz: Summary,
        /// r at the end of the run, in Hz.
        r_hz_final: f64,
        /// Statistics of v over t >= transient_ms.
        v: Summary,
        /// v at the end of the run.
        v_final: f64,
    },
    /// The state became non-finite or beyond [`crate::integrate::DIVERGED`].
    Diverged {
        /// Time in ms of the first such state (the end of its step).
        at_ms: f64,
    },
    /// An adaptive run stopped before `duration_ms`: its step size fell below
    /// [`crate::integrate::DT_FLOOR_MS`] (`dt_floor`) or it took
    /// [`crate::integrate::MAX_TRIAL_STEPS`] trial steps (`step_cap`).
    Stopped {
        /// Time reached, ms.
        at_ms: f64,
        /// `dt_floor` or `step_cap`.
        reason: &'static str,
    },
}

impl Outcome {
    /// The ten statistic columns (`r_hz_{mean,std,min,max,final}`, `v_...`), null unless
    /// the run finished, and `diverged_at_ms`, null unless it diverged.
    pub fn columns(&self) -> ([Option<f64>; 10], Option<f64>) {
        match *self {
            Outcome::Finished {
                r_hz,
                r_hz_final,
                v,
                v_final,
            } => (
                [
                    r_hz.mean, r_hz.std, r_hz.min, r_hz.max, r_hz_final, v.mean, v.std, v.min,
                    v.max, v_final,
                ]
                .map(Some),
                None,
            ),
            Outcome::Diverged { at_ms } => ([None; 10], Some(at_ms)),
            Outcome::Stopped { .. } => ([None; 10], None),
        }
    }

    /// Whether the run diverged.
    pub fn diverged(&self) -> bool {
        matches!(self, Outcome::Diverged { .. })
    }
}

/// The step counts of an adaptive run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepCounts {
    /// Accepted steps.
    pub steps: u64,
    /// Rejected trial steps.
    pub rejected: u64,
}

/// One summary row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryRow {
    /// Run id, point id and replicate.
    pub address: RunAddress,
    /// The run's parameter values.
    pub values: Values,
    /// The run's initial rate in Hz (drawn or given).
    pub init_r_hz: f64,
    /// The run's initial v (drawn or given).
    pub init_v: f64,
    /// Its statistics, or when it diverged.
    pub outcome: Outcome,
    /// The analytic stable states, for runs with constant inputs.
    pub stable_states: Option<StableStates>,
    /// Whether the run's step can settle on those states, for fixed-step runs with
    /// constant inputs.
    pub dt_stability: Option<StepStability>,
    /// Step counts, for adaptive runs.
    pub steps: Option<StepCounts>,
    /// FC measures, for network runs.
    pub network: Option<NetworkStats>,
}

/// What the summary holds about a network run besides its mean-field statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkStats {
    /// Pearson correlation of the simulated and the target FC's upper triangles.
    pub fc_fit: Option<f64>,
    /// Mean of the simulated FC's upper triangle.
    pub fc_mean: Option<f64>,
}

/// Builds summary rows into one Arrow batch of the summary schema.
pub struct SummaryBatch {
    schema: Arc<Schema>,
    slots: Vec<Slot>,
    run_id: UInt64Builder,
    point_id: UInt64Builder,
    replicate: UInt32Builder,
    /// Parameters, init_r_hz, init_v, then the ten statistics, then diverged_at_ms.
    floats: Vec<Float64Builder>,
    diverged: BooleanBuilder,
    fp_count: UInt8Builder,
    /// fp_r_hz_low, fp_r_hz_high, fp_v_low, fp_v_high.
    fp: [Float64Builder; 4],
    fp_settled: StringBuilder,
    dt_stable: BooleanBuilder,
    dt_stable_max_ms: Float64Builder,
    /// `steps, rejected_steps, stop_reason, stopped_at_ms`: adaptive sweeps only.
    adaptive: Option<(UInt64Builder, UInt64Builder, StringBuilder, Float64Builder)>,
    /// `fc_fit, fc_mean`: network sweeps that compute FC only.
    fc: Option<[Float64Builder; 2]>,
}

impl SummaryBatch {
    /// An empty batch of `schema` (the [`summary_schema`](super::summary_schema) of
    /// `spec`), with room for `rows` rows.
    pub fn new(spec: &Spec, schema: Arc<Schema>, rows: usize) -> SummaryBatch {
        let slots = param_slots(spec);
        let floats = (0..slots.len() + 2 + 10 + 1)
            .map(|_| Float64Builder::with_capacity(rows))
            .collect();
        SummaryBatch {
            schema,
            slots,
            run_id: UInt64Builder::with_capacity(rows),
            point_id: UInt64Builder::with_capacity(rows),
            replicate: UInt32Builder::with_capacity(rows),
            floats,
            diverged: BooleanBuilder::with_capacity(rows),
            fp_count: UInt8Builder::with_capacity(rows),
            fp: std::array::from_fn(|_| Float64Builder::with_capacity(rows)),
            fp_settled: StringBuilder::new(),
            dt_stable: BooleanBuilder::with_capacity(rows),
            dt_stable_max_ms: Float64Builder::with_capacity(rows),
            adaptive: spec.adaptive.map(|_| {
                (
                    UInt64Builder::with_capacity(rows),
                    UInt64Builder::with_capacity(rows),
                    StringBuilder::new(),
                    Float64Builder::with_capacity(rows),
                )
            }),
            fc: spec
                .computes_fc()
                .then(|| std::array::from_fn(|_| Float64Builder::with_capacity(rows))),
        }
    }

    /// Appends one row.
    pub fn push(&mut self, row: &SummaryRow) {
        self.run_id.append_value(row.address.run_id);
        self.point_id.append_value(row.address.point_id);
        self.replicate.append_value(row.address.replicate);
        let mut col = self.floats.iter_mut();
        for &slot in &self.slots {
            col.next().unwrap().append_value(row.values.get(slot));
        }
        col.next().unwrap().append_value(row.init_r_hz);
        col.next().unwrap().append_value(row.init_v);
        let (stats, diverged_at_ms) = row.outcome.columns();
        for x in stats.into_iter().chain([diverged_at_ms]) {
            col.next().unwrap().append_option(x);
        }
        self.diverged.append_value(row.outcome.diverged());
        if let Some((steps, rejected, reason, stopped_at)) = self.adaptive.as_mut() {
            steps.append_option(row.steps.map(|s| s.steps));
            rejected.append_option(row.steps.map(|s| s.rejected));
            let stop = match row.outcome {
                Outcome::Stopped { at_ms, reason } => Some((at_ms, reason)),
                _ => None,
            };
            reason.append_option(stop.map(|s| s.1));
            stopped_at.append_option(stop.map(|s| s.0));
        }
        if let Some([fit, mean]) = self.fc.as_mut() {
            let stats = row.network.expect("network rows carry FC measures");
            // A correlation that is not defined (a node that does not vary) is null.
            let defined = |x: Option<f64>| x.filter(|x| !x.is_nan());
            fit.append_option(defined(stats.fc_fit));
            mean.append_option(defined(stats.fc_mean));
        }
        let fp = row.stable_states;
        self.fp_count.append_option(fp.map(|s| s.count));
        let low = fp.and_then(|s| s.low);
        let high = fp.and_then(|s| s.high);
        self.fp[0].append_option(low.map(|f| f.r_hz));
        self.fp[1].append_option(high.map(|f| f.r_hz));
        self.fp[2].append_option(low.map(|f| f.v));
        self.fp[3].append_option(high.map(|f| f.v));
        let settled = match (fp, row.outcome) {
            (
                Some(s),
                Outcome::Finished {
                    r_hz_final,
                    v_final,
                    ..
                },
            ) => Some(s.settled(r_hz_final, v_final).name()),
            _ => None,
        };
        self.fp_settled.append_option(settled);
        self.dt_stable
            .append_option(row.dt_stability.map(|s| s.stable));
        self.dt_stable_max_ms
            .append_option(row.dt_stability.map(|s| s.max_dt_ms));
    }

    /// The rows pushed, as one batch.
    pub fn finish(mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.run_id.finish()),
            Arc::new(self.point_id.finish()),
            Arc::new(self.replicate.finish()),
        ];
        let (stats, tail) = self.floats.split_at_mut(self.slots.len() + 12);
        columns.extend(stats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(self.diverged.finish()));
        columns.push(Arc::new(tail[0].finish()));
        columns.push(Arc::new(self.fp_count.finish()));
        columns.extend(self.fp.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(self.fp_settled.finish()));
        columns.push(Arc::new(self.dt_stable.finish()));
        columns.push(Arc::new(self.dt_stable_max_ms.finish()));
        if let Some((steps, rejected, reason, stopped_at)) = self.adaptive.as_mut() {
            columns.push(Arc::new(steps.finish()));
            columns.push(Arc::new(rejected.finish()));
            columns.push(Arc::new(reason.finish()));
            columns.push(Arc::new(stopped_at.finish()));
        }
        if let Some(fc) = self.fc.as_mut() {
            columns.extend(fc.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        }
        RecordBatch::try_new(self.schema, columns).expect("summary columns match the schema")
    }
}

/// Builds trace rows (long format) into one Arrow batch of the trace schema.
pub struct TraceBatch {
    schema: Arc<Schema>,
    run_id: UInt64Builder,
    t_ms: Float64Builder,
    /// The node column, for network sweeps.
    node: Option<UInt32Builder>,
    r_hz: Float64Builder,
    v: Float64Builder,
}

impl TraceBatch {
    /// An empty batch of `schema` (the [`trace_schema`](super::trace_schema); with a
    /// `node` column for networks).
    pub fn new(schema: Arc<Schema>) -> TraceBatch {
        let network = schema.column_with_name("node").is_some();
        TraceBatch {
            schema,
            run_id: UInt64Builder::new(),
            t_ms: Float64Builder::new(),
            node: network.then(UInt32Builder::new),
            r_hz: Float64Builder::new(),
            v: Float64Builder::new(),
        }
    }

    /// Appends the row of run `run_id` at time `t_ms` (ms): r in Hz and v (of `node`, in a
    /// network).
    pub fn push(&mut self, run_id: u64, t_ms: f64, node: u32, r_hz: f64, v: f64) {
        self.run_id.append_value(run_id);
        self.t_ms.append_value(t_ms);
        if let Some(b) = self.node.as_mut() {
            b.append_value(node);
        }
        self.r_hz.append_value(r_hz);
        self.v.append_value(v);
    }

    /// The rows pushed, as one batch.
    pub fn finish(mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(self.run_id.finish()), Arc::new(self.t_ms.finish())];
        if let Some(b) = self.node.as_mut() {
            columns.push(Arc::new(b.finish()));
        }
        columns.push(Arc::new(self.r_hz.finish()));
        columns.push(Arc::new(self.v.finish()));
        RecordBatch::try_new(self.schema, columns).expect("trace columns match the schema")
    }
}

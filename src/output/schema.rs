//! Arrow schemas of the summary and trace files, and the key-value metadata.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use parquet::file::metadata::KeyValue;
use sha2::{Digest, Sha256};

use crate::spec::{Slot, Spec};

/// Statistic columns per variable, after the parameters.
pub const STAT_COLUMNS: [&str; 5] = ["mean", "std", "min", "max", "final"];

/// The analytic stable states (null unless the inputs are constant).
pub const FP_COLUMNS: [&str; 4] = ["fp_r_hz_low", "fp_r_hz_high", "fp_v_low", "fp_v_high"];

/// The parameter slots that get a column, in column order (initial values excluded: their
/// columns hold the drawn values and always exist).
pub fn param_slots(spec: &Spec) -> Vec<Slot> {
    Slot::ALL
        .into_iter()
        .filter(|&s| !matches!(s, Slot::InitRHz | Slot::InitV) && spec.param(s).is_some())
        .collect()
}

/// The summary's schema with `metadata`: the columns of [`summary_fields`].
pub fn summary_schema(spec: &Spec, metadata: &Metadata) -> Arc<Schema> {
    Arc::new(Schema::new_with_metadata(
        summary_fields(spec),
        metadata.map(),
    ))
}

/// `run_id, point_id, replicate, <parameters>, init_r_hz, init_v, r_hz_*, v_*, diverged,
/// diverged_at_ms, fp_count, fp_r_hz_low, fp_r_hz_high, fp_v_low, fp_v_high, fp_settled,
/// dt_stable, dt_stable_max_ms`, and for adaptive sweeps `steps, rejected_steps, stop_reason,
/// stopped_at_ms`.
pub fn summary_fields(spec: &Spec) -> Vec<Field> {
    let mut fields = vec![
        Field::new("run_id", DataType::UInt64, false),
        Field::new("point_id", DataType::UInt64, false),
        Field::new("replicate", DataType::UInt32, false),
    ];
    for slot in param_slots(spec) {
        fields.push(Field::new(slot.column(), DataType::Float64, false));
    }
    fields.extend(outcome_fields());
    fields.push(Field::new("fp_count", DataType::UInt8, true));
    for name in FP_COLUMNS {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    fields.push(Field::new("fp_settled", DataType::Utf8, true));
    fields.push(Field::new("dt_stable", DataType::Boolean, true));
    fields.push(Field::new("dt_stable_max_ms", DataType::Float64, true));
    if spec.adaptive.is_some() {
        fields.push(Field::new("steps", DataType::UInt64, false));
        fields.push(Field::new("rejected_steps", DataType::UInt64, false));
        fields.push(Field::new("stop_reason", DataType::Utf8, true));
        fields.push(Field::new("stopped_at_ms", DataType::Float64, true));
    }
    if spec.computes_fc() {
        fields.push(Field::new("fc_fit", DataType::Float64, true));
        fields.push(Field::new("fc_mean", DataType::Float64, true));
    }
    fields
}

/// `init_r_hz, init_v, r_hz_{mean,std,min,max,final}, v_{...}, diverged, diverged_at_ms`:
/// the initial state and what became of it, as the summary and a network's nodes table hold
/// them (the statistics are null unless the run finished; see `Outcome::columns`).
pub fn outcome_fields() -> Vec<Field> {
    let mut fields = vec![
        Field::new("init_r_hz", DataType::Float64, false),
        Field::new("init_v", DataType::Float64, false),
    ];
    for var in ["r_hz", "v"] {
        for stat in STAT_COLUMNS {
            fields.push(Field::new(format!("{var}_{stat}"), DataType::Float64, true));
        }
    }
    fields.push(Field::new("diverged", DataType::Boolean, false));
    fields.push(Field::new("diverged_at_ms", DataType::Float64, true));
    fields
}

/// `run_id, t_ms, r_hz, v`; a network's traces have `node` (uint32) after `t_ms`.
pub fn trace_schema(network: bool, metadata: &Metadata) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("run_id", DataType::UInt64, false),
        Field::new("t_ms", DataType::Float64, false),
    ];
    if network {
        fields.push(Field::new("node", DataType::UInt32, false));
    }
    fields.push(Field::new("r_hz", DataType::Float64, false));
    fields.push(Field::new("v", DataType::Float64, false));
    Arc::new(Schema::new_with_metadata(fields, metadata.map()))
}

/// The `mpr_sweep.*` key-value pairs every part carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// `(mpr_sweep.<key>, value)` pairs, in footer order.
    pub pairs: Vec<(String, String)>,
}

impl Metadata {
    /// The pairs of a part of `shard` holding `runs`: version, spec text and its sha256,
    /// shard, run range and the instruction set the kernel ran on.
    pub fn new(
        spec: &Spec,
        shard: crate::plan::Shard,
        runs: std::ops::Range<u64>,
        isa: crate::integrate::Isa,
    ) -> Metadata {
        let pairs = [
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("spec", spec.text.clone()),
            ("spec_sha256", spec_sha256(&spec.text)),
            ("shard", shard.to_string()),
            ("runs", format!("{}..{}", runs.start, runs.end)),
            ("isa", isa.name().to_string()),
        ];
        Metadata {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (format!("mpr_sweep.{k}"), v))
                .collect(),
        }
    }

    /// Adds `mpr_sweep.<key>` (e.g. `slurm_job`, only inside a Slurm job).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Metadata {
        self.pairs.push((format!("mpr_sweep.{key}"), value.into()));
        self
    }

    /// The pairs as Parquet footer entries.
    pub fn key_values(&self) -> Vec<KeyValue> {
        self.pairs
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect()
    }

    pub(super) fn map(&self) -> HashMap<String, String> {
        self.pairs.iter().cloned().collect()
    }
}

/// Hex SHA-256 of the spec text: identifies which spec a result directory holds.
pub fn spec_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

//! The tables of network sweeps: one row per (run, node) in `DIR/nodes/`, and every run's
//! simulated functional connectivity in `DIR/fc/` (upper triangle, long form). Their rows
//! are built into Arrow batches by the workers, like the summary's.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::schema::{Metadata, outcome_fields};
use super::writers::Outcome;

/// Rows per row group of the nodes and FC tables.
pub const NETWORK_GROUP_ROWS: usize = 1 << 18;

/// One node of one network run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeRow {
    /// The node (0-based, the row of the weights matrix).
    pub node: u32,
    /// Its initial rate in Hz (drawn or given).
    pub init_r_hz: f64,
    /// Its initial v (drawn or given).
    pub init_v: f64,
    /// Its statistics, or when it diverged.
    pub outcome: Outcome,
}

/// `run_id, node, [node_name], init_r_hz, init_v, r_hz_{mean,std,min,max,final},
/// v_{mean,std,min,max,final}, diverged, diverged_at_ms`.
pub fn nodes_schema(named: bool, metadata: &Metadata) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("run_id", DataType::UInt64, false),
        Field::new("node", DataType::UInt32, false),
    ];
    if named {
        fields.push(Field::new("node_name", DataType::Utf8, false));
    }
    fields.extend(outcome_fields());
    Arc::new(Schema::new_with_metadata(fields, metadata.map()))
}

/// `run_id, i, j, fc` for every node pair `i < j`.
pub fn fc_schema(metadata: &Metadata) -> Arc<Schema> {
    Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("run_id", DataType::UInt64, false),
            Field::new("i", DataType::UInt32, false),
            Field::new("j", DataType::UInt32, false),
            Field::new("fc", DataType::Float64, true),
        ],
        metadata.map(),
    ))
}

/// Builds per-node rows into one Arrow batch of the nodes schema.
pub struct NodesBatch<'a> {
    schema: Arc<Schema>,
    names: Option<&'a [String]>,
    run_id: UInt64Builder,
    node: UInt32Builder,
    node_name: StringBuilder,
    /// init_r_hz, init_v, the ten statistics, diverged_at_ms.
    floats: Vec<Float64Builder>,
    diverged: BooleanBuilder,
}

impl<'a> NodesBatch<'a> {
    /// An empty batch of `schema` ([`nodes_schema`]); `names` fills the `node_name`
    /// column, which the schema has when they are given.
    pub fn new(schema: Arc<Schema>, names: Option<&'a [String]>) -> NodesBatch<'a> {
        NodesBatch {
            schema,
            names,
            run_id: UInt64Builder::new(),
            node: UInt32Builder::new(),
            node_name: StringBuilder::new(),
            floats: (0..13).map(|_| Float64Builder::new()).collect(),
            diverged: BooleanBuilder::new(),
        }
    }

    /// Appends node `row.node` of run `run_id`.
    pub fn push(&mut self, run_id: u64, row: &NodeRow) {
        self.run_id.append_value(run_id);
        self.node.append_value(row.node);
        if let Some(names) = self.names {
            self.node_name.append_value(&names[row.node as usize]);
        }
        let mut col = self.floats.iter_mut();
        col.next().unwrap().append_value(row.init_r_hz);
        col.next().unwrap().append_value(row.init_v);
        let (stats, diverged_at_ms) = row.outcome.columns();
        for x in stats.into_iter().chain([diverged_at_ms]) {
            col.next().unwrap().append_option(x);
        }
        self.diverged.append_value(row.outcome.diverged());
    }

    /// The rows pushed, as one batch.
    pub fn finish(mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(self.run_id.finish()), Arc::new(self.node.finish())];
        if self.names.is_some() {
            columns.push(Arc::new(self.node_name.finish()));
        }
        let (stats, tail) = self.floats.split_at_mut(12);
        columns.extend(stats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(self.diverged.finish()));
        columns.push(Arc::new(tail[0].finish()));
        RecordBatch::try_new(self.schema, columns).expect("nodes columns match the schema")
    }
}

/// Builds FC rows into one Arrow batch of the FC schema.
pub struct FcBatch {
    schema: Arc<Schema>,
    nodes: usize,
    run_id: UInt64Builder,
    i: UInt32Builder,
    j: UInt32Builder,
    fc: Float64Builder,
}

impl FcBatch {
    /// An empty batch of `schema` ([`fc_schema`]) for a network of `nodes` nodes.
    pub fn new(schema: Arc<Schema>, nodes: usize) -> FcBatch {
        FcBatch {
            schema,
            nodes,
            run_id: UInt64Builder::new(),
            i: UInt32Builder::new(),
            j: UInt32Builder::new(),
            fc: Float64Builder::new(),
        }
    }

    /// Appends run `run_id`'s FC, the upper triangle row by row (NaN is written as null).
    pub fn push(&mut self, run_id: u64, upper: &[f64]) {
        assert_eq!(upper.len(), self.nodes * self.nodes.saturating_sub(1) / 2);
        let mut values = upper.iter();
        for i in 0..self.nodes {
            for j in i + 1..self.nodes {
                let x = *values.next().expect("one value per pair");
                self.run_id.append_value(run_id);
                self.i.append_value(i as u32);
                self.j.append_value(j as u32);
                self.fc.append_option((!x.is_nan()).then_some(x));
            }
        }
    }

    /// The rows pushed, as one batch.
    pub fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.run_id.finish()),
            Arc::new(self.i.finish()),
            Arc::new(self.j.finish()),
            Arc::new(self.fc.finish()),
        ];
        RecordBatch::try_new(self.schema, columns).expect("fc columns match the schema")
    }
}

//! Where the writers' Arrow batches go: a Parquet part (the command line) or memory (the
//! Python package's in-memory results). The batches are the same either way.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::file::metadata::KeyValue;

use super::{OutputError, PartFile};

/// A table held in memory: its schema (with the `mpr_sweep.*` metadata a part carries in
/// its footer) and its batches in row order.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The columns and the `mpr_sweep.*` key-value metadata.
    pub schema: SchemaRef,
    /// The rows, in the order a part holds them.
    pub batches: Vec<RecordBatch>,
}

impl Table {
    /// Rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The destination of a writer's batches.
pub(super) enum Sink {
    /// Encoded into a Parquet part, committed by [`Sink::finish`] (boxed: a writer is
    /// large and there is one per part).
    Part(Box<PartFile>),
    /// Kept as they are.
    Memory(Table),
}

impl Sink {
    /// A part at `path` (see [`PartFile::create`]), or memory when `path` is `None`.
    pub(super) fn create(
        path: Option<&Path>,
        schema: SchemaRef,
        metadata: Vec<KeyValue>,
        row_group_rows: usize,
    ) -> Result<Sink, OutputError> {
        Ok(match path {
            Some(path) => Sink::Part(Box::new(PartFile::create(
                path,
                schema,
                metadata,
                row_group_rows,
            )?)),
            None => Sink::Memory(Table {
                schema,
                batches: Vec::new(),
            }),
        })
    }

    pub(super) fn write(&mut self, batch: RecordBatch) -> Result<(), OutputError> {
        match self {
            Sink::Part(part) => part.write(&batch),
            Sink::Memory(table) => {
                table.batches.push(batch);
                Ok(())
            }
        }
    }

    /// Commits the part (`None`), or hands back the table.
    pub(super) fn finish(self) -> Result<Option<Table>, OutputError> {
        match self {
            Sink::Part(part) => part.commit().map(|()| None),
            Sink::Memory(table) => Ok(Some(table)),
        }
    }
}

//! Where a table's rows go: a Parquet part (the command line) or memory (the Python
//! package's in-memory results), in row groups of a fixed number of rows whichever it is.
//!
//! Rows arrive as Arrow batches built by the workers; [`TableWriter::push`] cuts them into
//! row groups at fixed row counts, so a part's layout depends on the rows alone (not on the
//! threads or on how the work was split); [`TableEncoder::encode`] encodes and compresses a
//! row group on any thread, and [`TableWriter::append`] only appends the finished bytes.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::part::{EncodedRowGroup, RowGroupEncoder};
use super::schema::Metadata;
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

/// The destination of a table's row groups.
enum Sink {
    /// Encoded into a Parquet part, committed by [`TableWriter::finish`] (boxed: a part
    /// is large and there is one per table).
    Part(Box<PartFile>),
    /// Kept as they are.
    Memory(Table),
}

/// One table of a shard: its row groups in order, to a part or to memory.
pub struct TableWriter {
    sink: Sink,
    schema: SchemaRef,
    group_rows: usize,
    /// The rows of the row group being filled.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

/// Encodes the row groups of one [`TableWriter`] on any thread.
#[derive(Clone)]
pub struct TableEncoder {
    /// `None` for a table in memory: its row groups stay Arrow batches.
    part: Option<(RowGroupEncoder, PathBuf)>,
}

/// A row group ready for [`TableWriter::append`].
pub enum EncodedGroup {
    /// Column chunks of a part.
    Part(EncodedRowGroup),
    /// The batches of a table in memory.
    Memory(Vec<RecordBatch>),
}

impl TableEncoder {
    /// Encodes and compresses the row group made of `batches` (a column per rayon task).
    pub fn encode(&self, batches: Vec<RecordBatch>) -> Result<EncodedGroup, OutputError> {
        match &self.part {
            Some((encoder, path)) => {
                encoder
                    .encode(&batches)
                    .map(EncodedGroup::Part)
                    .map_err(|source| OutputError::Parquet {
                        path: path.clone(),
                        source,
                    })
            }
            None => Ok(EncodedGroup::Memory(batches)),
        }
    }
}

impl TableWriter {
    /// A part at `path` (see [`PartFile::create`]), or memory when `path` is `None`, with
    /// `schema` (which carries `metadata`) and row groups of `group_rows` rows.
    pub fn create(
        path: Option<&Path>,
        schema: SchemaRef,
        metadata: &Metadata,
        group_rows: usize,
    ) -> Result<TableWriter, OutputError> {
        let sink = match path {
            Some(path) => Sink::Part(Box::new(PartFile::create(
                path,
                schema.clone(),
                metadata.key_values(),
                group_rows,
            )?)),
            None => Sink::Memory(Table {
                schema: schema.clone(),
                batches: Vec::new(),
            }),
        };
        Ok(TableWriter {
            sink,
            schema,
            group_rows,
            pending: Vec::new(),
            pending_rows: 0,
        })
    }

    /// The encoder of this table's row groups.
    pub fn encoder(&self) -> TableEncoder {
        TableEncoder {
            part: match &self.sink {
                Sink::Part(part) => Some((part.encoder().clone(), part.path().to_path_buf())),
                Sink::Memory(_) => None,
            },
        }
    }

    /// Takes the next rows in order; returns the row groups they complete (each as the
    /// slices of the batches that hold its rows). The batch's schema may lack some of the
    /// table's metadata: its rows take the table's schema.
    pub fn push(&mut self, batch: RecordBatch) -> Vec<Vec<RecordBatch>> {
        let mut batch = batch
            .with_schema(self.schema.clone())
            .expect("the table's schema holds the batch's");
        let mut full = Vec::new();
        while batch.num_rows() > 0 {
            let take = (self.group_rows - self.pending_rows).min(batch.num_rows());
            self.pending.push(batch.slice(0, take));
            self.pending_rows += take;
            batch = batch.slice(take, batch.num_rows() - take);
            if self.pending_rows == self.group_rows {
                full.push(std::mem::take(&mut self.pending));
                self.pending_rows = 0;
            }
        }
        full
    }

    /// The rows of the last, partial row group, if any.
    pub fn take_rest(&mut self) -> Option<Vec<RecordBatch>> {
        self.pending_rows = 0;
        let rest = std::mem::take(&mut self.pending);
        (!rest.is_empty()).then_some(rest)
    }

    /// Appends a row group encoded by [`TableWriter::encoder`], after those appended
    /// before.
    pub fn append(&mut self, group: EncodedGroup) -> Result<(), OutputError> {
        match (&mut self.sink, group) {
            (Sink::Part(part), EncodedGroup::Part(group)) => part.append(group),
            (Sink::Memory(table), EncodedGroup::Memory(batches)) => {
                table.batches.extend(batches);
                Ok(())
            }
            _ => unreachable!("a row group is encoded by its own table's encoder"),
        }
    }

    /// Commits the part (`None`), or hands back the table. Rows pushed since the last
    /// complete row group must have been taken with [`TableWriter::take_rest`] and
    /// appended.
    pub fn finish(self) -> Result<Option<Table>, OutputError> {
        assert!(self.pending.is_empty(), "the last row group was appended");
        match self.sink {
            Sink::Part(part) => part.commit().map(|()| None),
            Sink::Memory(table) => Ok(Some(table)),
        }
    }
}

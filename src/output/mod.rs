//! Output directory layout, Parquet part files and their atomic commit.
//!
//! ```text
//! DIR/spec.yaml
//! DIR/summary/part-00000-of-00004.parquet
//! DIR/traces/part-00000-of-00004.parquet
//! DIR/nodes/part-00000-of-00004.parquet     (networks: one row per run and node)
//! DIR/fc/part-00000-of-00004.parquet        (networks with output.fc)
//! ```
//!
//! Workers build a piece's rows into Arrow batches ([`SummaryBatch`], [`TraceBatch`],
//! [`NodesBatch`], [`FcBatch`]); a [`TableWriter`] cuts them into row groups of fixed row
//! counts, any thread encodes and compresses a row group ([`TableEncoder`]), and the writer
//! only appends the bytes in order.
//!
//! A part is written under a hidden temporary name in its final directory, fsynced, then
//! renamed (and the directory fsynced), so a final name always means a complete file.

mod network;
mod part;
mod schema;
mod sink;
mod writers;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use network::{FcBatch, NETWORK_GROUP_ROWS, NodeRow, NodesBatch, fc_schema, nodes_schema};
pub use part::{
    EncodedRowGroup, PartFile, PartMismatch, RowGroupEncoder, check_part, part_metadata_value,
};
pub use schema::{
    Metadata, param_slots, spec_sha256, summary_fields, summary_schema, trace_schema,
};
pub use sink::{EncodedGroup, Table, TableEncoder, TableWriter};
pub use writers::{
    NetworkStats, Outcome, SUMMARY_GROUP_ROWS, StepCounts, SummaryBatch, SummaryRow,
    TRACE_GROUP_ROWS, TraceBatch,
};

use crate::plan::Shard;
use crate::spec::Spec;

/// Failures while writing results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory it failed on.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// Writing or reading a Parquet file failed.
    #[error("{path}: {source}")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The Parquet library's error.
        source: parquet::errors::ParquetError,
    },
    /// Converting an Arrow batch failed.
    #[error("{path}: {source}")]
    Arrow {
        /// The Parquet file the batch is read from or written to.
        path: PathBuf,
        /// The Arrow library's error.
        source: arrow_schema::ArrowError,
    },
}

/// A result directory that does not fit the request: nothing was changed in it.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// `--out` names a file.
    #[error("{}: exists and is not a directory", dir.display())]
    NotADirectory {
        /// The path given as `--out`.
        dir: PathBuf,
    },
    /// The directory holds another spec's results.
    #[error("{} holds results of another spec (sha256 {sha256_prefix}); use --overwrite to replace them or choose another --out", dir.display())]
    OtherSpec {
        /// The result directory.
        dir: PathBuf,
        /// The first 12 hex digits of the other spec's sha256.
        sha256_prefix: String,
    },
    /// The shard's part exists and neither `--resume` nor `--overwrite` was given.
    #[error("{} exists; use --resume to skip complete parts or --overwrite to replace them", part.display())]
    PartExists {
        /// The existing part.
        part: PathBuf,
    },
    /// A part was computed from other contents of the network's files than the spec's
    /// files hold now (same spec text): resuming would mix results of two networks.
    #[error("{} was computed with other network files (network_sha256 {found}, the spec's files now give {expected}); restore those files, or use --overwrite to recompute, or choose another --out", part.display())]
    OtherNetworkData {
        /// The part.
        part: PathBuf,
        /// The first 12 hex digits of its `mpr_sweep.network_sha256`.
        found: String,
        /// The first 12 hex digits of the files' sha256 now.
        expected: String,
    },
    /// Parts of another `--shard I/N` layout are present.
    #[error("{} holds parts of another shard count ({name}); a sweep directory must use one --shard I/N layout (or use --overwrite)", dir.display())]
    OtherLayout {
        /// The summary or traces directory.
        dir: PathBuf,
        /// One part of the other layout.
        name: String,
    },
}

/// Wraps an I/O error with the path it happened at.
pub fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The tables of a result directory: each a folder of one part per shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// `DIR/summary`: one row per run.
    Summary,
    /// `DIR/traces`: the traced runs' states (with `output.traces`).
    Traces,
    /// `DIR/nodes`: one row per run and node (a network sweep).
    Nodes,
    /// `DIR/fc`: the functional connectivity (a network sweep with `output.fc`).
    Fc,
}

impl TableKind {
    /// Every table a result directory may hold.
    pub const ALL: [TableKind; 4] = [
        TableKind::Summary,
        TableKind::Traces,
        TableKind::Nodes,
        TableKind::Fc,
    ];

    /// The folder's name, also the table's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Summary => "summary",
            TableKind::Traces => "traces",
            TableKind::Nodes => "nodes",
            TableKind::Fc => "fc",
        }
    }

    /// The tables the results of `spec` hold, the summary first.
    pub fn of(spec: &Spec) -> Vec<TableKind> {
        let mut tables = vec![TableKind::Summary];
        if spec.traces.is_some() {
            tables.push(TableKind::Traces);
        }
        if spec.network.is_some() {
            tables.push(TableKind::Nodes);
        }
        if spec.fc_output {
            tables.push(TableKind::Fc);
        }
        tables
    }
}

/// The files of one result directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The result directory (`--out`).
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of result directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    /// `<dir>/spec.yaml`: the copy of the spec the results came from.
    pub fn spec(&self) -> PathBuf {
        self.dir.join("spec.yaml")
    }

    /// `DIR/job.sh`: the script `sbatch --submit` wrote and submitted.
    pub fn job_script(&self) -> PathBuf {
        self.dir.join("job.sh")
    }

    /// `DIR/logs`: the array tasks' Slurm logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// `part-00003-of-00016.parquet`
    pub fn part_name(shard: Shard) -> String {
        format!("part-{:05}-of-{:05}.parquet", shard.index, shard.count)
    }

    /// `DIR/<name>`: the folder of `table`, one part per shard.
    pub fn table_dir(&self, table: TableKind) -> PathBuf {
        self.dir.join(table.name())
    }

    /// The part of `table` for `shard`.
    pub fn part(&self, table: TableKind, shard: Shard) -> PathBuf {
        self.table_dir(table).join(Self::part_name(shard))
    }
}

/// Writes `contents` to `path` atomically: temporary file, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), OutputError> {
    let tmp = part::temporary_name(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        part::sync_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

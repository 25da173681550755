//! Output directory layout, Parquet part files and their atomic commit.
//!
//! ```text
//! DIR/spec.yaml
//! DIR/summary/part-00000-of-00004.parquet
//! DIR/traces/part-00000-of-00004.parquet
//! ```
//!
//! A part is written under a hidden temporary name in its final directory, fsynced, then
//! renamed (and the directory fsynced), so a final name always means a complete file.

mod part;
mod schema;
mod writers;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use part::{PartFile, check_part};
pub use schema::{Metadata, param_slots, spec_sha256, summary_schema, trace_schema};
pub use writers::{Outcome, SummaryRow, SummaryWriter, TraceWriter};

use crate::plan::Shard;

/// Failures while writing results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {source}")]
    Arrow {
        path: PathBuf,
        source: arrow_schema::ArrowError,
    },
}

pub fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The files of one result directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    pub fn spec(&self) -> PathBuf {
        self.dir.join("spec.yaml")
    }

    pub fn summary_dir(&self) -> PathBuf {
        self.dir.join("summary")
    }

    pub fn traces_dir(&self) -> PathBuf {
        self.dir.join("traces")
    }

    /// `part-00003-of-00016.parquet`
    pub fn part_name(shard: Shard) -> String {
        format!("part-{:05}-of-{:05}.parquet", shard.index, shard.count)
    }

    pub fn summary_part(&self, shard: Shard) -> PathBuf {
        self.summary_dir().join(Self::part_name(shard))
    }

    pub fn traces_part(&self, shard: Shard) -> PathBuf {
        self.traces_dir().join(Self::part_name(shard))
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

//! One Parquet part, committed atomically, and the encoder of its row groups: any thread
//! encodes and compresses a row group's column chunks ([`RowGroupEncoder`]), the part's
//! owner only appends the finished bytes in order ([`PartFile::append`]).

use std::fs::{self, File};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use crate::plan::Shard;

use super::{OutputError, io_err};

/// `dir/.name.tmp-<pid>`: hidden from `*.parquet` globs and from readers of the directory.
pub(crate) fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether a process with this id exists (signal 0 probes without sending anything).
#[cfg(unix)]
fn process_is_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for the process; it has no other effect.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_is_running(_pid: u32) -> bool {
    true
}

/// Makes a rename in `path`'s directory durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// A Parquet file being written under a temporary name. Dropping it without
/// [`PartFile::commit`] removes the temporary file.
pub struct PartFile {
    writer: Option<SerializedFileWriter<File>>,
    encoder: RowGroupEncoder,
    row_group_rows: usize,
    tmp: PathBuf,
    path: PathBuf,
}

/// Encodes and compresses the row groups of one part, on any thread: each column chunk is
/// a task of the current rayon pool. The bytes depend only on the rows and on how they are
/// split into batches, never on the thread that encodes them.
#[derive(Clone)]
pub struct RowGroupEncoder {
    factory: Arc<ArrowRowGroupWriterFactory>,
    schema: SchemaRef,
}

/// One row group's column chunks, encoded and compressed, ready to be appended.
pub struct EncodedRowGroup(Vec<ArrowColumnChunk>);

impl RowGroupEncoder {
    /// Encodes `batches` (in order, the part's schema) as one row group, a column per task.
    pub fn encode(&self, batches: &[RecordBatch]) -> Result<EncodedRowGroup, ParquetError> {
        // The row group index only matters to encrypted files, which parts are not.
        let writers = self.factory.create_column_writers(0)?;
        // Every column of these schemas is a leaf: one writer per field.
        debug_assert_eq!(writers.len(), self.schema.fields().len());
        let chunks = writers
            .into_par_iter()
            .enumerate()
            .map(|(i, mut writer)| {
                let field = self.schema.field(i);
                for batch in batches {
                    for leaf in compute_leaves(field, batch.column(i))? {
                        writer.write(&leaf)?;
                    }
                }
                writer.close()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EncodedRowGroup(chunks))
    }
}

impl PartFile {
    /// Removes temporary files of this part left by processes that no longer run (a run
    /// killed with SIGKILL cannot clean up after itself).
    fn remove_stale_temporaries(path: &Path) {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        let prefix = format!(".{}.tmp-", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let pid = file
                .to_string_lossy()
                .strip_prefix(&prefix)
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !process_is_running(pid)
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Starts the part that will be `path` (written to a temporary name beside it), with
    /// `metadata` in its footer and row groups of `row_group_rows` rows; removes temporaries
    /// of `path` left by processes no longer running.
    pub fn create(
        path: &Path,
        schema: Arc<Schema>,
        metadata: Vec<KeyValue>,
        row_group_rows: usize,
    ) -> Result<PartFile, OutputError> {
        Self::remove_stale_temporaries(path);
        let tmp = temporary_name(path);
        let file = File::create(&tmp).map_err(io_err(path))?;
        // No dictionary encoding: results are nearly all distinct floats, and building their
        // dictionaries cost more than integrating W1's runs; zstd still compresses the
        // repeated parameter values and labels.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("valid zstd level"),
            ))
            .set_dictionary_enabled(false)
            .set_key_value_metadata(Some(metadata))
            .set_created_by(format!("mpr-sweep {}", env!("CARGO_PKG_VERSION")))
            .build();
        // The Arrow writer adds the Arrow schema to the footer; its lower-level halves let
        // the row groups be encoded elsewhere.
        let writers = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|source| {
                let _ = fs::remove_file(&tmp);
                OutputError::Parquet {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let (writer, factory) = writers;
        Ok(PartFile {
            writer: Some(writer),
            encoder: RowGroupEncoder {
                factory: Arc::new(factory),
                schema,
            },
            row_group_rows,
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The encoder of this part's row groups.
    pub fn encoder(&self) -> &RowGroupEncoder {
        &self.encoder
    }

    /// The part's final name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a row group encoded by [`PartFile::encoder`]: copies its bytes.
    pub fn append(&mut self, group: EncodedRowGroup) -> Result<(), OutputError> {
        let writer = self.writer.as_mut().expect("part already committed");
        let result = (|| {
            let mut row_group = writer.next_row_group()?;
            for chunk in group.0 {
                chunk.append_to_row_group(&mut row_group)?;
            }
            row_group.close().map(drop)
        })();
        result.map_err(|source| self.parquet_err(source))
    }

    /// Appends `batch` (the part's schema) as row groups of at most `row_group_rows` rows,
    /// encoded on this thread's rayon pool.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        let mut start = 0;
        while start < batch.num_rows() {
            let rows = self.row_group_rows.min(batch.num_rows() - start);
            let group = self
                .encoder
                .encode(&[batch.slice(start, rows)])
                .map_err(|source| self.parquet_err(source))?;
            self.append(group)?;
            start += rows;
        }
        Ok(())
    }

    fn parquet_err(&self, source: ParquetError) -> OutputError {
        OutputError::Parquet {
            path: self.path.clone(),
            source,
        }
    }

    /// Finishes the file and moves it to its final name.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let writer = self.writer.take().expect("part already committed");
        let path = &self.path;
        let result = (|| {
            let file = writer.into_inner().map_err(|source| OutputError::Parquet {
                path: path.clone(),
                source,
            })?;
            file.sync_all().map_err(io_err(path))?;
            drop(file);
            fs::rename(&self.tmp, path).map_err(io_err(path))?;
            sync_dir(path).map_err(io_err(path))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The value of metadata key `key` in a part's footer (`None` if the part lacks it), or why
/// the footer cannot be read.
pub fn part_metadata_value(path: &Path, key: &str) -> Result<Option<String>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let reader = SerializedFileReader::new(file).map_err(|e| format!("not Parquet: {e}"))?;
    Ok(reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|p| p.key == key))
        .and_then(|p| p.value.clone()))
}

/// Why a part does not count as its shard's part, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartMismatch {
    /// Unreadable, of another spec or shard, or short of rows: `run --resume` rewrites it.
    Unusable(String),
    /// Computed from other contents of the network files than the spec names now: `run`
    /// refuses the directory until the files are restored or `--overwrite` recomputes.
    OtherNetwork(String),
}

impl PartMismatch {
    /// What is wrong, for messages.
    pub fn why(&self) -> &str {
        match self {
            PartMismatch::Unusable(why) | PartMismatch::OtherNetwork(why) => why,
        }
    }
}

/// Reads a part's footer and checks that it is shard `shard` of the spec with hash `sha`
/// and, for a network sweep, computed from the network files with hash `network_sha`: its
/// `mpr_sweep.*` metadata and (for summaries) its row count.
pub fn check_part(
    path: &Path,
    (sha, network_sha): (&str, Option<&str>),
    shard: Shard,
    runs: &Range<u64>,
    summary: bool,
) -> Result<(), PartMismatch> {
    let found = check_footer(path, sha, shard, runs, summary).map_err(PartMismatch::Unusable)?;
    if let Some(want) = network_sha {
        match found {
            Some(v) if v == want => {}
            Some(v) => {
                return Err(PartMismatch::OtherNetwork(format!(
                    "computed from other network files (mpr_sweep.network_sha256 {}, the files of the directory's spec have {})",
                    &v[..v.len().min(12)],
                    &want[..want.len().min(12)]
                )));
            }
            None => {
                return Err(PartMismatch::Unusable(
                    "no mpr_sweep.network_sha256 in its metadata".into(),
                ));
            }
        }
    }
    Ok(())
}

/// [`check_part`] but for the network files: the part's `mpr_sweep.network_sha256`, if
/// it has one, for the caller to compare.
fn check_footer(
    path: &Path,
    sha: &str,
    shard: Shard,
    runs: &Range<u64>,
    summary: bool,
) -> Result<Option<String>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let reader = SerializedFileReader::new(file).map_err(|e| format!("not Parquet: {e}"))?;
    let meta = reader.metadata().file_metadata();
    let kv = meta.key_value_metadata();
    let get = |key: &str| {
        kv.and_then(|kv| {
            kv.iter()
                .find(|p| p.key == key)
                .and_then(|p| p.value.clone())
        })
    };
    let expect = |key: &str, want: &str| -> Result<(), String> {
        match get(key) {
            Some(v) if v == want => Ok(()),
            Some(v) => Err(format!("{key} is {v:?}, expected {want:?}")),
            None => Err(format!("no {key} in its metadata")),
        }
    };
    match get("mpr_sweep.spec_sha256") {
        Some(v) if v == sha => {}
        Some(v) => {
            return Err(format!(
                "written for another spec (mpr_sweep.spec_sha256 {}, the directory's spec has {})",
                &v[..v.len().min(12)],
                &sha[..12]
            ));
        }
        None => return Err("no mpr_sweep.spec_sha256 in its metadata".into()),
    }
    expect("mpr_sweep.shard", &shard.to_string())?;
    expect("mpr_sweep.runs", &format!("{}..{}", runs.start, runs.end))?;
    if summary {
        let want = runs.end - runs.start;
        if meta.num_rows() < 0 || meta.num_rows() as u64 != want {
            return Err(format!("{} rows, expected {want}", meta.num_rows()));
        }
    }
    Ok(get("mpr_sweep.network_sha256"))
}

//! One Parquet part, committed atomically.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::{OutputError, io_err};

/// `dir/.name.tmp-<pid>`: hidden from `*.parquet` globs and from readers of the directory.
pub(crate) fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
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
    writer: Option<ArrowWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl PartFile {
    /// Starts a part. `row_group_rows` bounds each row group (and the writer's memory).
    pub fn create(
        path: &Path,
        schema: Arc<Schema>,
        metadata: Vec<KeyValue>,
        row_group_rows: usize,
    ) -> Result<PartFile, OutputError> {
        let tmp = temporary_name(path);
        let file = File::create(&tmp).map_err(io_err(path))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("valid zstd level"),
            ))
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_key_value_metadata(Some(metadata))
            .set_created_by(format!("mpr-sweep {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|source| {
            let _ = fs::remove_file(&tmp);
            OutputError::Parquet {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(PartFile {
            writer: Some(writer),
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        let writer = self.writer.as_mut().expect("part already committed");
        writer.write(batch).map_err(|source| OutputError::Parquet {
            path: self.path.clone(),
            source,
        })
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

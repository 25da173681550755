//! Parquet parts read back whole, without the library's own reader: every column as
//! values, floats kept by their bits so that `==` is bitwise (NaN included), nulls as
//! `None`, and the footer's metadata and compression.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt8Type, UInt32Type, UInt64Type};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// One column; floats are kept as bits so that `==` is bitwise.
#[derive(Debug, Clone, PartialEq)]
pub enum Col {
    U64(Vec<u64>),
    U32(Vec<u32>),
    F64(Vec<Option<u64>>),
    Bool(Vec<Option<bool>>),
    U8(Vec<Option<u8>>),
    Str(Vec<Option<String>>),
}

impl Col {
    fn extend(&mut self, other: Col) {
        match (self, other) {
            (Col::U64(a), Col::U64(b)) => a.extend(b),
            (Col::U32(a), Col::U32(b)) => a.extend(b),
            (Col::F64(a), Col::F64(b)) => a.extend(b),
            (Col::Bool(a), Col::Bool(b)) => a.extend(b),
            (Col::U8(a), Col::U8(b)) => a.extend(b),
            (Col::Str(a), Col::Str(b)) => a.extend(b),
            (a, b) => panic!("column types differ: {a:?} vs {b:?}"),
        }
    }

    /// Row `i` as text, floats with their bits, for failure messages.
    fn show(&self, i: usize) -> String {
        match self {
            Col::U64(v) => v[i].to_string(),
            Col::U32(v) => v[i].to_string(),
            Col::F64(v) => match v[i] {
                Some(bits) => format!("{} ({bits:#018x})", f64::from_bits(bits)),
                None => "null".to_string(),
            },
            Col::Bool(v) => format!("{:?}", v[i]),
            Col::U8(v) => format!("{:?}", v[i]),
            Col::Str(v) => format!("{:?}", v[i]),
        }
    }

    /// The first row where `self` and `other` (of the same type and length) differ.
    fn first_difference(&self, other: &Col) -> Option<usize> {
        fn first<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
            a.iter().zip(b).position(|(x, y)| x != y)
        }
        match (self, other) {
            (Col::U64(a), Col::U64(b)) => first(a, b),
            (Col::U32(a), Col::U32(b)) => first(a, b),
            (Col::F64(a), Col::F64(b)) => first(a, b),
            (Col::Bool(a), Col::Bool(b)) => first(a, b),
            (Col::U8(a), Col::U8(b)) => first(a, b),
            (Col::Str(a), Col::Str(b)) => first(a, b),
            _ => Some(0),
        }
    }
}

/// One or more Parquet parts read back whole.
pub struct Table {
    /// (name, type, nullable) in file order.
    pub fields: Vec<(String, DataType, bool)>,
    pub cols: Vec<Col>,
    /// The Parquet footer's key-value metadata.
    pub file_meta: HashMap<String, String>,
    /// The Arrow schema's metadata as the reader reports it.
    pub arrow_meta: HashMap<String, String>,
    /// Compression of every column chunk of every row group.
    pub compressions: Vec<Compression>,
    pub row_groups: usize,
    pub rows: usize,
}

impl Table {
    /// Reads a whole part; an error names the path (a partial or missing file, a column of
    /// an unexpected type, a null in a column of ids).
    pub fn try_read(path: &Path) -> Result<Table, String> {
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let file = File::open(path).map_err(|e| at(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| at(&format!("not a complete Parquet file: {e}")))?;
        let schema = builder.schema().clone();
        let meta = builder.metadata().clone();
        let file_meta = meta
            .file_metadata()
            .key_value_metadata()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let compressions = meta
            .row_groups()
            .iter()
            .flat_map(|rg| rg.columns().iter().map(|c| c.compression()))
            .collect();
        let fields: Vec<(String, DataType, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect();
        let mut cols: Vec<Col> = Vec::with_capacity(fields.len());
        for (name, t, _) in &fields {
            cols.push(match t {
                DataType::UInt64 => Col::U64(Vec::new()),
                DataType::UInt32 => Col::U32(Vec::new()),
                DataType::Float64 => Col::F64(Vec::new()),
                DataType::Boolean => Col::Bool(Vec::new()),
                DataType::UInt8 => Col::U8(Vec::new()),
                DataType::Utf8 => Col::Str(Vec::new()),
                other => return Err(at(&format!("column {name}: unexpected type {other}"))),
            });
        }
        let mut rows = 0;
        for batch in builder.build().map_err(|e| at(&e))? {
            let batch = batch.map_err(|e| at(&e))?;
            rows += batch.num_rows();
            for (i, col) in cols.iter_mut().enumerate() {
                let a = batch.column(i);
                let part = match col {
                    Col::U64(_) | Col::U32(_) if a.null_count() != 0 => {
                        return Err(at(&format!("column {}: nulls", fields[i].0)));
                    }
                    Col::U64(_) => Col::U64(a.as_primitive::<UInt64Type>().values().to_vec()),
                    Col::U32(_) => Col::U32(a.as_primitive::<UInt32Type>().values().to_vec()),
                    Col::F64(_) => {
                        let p = a.as_primitive::<Float64Type>();
                        Col::F64(nullable(a, |j| p.value(j).to_bits()))
                    }
                    Col::Bool(_) => {
                        let p = a.as_boolean();
                        Col::Bool(nullable(a, |j| p.value(j)))
                    }
                    Col::U8(_) => {
                        let p = a.as_primitive::<UInt8Type>();
                        Col::U8(nullable(a, |j| p.value(j)))
                    }
                    Col::Str(_) => {
                        let p = a.as_string::<i32>();
                        Col::Str(nullable(a, |j| p.value(j).to_string()))
                    }
                };
                col.extend(part);
            }
        }
        Ok(Table {
            fields,
            cols,
            file_meta,
            arrow_meta: schema.metadata().clone().into(),
            compressions,
            row_groups: meta.num_row_groups(),
            rows,
        })
    }

    /// Reads a whole part, or panics naming the path.
    pub fn read(path: &Path) -> Table {
        Table::try_read(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The rows of several parts, in the order given.
    pub fn concat(parts: Vec<Table>) -> Table {
        let mut it = parts.into_iter();
        let mut t = it.next().expect("at least one part");
        for p in it {
            assert_eq!(p.fields, t.fields, "parts have different schemas");
            for (a, b) in t.cols.iter_mut().zip(p.cols) {
                a.extend(b);
            }
            t.rows += p.rows;
            t.row_groups += p.row_groups;
            t.compressions.extend(p.compressions);
        }
        t
    }

    /// The final-named parts of one kind (`summary` or `traces`) in the result directory
    /// `dir`, in name order, as one table.
    pub fn read_dir(dir: &Path, kind: &str) -> Table {
        let mut parts: Vec<PathBuf> = fs::read_dir(dir.join(kind))
            .unwrap_or_else(|e| panic!("{}/{kind}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| !is_hidden(p) && p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        parts.sort();
        assert!(!parts.is_empty(), "no parts in {}/{kind}", dir.display());
        Table::concat(parts.iter().map(|p| Table::read(p)).collect())
    }

    pub fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|(n, _, _)| n.as_str()).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _, _)| n == name)
    }

    pub fn col(&self, name: &str) -> &Col {
        let i = self
            .fields
            .iter()
            .position(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.names()));
        &self.cols[i]
    }

    pub fn u64s(&self, name: &str) -> Vec<u64> {
        match self.col(name) {
            Col::U64(v) => v.clone(),
            other => panic!("{name} is not UInt64: {other:?}"),
        }
    }

    pub fn u32s(&self, name: &str) -> Vec<u32> {
        match self.col(name) {
            Col::U32(v) => v.clone(),
            other => panic!("{name} is not UInt32: {other:?}"),
        }
    }

    /// A Float64 column, nulls as `None`.
    pub fn opt_f64s(&self, name: &str) -> Vec<Option<f64>> {
        match self.col(name) {
            Col::F64(v) => v.iter().map(|x| x.map(f64::from_bits)).collect(),
            other => panic!("{name} is not Float64: {other:?}"),
        }
    }

    /// Row `r` of a Float64 column, null as `None`.
    pub fn f64_at(&self, name: &str, r: usize) -> Option<f64> {
        match self.col(name) {
            Col::F64(v) => v[r].map(f64::from_bits),
            other => panic!("{name} is not Float64: {other:?}"),
        }
    }

    /// A Float64 column without nulls.
    pub fn f64s(&self, name: &str) -> Vec<f64> {
        self.opt_f64s(name)
            .into_iter()
            .enumerate()
            .map(|(i, x)| x.unwrap_or_else(|| panic!("{name}[{i}] is null")))
            .collect()
    }

    /// A UInt8 column, nulls as `None`.
    pub fn opt_u8s(&self, name: &str) -> Vec<Option<u8>> {
        match self.col(name) {
            Col::U8(v) => v.clone(),
            other => panic!("{name} is not UInt8: {other:?}"),
        }
    }

    /// A Utf8 column, nulls as `None`.
    pub fn opt_strs(&self, name: &str) -> Vec<Option<String>> {
        match self.col(name) {
            Col::Str(v) => v.clone(),
            other => panic!("{name} is not Utf8: {other:?}"),
        }
    }

    /// A Boolean column, nulls as `None`.
    pub fn opt_bools(&self, name: &str) -> Vec<Option<bool>> {
        match self.col(name) {
            Col::Bool(v) => v.clone(),
            other => panic!("{name} is not Boolean: {other:?}"),
        }
    }

    /// A Boolean column without nulls.
    pub fn bools(&self, name: &str) -> Vec<bool> {
        match self.col(name) {
            Col::Bool(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| x.unwrap_or_else(|| panic!("{name}[{i}] is null")))
                .collect(),
            other => panic!("{name} is not Boolean: {other:?}"),
        }
    }
}

/// The values of an Arrow column, nulls as `None`.
fn nullable<T>(a: &dyn Array, value: impl Fn(usize) -> T) -> Vec<Option<T>> {
    (0..a.len())
        .map(|j| a.is_valid(j).then(|| value(j)))
        .collect()
}

/// Whether the file name starts with a dot (a temporary part).
pub fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The same schema and every column equal, floats compared by their bits; a failure
/// names the first differing column and row.
#[track_caller]
pub fn assert_tables_bitwise_equal(a: &Table, b: &Table, what: &str) {
    assert_eq!(a.fields, b.fields, "{what}: schemas differ");
    assert_eq!(a.rows, b.rows, "{what}: row counts differ");
    for ((name, _, _), (ca, cb)) in a.fields.iter().zip(a.cols.iter().zip(&b.cols)) {
        if let Some(i) = ca.first_difference(cb) {
            panic!(
                "{what}: column {name} differs, first at row {i}: {} vs {}",
                ca.show(i),
                cb.show(i)
            );
        }
    }
}

/// The footer's key-value metadata and the row count of a part, read without decoding
/// its rows.
pub fn part_meta(path: &Path) -> (HashMap<String, String>, i64) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = SerializedFileReader::new(file)
        .unwrap_or_else(|e| panic!("{} is not a Parquet file: {e}", path.display()));
    let meta = reader.metadata().file_metadata();
    let kv = meta
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    (kv, meta.num_rows())
}

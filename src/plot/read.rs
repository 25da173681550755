//! Reading a result directory's Parquet parts: the columns a plot needs, typed.

use super::*;

/// How a column is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Num,
    Bool,
    Str,
}

pub(super) fn kind_of(dt: &DataType) -> Option<Kind> {
    use DataType::*;
    match dt {
        Float64 | Float32 | UInt64 | UInt32 | UInt16 | UInt8 | Int64 | Int32 | Int16 | Int8 => {
            Some(Kind::Num)
        }
        Boolean => Some(Kind::Bool),
        Utf8 => Some(Kind::Str),
        _ => None,
    }
}

/// One column in memory: numbers (booleans as 0/1) with NaN for null, or text.
#[derive(Debug, Clone)]
pub(super) enum Col {
    Num(Vec<f64>),
    Str(Vec<Option<String>>),
}

impl Col {
    pub(super) fn len(&self) -> usize {
        match self {
            Col::Num(v) => v.len(),
            Col::Str(v) => v.len(),
        }
    }

    pub(super) fn num(&self) -> &[f64] {
        match self {
            Col::Num(v) => v,
            Col::Str(_) => unreachable!("string columns are refused before reading"),
        }
    }
}

/// Appends `array` to `col`.
pub(super) fn append(col: &mut Col, array: &dyn Array) -> Result<(), String> {
    macro_rules! prim {
        ($v:expr, $t:ty) => {
            $v.extend(
                array
                    .as_primitive::<$t>()
                    .iter()
                    .map(|x| x.map_or(f64::NAN, |x| x as f64)),
            )
        };
    }
    match col {
        Col::Num(v) => match array.data_type() {
            DataType::Float64 => prim!(v, Float64Type),
            DataType::Float32 => prim!(v, Float32Type),
            DataType::UInt64 => prim!(v, UInt64Type),
            DataType::UInt32 => prim!(v, UInt32Type),
            DataType::UInt16 => prim!(v, UInt16Type),
            DataType::UInt8 => prim!(v, UInt8Type),
            DataType::Int64 => prim!(v, Int64Type),
            DataType::Int32 => prim!(v, Int32Type),
            DataType::Int16 => prim!(v, Int16Type),
            DataType::Int8 => prim!(v, Int8Type),
            DataType::Boolean => v.extend(
                array
                    .as_boolean()
                    .iter()
                    .map(|b| b.map_or(f64::NAN, |b| f64::from(u8::from(b)))),
            ),
            other => return Err(format!("type {other} where a number was expected")),
        },
        Col::Str(v) => match array.data_type() {
            DataType::Utf8 => v.extend(
                array
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.map(str::to_string)),
            ),
            other => return Err(format!("type {other} where text was expected")),
        },
    }
    Ok(())
}

/// The complete parts (`part-*.parquet`) in `sub`, sorted; temporary files are skipped.
pub(super) fn part_files(sub: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut parts: Vec<PathBuf> = fs::read_dir(sub)?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("part-") && name.ends_with(".parquet")
        })
        .map(|e| e.path())
        .collect();
    parts.sort();
    Ok(parts)
}

/// The summary parts of `dir`, or why `dir` is not a result directory.
pub(super) fn summary_parts(dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let not_dir = |why: &str| PlotError::NotResultDir {
        dir: dir.to_path_buf(),
        why: why.to_string(),
    };
    if !dir.is_dir() {
        return Err(not_dir(if dir.exists() {
            "not a directory"
        } else {
            "no such directory"
        }));
    }
    let sub = Layout::new(dir).table_dir(TableKind::Summary);
    match part_files(&sub) {
        Ok(parts) if !parts.is_empty() => Ok(parts),
        Ok(_) => Err(not_dir("no summary/part-*.parquet")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_dir("no summary/")),
        Err(e) => Err(PlotError::Io(io_err(&sub)(e))),
    }
}

pub(super) fn parquet_err(
    path: &Path,
) -> impl FnOnce(parquet::errors::ParquetError) -> PlotError + '_ {
    move |source| {
        PlotError::Io(OutputError::Parquet {
            path: path.to_path_buf(),
            source,
        })
    }
}

pub(super) fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, PlotError> {
    let file = File::open(path).map_err(|e| PlotError::Io(io_err(path)(e)))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err(path))
}

/// Reads the named columns of every part, all rows (`keep` may drop rows batch by batch).
pub(super) fn read_columns(
    parts: &[PathBuf],
    names: &[(String, Kind)],
    mut keep: impl FnMut(&RecordBatch) -> Option<Vec<bool>>,
    mut skip_part: impl FnMut(&ParquetRecordBatchReaderBuilder<File>) -> Option<Vec<usize>>,
) -> Result<Vec<Col>, PlotError> {
    let mut cols: Vec<Col> = names
        .iter()
        .map(|(_, k)| match k {
            Kind::Str => Col::Str(Vec::new()),
            _ => Col::Num(Vec::new()),
        })
        .collect();
    for path in parts {
        let builder = open(path)?;
        // None: skip the part; Some(row groups) (empty: all of them).
        let Some(row_groups) = skip_part(&builder) else {
            continue;
        };
        let schema: SchemaRef = builder.schema().clone();
        let mut indices = Vec::new();
        for (name, _) in names {
            let i = schema.index_of(name).map_err(|_| PlotError::BadColumn {
                name: name.clone(),
                why: format!("missing from {} (a part of another sweep?)", path.display()),
            })?;
            indices.push(i);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
        let mut builder = builder.with_projection(mask).with_batch_size(65_536);
        if !row_groups.is_empty() {
            builder = builder.with_row_groups(row_groups);
        }
        let reader = builder.build().map_err(parquet_err(path))?;
        for batch in reader {
            let batch = batch.map_err(|source| {
                PlotError::Io(OutputError::Arrow {
                    path: path.clone(),
                    source,
                })
            })?;
            let rows = keep(&batch);
            for ((name, _), col) in names.iter().zip(cols.iter_mut()) {
                let array = batch.column_by_name(name).expect("projected column");
                let bad = |why: String| PlotError::BadColumn {
                    name: name.clone(),
                    why: format!("{}: {why}", path.display()),
                };
                match &rows {
                    None => append(col, array.as_ref()).map_err(bad)?,
                    Some(rows) => {
                        let mut part = match col {
                            Col::Num(_) => Col::Num(Vec::new()),
                            Col::Str(_) => Col::Str(Vec::new()),
                        };
                        append(&mut part, array.as_ref()).map_err(bad)?;
                        let mut k = rows.iter();
                        match (col, part) {
                            (Col::Num(c), Col::Num(p)) => {
                                c.extend(p.into_iter().filter(|_| *k.next().unwrap_or(&false)))
                            }
                            (Col::Str(c), Col::Str(p)) => {
                                c.extend(p.into_iter().filter(|_| *k.next().unwrap_or(&false)))
                            }
                            _ => unreachable!("same kind"),
                        }
                    }
                }
            }
        }
    }
    Ok(cols)
}

/// The summary schema (of the first part): column names and kinds.
pub(super) fn summary_columns(parts: &[PathBuf]) -> Result<Vec<(String, Option<Kind>)>, PlotError> {
    let builder = open(&parts[0])?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), kind_of(f.data_type())))
        .collect())
}

/// The kind of column `name`, or an error listing the columns.
pub(super) fn lookup(columns: &[(String, Option<Kind>)], name: &str) -> Result<Kind, PlotError> {
    match columns.iter().find(|(n, _)| n == name) {
        Some((_, Some(k))) => Ok(*k),
        Some((_, None)) => Err(PlotError::BadColumn {
            name: name.into(),
            why: "has a type that cannot be plotted".into(),
        }),
        None => Err(PlotError::UnknownColumn {
            name: name.into(),
            available: columns.iter().map(|(n, _)| n.clone()).collect(),
        }),
    }
}

/// The spec of a result directory, when its spec.yaml is there and valid.
pub(super) fn read_spec(dir: &Path) -> Option<crate::spec::Spec> {
    let text = fs::read_to_string(Layout::new(dir).spec()).ok()?;
    crate::spec::parse(&text).ok()
}

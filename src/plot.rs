//! `mpr-sweep plot`: a heatmap of a summary column over two parameter columns, or r_hz(t)
//! and v(t) of chosen runs, drawn to PNG without Python and without system fonts.
//!
//! Data flow: the Parquet parts of `DIR/summary` (or `DIR/traces`) are read with only the
//! needed columns → `--where` filters → rows grouped by their (x, y) cell and aggregated →
//! drawn with `plotters` into an RGB buffer → encoded as PNG in memory → written
//! atomically (temporary file, fsync, rename), like the Parquet parts.
//!
//! Column types: numeric columns plot as they are, booleans (`diverged`) as 0/1. String
//! columns (`fp_settled`) are refused as `--x`, `--y` and `--color` (with a message naming
//! the numeric columns that say the same) but work in `--where` (`fp_settled=high`).
//! Nulls (statistics of diverged runs) are skipped by every aggregate, as pandas does;
//! `--agg count` counts the non-null values of a cell and `--agg std` is the sample
//! standard deviation (ddof = 1, as pandas, Polars and DuckDB), so it needs two values.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::output::{Layout, OutputError, io_err, write_atomic};

/// DejaVu Sans 2.37 (Bitstream Vera license: `assets/fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// The family name the font is registered under; plotters' default styles use it too.
const FAMILY: &str = "sans-serif";

/// Values within this relative distance are the same (filters, grid cells).
pub const REL_TOL: f64 = 1e-9;

/// Distinct values an axis of a heatmap may have.
pub const MAX_AXIS_VALUES: usize = 2000;

/// Runs one `--traces` plot may show.
pub const MAX_TRACED_RUNS: usize = 20;

/// Cell colour where no value exists (no run, or null in every run of the cell).
const NO_DATA: RGBColor = RGBColor(215, 215, 215);

/// Line colours of `--traces` (matplotlib's tab10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Arguments of `mpr-sweep plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotCli {
    /// Result directory (written by `mpr-sweep run`).
    pub dir: PathBuf,
    /// Summary column on the horizontal axis (e.g. eta).
    #[arg(
        long,
        value_name = "COLUMN",
        required_unless_present = "traces",
        conflicts_with = "traces"
    )]
    pub x: Option<String>,
    /// Summary column on the vertical axis (e.g. J).
    #[arg(
        long,
        value_name = "COLUMN",
        required_unless_present = "traces",
        conflicts_with = "traces"
    )]
    pub y: Option<String>,
    /// Numeric or boolean summary column shown by colour (e.g. r_hz_mean; diverged plots
    /// as 0/1; the string column fp_settled is refused, filter on it with --where).
    #[arg(
        long,
        value_name = "COLUMN",
        required_unless_present = "traces",
        conflicts_with = "traces"
    )]
    pub color: Option<String>,
    /// Keep only runs with COLUMN = VALUE (numbers match within 1e-9 relative; true/false
    /// for diverged; text for fp_settled); comma-separated or repeated, all must hold.
    #[arg(
        long = "where",
        value_name = "COLUMN=VALUE",
        value_delimiter = ',',
        conflicts_with = "traces"
    )]
    pub filters: Vec<String>,
    /// How the runs that share an (x, y) cell combine (replicates, axes not filtered);
    /// nulls are skipped, std has ddof = 1.
    #[arg(long, value_enum, default_value_t = Agg::Mean, conflicts_with = "traces")]
    pub agg: Agg,
    /// Instead of a heatmap, draw r_hz(t) and v(t) of these runs from DIR/traces
    /// (e.g. 0,17,42).
    #[arg(long, value_name = "RUN_IDS", value_delimiter = ',')]
    pub traces: Option<Vec<u64>>,
    /// Output file (PNG).
    #[arg(short = 'o', long = "out", value_name = "PNG")]
    pub out: PathBuf,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(200..=8000))]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(200..=8000))]
    pub height: u32,
}

/// How the values of one cell combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Agg {
    Mean,
    Min,
    Max,
    Median,
    /// Non-null values in the cell.
    Count,
    /// Sample standard deviation (ddof = 1).
    Std,
}

impl Agg {
    pub fn name(self) -> &'static str {
        match self {
            Agg::Mean => "mean",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Median => "median",
            Agg::Count => "count",
            Agg::Std => "std",
        }
    }

    /// The aggregate of `values` (nulls already removed); NaN when undefined.
    pub fn apply(self, values: &mut [f64]) -> f64 {
        let n = values.len();
        if n == 0 {
            return if self == Agg::Count { 0.0 } else { f64::NAN };
        }
        match self {
            Agg::Count => n as f64,
            Agg::Mean => values.iter().sum::<f64>() / n as f64,
            Agg::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
            Agg::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Agg::Median => {
                values.sort_by(f64::total_cmp);
                if n % 2 == 1 {
                    values[n / 2]
                } else {
                    0.5 * (values[n / 2 - 1] + values[n / 2])
                }
            }
            Agg::Std => {
                if n < 2 {
                    return f64::NAN;
                }
                let mean = values.iter().sum::<f64>() / n as f64;
                let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
                (ss / (n - 1) as f64).sqrt()
            }
        }
    }
}

/// What to draw as a heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapArgs {
    pub x: String,
    pub y: String,
    pub color: String,
    /// `COLUMN=VALUE` filters, all of which must hold.
    pub filters: Vec<String>,
    pub agg: Agg,
    pub width: u32,
    pub height: u32,
}

impl HeatmapArgs {
    /// The mean of `color` over `x` and `y`, no filter, 1000 x 800 pixels.
    pub fn new(x: &str, y: &str, color: &str) -> HeatmapArgs {
        HeatmapArgs {
            x: x.into(),
            y: y.into(),
            color: color.into(),
            filters: Vec::new(),
            agg: Agg::Mean,
            width: 1000,
            height: 800,
        }
    }
}

/// Which runs to draw with `--traces`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracesArgs {
    pub runs: Vec<u64>,
    pub width: u32,
    pub height: u32,
}

/// The heatmap as drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSummary {
    pub out: PathBuf,
    pub width: u32,
    pub height: u32,
    pub title: String,
    /// Distinct values of the x column, ascending (the columns of the grid).
    pub x_values: Vec<f64>,
    /// Distinct values of the y column, ascending (the rows of the grid).
    pub y_values: Vec<f64>,
    /// The aggregate of each cell, row-major: `values[iy * x_values.len() + ix]`; NaN where
    /// the cell has no run or only nulls.
    pub values: Vec<f64>,
    /// Runs in each cell (nulls included), same layout.
    pub counts: Vec<u64>,
    /// Runs left after the filters.
    pub rows: u64,
    /// The smallest and largest finite cell value. The colour bar spans this range
    /// (widened when the two are equal), or 0 to 1 for a boolean column.
    pub range: (f64, f64),
}

impl PlotSummary {
    /// The value of the cell at (x, y), matched within [`REL_TOL`].
    pub fn value(&self, x: f64, y: f64) -> Option<f64> {
        let ix = position(&self.x_values, x)?;
        let iy = position(&self.y_values, y)?;
        Some(self.values[iy * self.x_values.len() + ix])
    }

    /// The number of runs in the cell at (x, y).
    pub fn count(&self, x: f64, y: f64) -> Option<u64> {
        let ix = position(&self.x_values, x)?;
        let iy = position(&self.y_values, y)?;
        Some(self.counts[iy * self.x_values.len() + ix])
    }
}

/// The traces as drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct TracesSummary {
    pub out: PathBuf,
    pub width: u32,
    pub height: u32,
    pub title: String,
    /// Per run, in the order asked: run id, trace rows, legend label.
    pub runs: Vec<(u64, usize, String)>,
}

/// Why a plot cannot be made. Every message starts with the offending name.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{}: not an mpr-sweep result directory ({why})", dir.display())]
    NotResultDir { dir: PathBuf, why: String },
    #[error("{name}: no such column in the summary; available: {}", available.join(", "))]
    UnknownColumn {
        name: String,
        available: Vec<String>,
    },
    /// A column that exists but cannot be used this way.
    #[error("{name}: {why}")]
    BadColumn { name: String, why: String },
    #[error("{filter}: {why}")]
    BadFilter { filter: String, why: String },
    #[error("{filter}: no run matches{context}; {column} takes {}", values.join(", "))]
    NoMatch {
        filter: String,
        column: String,
        /// `" among the runs with a=1"` when earlier filters narrowed the runs.
        context: String,
        values: Vec<String>,
    },
    /// Runs asked for with `--traces` that have no trace.
    #[error("{}: {why}", if runs.len() == 1 { format!("run {}", runs[0]) } else { format!("runs {}", join_ids(runs)) })]
    NotTraced { runs: Vec<u64>, why: String },
    /// `--traces` asks for nothing or too much.
    #[error("--traces: {0}")]
    BadTraces(String),
    /// The output path or size does not fit.
    #[error("{name}: {why}")]
    BadOutput { name: String, why: String },
    /// Reading the parts or writing the PNG failed.
    #[error("{0}")]
    Io(#[from] OutputError),
    #[error("{}: drawing failed: {why}", path.display())]
    Render { path: PathBuf, why: String },
}

impl PlotError {
    /// Whether the request is at fault (exit 2), not the machine (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, PlotError::Io(_) | PlotError::Render { .. })
    }
}

impl From<PlotError> for crate::Error {
    fn from(e: PlotError) -> crate::Error {
        match e {
            PlotError::Io(o) => crate::Error::Output(o),
            PlotError::Render { path, why } => crate::Error::Output(OutputError::Io {
                path,
                source: std::io::Error::other(format!("drawing failed: {why}")),
            }),
            e => crate::Error::Usage(e.to_string()),
        }
    }
}

/// `mpr-sweep plot`: draws the heatmap or the traces and reports on stderr.
pub fn run_cli(args: &PlotCli) -> Result<(), crate::Error> {
    match &args.traces {
        Some(runs) => {
            let t = TracesArgs {
                runs: runs.clone(),
                width: args.width,
                height: args.height,
            };
            let s = traces(&args.dir, &t, &args.out)?;
            eprintln!(
                "mpr-sweep: {}: r_hz(t) and v(t) of {} run(s), {} trace rows",
                s.out.display(),
                s.runs.len(),
                s.runs.iter().map(|r| r.1).sum::<usize>()
            );
        }
        None => {
            let (Some(x), Some(y), Some(color)) = (&args.x, &args.y, &args.color) else {
                return Err(crate::Error::Usage(
                    "plot: give --x, --y and --color, or --traces RUN_IDS".into(),
                ));
            };
            let h = HeatmapArgs {
                x: x.clone(),
                y: y.clone(),
                color: color.clone(),
                filters: args.filters.clone(),
                agg: args.agg,
                width: args.width,
                height: args.height,
            };
            let s = heatmap(&args.dir, &h, &args.out)?;
            let empty = s.values.iter().filter(|v| v.is_nan()).count();
            eprintln!(
                "mpr-sweep: {}: {} over {} ({}) x {} ({}) from {} runs, {} to {}{}",
                s.out.display(),
                h.color,
                h.x,
                s.x_values.len(),
                h.y,
                s.y_values.len(),
                s.rows,
                fmt_value(s.range.0),
                fmt_value(s.range.1),
                if empty > 0 {
                    format!(", {empty} cell(s) without a value (grey)")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// How a column is read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Num,
    Bool,
    Str,
}

fn kind_of(dt: &DataType) -> Option<Kind> {
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
enum Col {
    Num(Vec<f64>),
    Str(Vec<Option<String>>),
}

impl Col {
    fn len(&self) -> usize {
        match self {
            Col::Num(v) => v.len(),
            Col::Str(v) => v.len(),
        }
    }

    fn num(&self) -> &[f64] {
        match self {
            Col::Num(v) => v,
            Col::Str(_) => unreachable!("string columns are refused before reading"),
        }
    }
}

/// Appends `array` to `col`.
fn append(col: &mut Col, array: &dyn Array) -> Result<(), String> {
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
fn part_files(sub: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
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
fn summary_parts(dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
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
    let sub = Layout::new(dir).summary_dir();
    match part_files(&sub) {
        Ok(parts) if !parts.is_empty() => Ok(parts),
        Ok(_) => Err(not_dir("no summary/part-*.parquet")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_dir("no summary/")),
        Err(e) => Err(PlotError::Io(io_err(&sub)(e))),
    }
}

fn parquet_err(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> PlotError + '_ {
    move |source| {
        PlotError::Io(OutputError::Parquet {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, PlotError> {
    let file = File::open(path).map_err(|e| PlotError::Io(io_err(path)(e)))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err(path))
}

/// Reads the named columns of every part, all rows (`keep` may drop rows batch by batch).
fn read_columns(
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
fn summary_columns(parts: &[PathBuf]) -> Result<Vec<(String, Option<Kind>)>, PlotError> {
    let builder = open(&parts[0])?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), kind_of(f.data_type())))
        .collect())
}

/// The kind of column `name`, or an error listing the columns.
fn lookup(columns: &[(String, Option<Kind>)], name: &str) -> Result<Kind, PlotError> {
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
fn read_spec(dir: &Path) -> Option<crate::spec::Spec> {
    let text = fs::read_to_string(Layout::new(dir).spec()).ok()?;
    crate::spec::parse(&text).ok()
}

// ---------------------------------------------------------------------------------------
// Filters and the grid
// ---------------------------------------------------------------------------------------

/// `a` and `b` are the same value within [`REL_TOL`].
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= REL_TOL * a.abs().max(b.abs())
}

/// Index of the value of the sorted, distinct `axis` that `x` matches.
fn position(axis: &[f64], x: f64) -> Option<usize> {
    if !x.is_finite() {
        return None;
    }
    let i = axis.partition_point(|&a| a < x);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .find(|&j| j < axis.len() && close(axis[j], x))
}

/// The sorted distinct finite values of `values` (values within [`REL_TOL`] merged).
fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut out: Vec<f64> = Vec::new();
    for x in v {
        if out.last().is_none_or(|&l| !close(l, x)) {
            out.push(x);
        }
    }
    out
}

/// One `COLUMN=VALUE`.
#[derive(Debug, Clone)]
struct Filter {
    text: String,
    column: String,
    value: FilterValue,
}

#[derive(Debug, Clone)]
enum FilterValue {
    Num(f64),
    Str(String),
}

fn parse_filter(
    text: &str,
    columns: &[(String, Option<Kind>)],
) -> Result<(Filter, Kind), PlotError> {
    let bad = |why: String| PlotError::BadFilter {
        filter: text.to_string(),
        why,
    };
    let Some((column, value)) = text.split_once('=') else {
        return Err(bad("expected COLUMN=VALUE, e.g. delta=1".into()));
    };
    let (column, value) = (column.trim(), value.trim());
    if column.is_empty() || value.is_empty() {
        return Err(bad("expected COLUMN=VALUE, e.g. delta=1".into()));
    }
    let kind = lookup(columns, column)?;
    let value = match kind {
        Kind::Str => FilterValue::Str(value.to_string()),
        Kind::Bool => FilterValue::Num(match value.to_ascii_lowercase().as_str() {
            "true" | "1" => 1.0,
            "false" | "0" => 0.0,
            _ => return Err(bad(format!("{column} is true or false, got {value:?}"))),
        }),
        Kind::Num => match value.parse::<f64>() {
            Ok(v) if v.is_finite() => FilterValue::Num(v),
            _ => return Err(bad(format!("{column} takes a number, got {value:?}"))),
        },
    };
    Ok((
        Filter {
            text: text.trim().to_string(),
            column: column.to_string(),
            value,
        },
        kind,
    ))
}

/// Up to 20 distinct values of `col` among the rows in `mask`, as text.
fn available_values(col: &Col, kind: Kind, mask: &[bool]) -> Vec<String> {
    const SHOW: usize = 20;
    let mut out: Vec<String> = match col {
        Col::Num(v) => {
            let d = distinct(v.iter().zip(mask).filter(|(_, m)| **m).map(|(x, _)| *x));
            let nulls = v.iter().zip(mask).any(|(x, m)| *m && x.is_nan());
            let mut s: Vec<String> = d
                .iter()
                .map(|&x| match kind {
                    Kind::Bool => (x != 0.0).to_string(),
                    _ => x.to_string(),
                })
                .collect();
            if nulls {
                s.push("null".into());
            }
            s
        }
        Col::Str(v) => {
            let set: std::collections::BTreeSet<String> = v
                .iter()
                .zip(mask)
                .filter(|(_, m)| **m)
                .map(|(s, _)| s.clone().unwrap_or_else(|| "null".into()))
                .collect();
            set.into_iter().collect()
        }
    };
    if out.len() > SHOW {
        let n = out.len();
        let last = out.pop().expect("non-empty");
        out.truncate(SHOW - 1);
        out.push(format!("... {last} ({n} values)"));
    }
    out
}

/// Applies the filters in order; an error names the first that leaves nothing.
fn apply_filters(
    filters: &[(Filter, Kind)],
    cols: &[&Col],
    rows: usize,
) -> Result<Vec<bool>, PlotError> {
    let mut mask = vec![true; rows];
    for (i, (f, kind)) in filters.iter().enumerate() {
        let col = cols[i];
        let next: Vec<bool> = match (&f.value, col) {
            (FilterValue::Num(want), Col::Num(v)) => mask
                .iter()
                .zip(v)
                .map(|(m, x)| *m && close(*x, *want))
                .collect(),
            (FilterValue::Str(want), Col::Str(v)) => mask
                .iter()
                .zip(v)
                .map(|(m, s)| *m && s.as_deref() == Some(want.as_str()))
                .collect(),
            _ => unreachable!("filter values follow the column kind"),
        };
        if !next.iter().any(|&m| m) {
            let context = if i == 0 {
                String::new()
            } else {
                let earlier: Vec<&str> =
                    filters[..i].iter().map(|(f, _)| f.text.as_str()).collect();
                format!(" among the runs with {}", earlier.join(", "))
            };
            return Err(PlotError::NoMatch {
                filter: f.text.clone(),
                column: f.column.clone(),
                context,
                values: available_values(col, *kind, &mask),
            });
        }
        mask = next;
    }
    Ok(mask)
}

/// How an axis is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

/// Cell edges of the values of an axis: midway between neighbours (geometrically on a log
/// axis, chosen when the values are in equal ratios and not equally spaced).
fn edges(values: &[f64]) -> (Scale, Vec<f64>) {
    let n = values.len();
    if n == 1 {
        let v = values[0];
        let h = if v == 0.0 { 0.5 } else { 0.05 * v.abs() };
        return (Scale::Linear, vec![v - h, v + h]);
    }
    let span = values[n - 1] - values[0];
    let d0 = values[1] - values[0];
    let uniform = values
        .windows(2)
        .all(|w| ((w[1] - w[0]) - d0).abs() <= 1e-6 * span);
    let r0 = values[1] / values[0];
    let geometric = !uniform
        && n >= 3
        && values[0] > 0.0
        && values
            .windows(2)
            .all(|w| ((w[1] / w[0]) - r0).abs() <= 1e-6 * r0);
    if geometric {
        let mut e = vec![values[0] / r0.sqrt()];
        e.extend(values.windows(2).map(|w| (w[0] * w[1]).sqrt()));
        e.push(values[n - 1] * r0.sqrt());
        (Scale::Log, e)
    } else {
        let mut e = vec![values[0] - 0.5 * d0];
        e.extend(values.windows(2).map(|w| 0.5 * (w[0] + w[1])));
        e.push(values[n - 1] + 0.5 * (values[n - 1] - values[n - 2]));
        (Scale::Linear, e)
    }
}

// ---------------------------------------------------------------------------------------
// Heatmap
// ---------------------------------------------------------------------------------------

/// Draws `args.color` over `args.x` and `args.y` from the summary of the result directory
/// `dir` to the PNG file `out`, and returns the grid as drawn.
pub fn heatmap(dir: &Path, args: &HeatmapArgs, out: &Path) -> Result<PlotSummary, PlotError> {
    check_out(out, args.width, args.height)?;
    let parts = summary_parts(dir)?;
    let columns = summary_columns(&parts)?;

    // Columns, checked in the order given so the first bad name is reported.
    let mut kinds = Vec::new();
    for (flag, name) in [("--x", &args.x), ("--y", &args.y), ("--color", &args.color)] {
        let kind = lookup(&columns, name)?;
        if kind == Kind::Str {
            return Err(PlotError::BadColumn {
                name: name.clone(),
                why: format!(
                    "a text column cannot be {flag} (only numeric and boolean columns plot); \
                     filter on it instead, e.g. --where {name}=high, or plot r_hz_final or \
                     fp_count"
                ),
            });
        }
        kinds.push(kind);
    }
    // Booleans keep a 0..1 colour bar (false dark, true bright) unless counted or spread.
    let unit_bar = kinds[2] == Kind::Bool && !matches!(args.agg, Agg::Count | Agg::Std);
    if args.x == args.y {
        return Err(PlotError::BadColumn {
            name: args.x.clone(),
            why: "given as both --x and --y".into(),
        });
    }
    let filters = args
        .filters
        .iter()
        .map(|f| parse_filter(f, &columns))
        .collect::<Result<Vec<_>, _>>()?;

    // Read each distinct column once: the filter columns first, then x, y, color.
    let mut names: Vec<(String, Kind)> = Vec::new();
    let mut slot = |name: &str, kind: Kind| -> usize {
        match names.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                names.push((name.to_string(), kind));
                names.len() - 1
            }
        }
    };
    let filter_slots: Vec<usize> = filters.iter().map(|(f, k)| slot(&f.column, *k)).collect();
    let [xs, ys, cs] = [&args.x, &args.y, &args.color].map(|n| slot(n, Kind::Num));
    let cols = read_columns(&parts, &names, |_| None, |_| Some(Vec::new()))?;
    let rows = cols.first().map_or(0, Col::len);
    if rows == 0 {
        return Err(PlotError::NotResultDir {
            dir: dir.to_path_buf(),
            why: "the summary has no rows".into(),
        });
    }
    let filter_cols: Vec<&Col> = filter_slots.iter().map(|&i| &cols[i]).collect();
    let mask = apply_filters(&filters, &filter_cols, rows)?;
    let (xv, yv, cv) = (cols[xs].num(), cols[ys].num(), cols[cs].num());

    // The grid.
    let selected = || mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i);
    let x_values = distinct(selected().map(|i| xv[i]));
    let y_values = distinct(selected().map(|i| yv[i]));
    for (name, vals) in [(&args.x, &x_values), (&args.y, &y_values)] {
        if vals.is_empty() {
            return Err(PlotError::BadColumn {
                name: name.clone(),
                why: "null in every selected run".into(),
            });
        }
        if vals.len() > MAX_AXIS_VALUES {
            return Err(PlotError::BadColumn {
                name: name.clone(),
                why: format!(
                    "{} distinct values among the selected runs, more than the {MAX_AXIS_VALUES} \
                     a heatmap axis takes (a drawn value, not a grid? pick a swept parameter or \
                     narrow with --where)",
                    vals.len()
                ),
            });
        }
    }
    let (nx, ny) = (x_values.len(), y_values.len());
    let mut cell_values: Vec<Vec<f64>> = vec![Vec::new(); nx * ny];
    let mut counts = vec![0u64; nx * ny];
    let mut used = 0u64;
    for i in selected() {
        let (Some(ix), Some(iy)) = (position(&x_values, xv[i]), position(&y_values, yv[i])) else {
            continue;
        };
        used += 1;
        counts[iy * nx + ix] += 1;
        if !cv[i].is_nan() {
            cell_values[iy * nx + ix].push(cv[i]);
        }
    }
    let values: Vec<f64> = cell_values
        .iter_mut()
        .zip(&counts)
        .map(|(v, &n)| if n == 0 { f64::NAN } else { args.agg.apply(v) })
        .collect();
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let range = finite.fold(None, |r: Option<(f64, f64)>, v| {
        Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
    });
    let Some(range) = range else {
        let why = if args.agg == Agg::Std && counts.iter().all(|&c| c <= 1) {
            "--agg std needs at least 2 runs per cell, every cell has 1 (no replicates, and \
             every other axis filtered?)"
                .to_string()
        } else {
            "null in every selected run (diverged runs have null statistics)".to_string()
        };
        return Err(PlotError::BadColumn {
            name: args.color.clone(),
            why,
        });
    };

    // Title: what, over how many runs per cell, the filters, the sweep's name.
    let (cmin, cmax) = counts
        .iter()
        .filter(|&&c| c > 0)
        .fold((u64::MAX, 0), |(a, b), &c| (a.min(c), b.max(c)));
    let what = if cmax > 1 || args.agg == Agg::Count {
        let per = if cmin == cmax {
            format!("{cmax} runs per cell")
        } else {
            format!("{cmin}-{cmax} runs per cell")
        };
        format!("{} of {} ({per})", args.agg.name(), args.color)
    } else {
        args.color.clone()
    };
    let mut title = what;
    if !filters.is_empty() {
        let fs: Vec<String> = filters
            .iter()
            .map(|(f, _)| match &f.value {
                FilterValue::Num(_) => {
                    let (c, v) = f.text.split_once('=').expect("checked");
                    format!("{} = {}", c.trim(), v.trim())
                }
                FilterValue::Str(s) => format!("{} = {s}", f.column),
            })
            .collect();
        title = format!("{title} where {}", fs.join(", "));
    }
    if let Some(name) = read_spec(dir).and_then(|s| s.name) {
        title = format!("{name}: {title}");
    }

    let summary = PlotSummary {
        out: out.to_path_buf(),
        width: args.width,
        height: args.height,
        title,
        x_values,
        y_values,
        values,
        counts,
        rows: used,
        range,
    };
    let colorbar_label = if args.agg == Agg::Count {
        format!("count of {}", args.color)
    } else if cmax > 1 {
        format!("{}({})", args.agg.name(), args.color)
    } else {
        args.color.clone()
    };
    let png = render(out, args.width, args.height, |root| {
        let bar = if unit_bar {
            (0.0, 1.0)
        } else {
            bar_range(summary.range)
        };
        draw_heatmap(root, &summary, (&args.x, &args.y), &colorbar_label, bar)
    })?;
    write_atomic(out, &png)?;
    Ok(summary)
}

/// The output must be a `.png` in an existing directory, of a sane size.
fn check_out(out: &Path, width: u32, height: u32) -> Result<(), PlotError> {
    let name = out.display().to_string();
    let is_png = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(PlotError::BadOutput {
            name,
            why: "only PNG output is written; give a file name ending in .png".into(),
        });
    }
    if let Some(parent) = out.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(PlotError::BadOutput {
            name,
            why: format!("directory {} does not exist", parent.display()),
        });
    }
    if out.is_dir() {
        return Err(PlotError::BadOutput {
            name,
            why: "is a directory".into(),
        });
    }
    for (flag, v) in [("--width", width), ("--height", height)] {
        if !(200..=8000).contains(&v) {
            return Err(PlotError::BadOutput {
                name: flag.into(),
                why: format!("must be 200 to 8000 pixels, got {v}"),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Traces
// ---------------------------------------------------------------------------------------

/// Draws r_hz(t) (upper panel) and v(t) (lower panel) of `args.runs` from the traces of the
/// result directory `dir` to the PNG file `out`.
pub fn traces(dir: &Path, args: &TracesArgs, out: &Path) -> Result<TracesSummary, PlotError> {
    check_out(out, args.width, args.height)?;
    let mut runs: Vec<u64> = Vec::new();
    for &r in &args.runs {
        if !runs.contains(&r) {
            runs.push(r);
        }
    }
    if runs.is_empty() {
        return Err(PlotError::BadTraces("give at least one run id".into()));
    }
    if runs.len() > MAX_TRACED_RUNS {
        return Err(PlotError::BadTraces(format!(
            "{} runs asked for, at most {MAX_TRACED_RUNS} fit in one plot",
            runs.len()
        )));
    }
    let summary = summary_parts(dir)?;
    let spec = read_spec(dir);
    let total_runs = spec
        .as_ref()
        .and_then(|s| crate::plan::Plan::new(s).ok())
        .map(|p| p.runs);
    if let Some(total) = total_runs {
        let beyond: Vec<u64> = runs.iter().copied().filter(|&r| r >= total).collect();
        if !beyond.is_empty() {
            return Err(PlotError::NotTraced {
                runs: beyond,
                why: format!(
                    "no such run (the sweep has {total} runs, ids 0 to {})",
                    total.saturating_sub(1)
                ),
            });
        }
    }
    let not_traced = |missing: Vec<u64>, fallback: &str| {
        use crate::spec::TraceRuns;
        let traced = spec.as_ref().map(|s| s.traces.as_ref().map(|t| &t.runs));
        let why = match traced {
            Some(None) => "not traced: the spec has no output.traces".to_string(),
            Some(Some(t)) if missing.iter().any(|&r| t.contains(r)) => {
                format!("not traced: {fallback}")
            }
            Some(Some(TraceRuns::None)) => {
                "not traced: the spec's output.traces.runs is none".to_string()
            }
            Some(Some(TraceRuns::Every(k))) => {
                let nth = match (k % 10, k % 100) {
                    (1, r) if r != 11 => format!("{k}st"),
                    (2, r) if r != 12 => format!("{k}nd"),
                    (3, r) if r != 13 => format!("{k}rd"),
                    _ => format!("{k}th"),
                };
                format!(
                    "not traced: the spec traces every {nth} run (0, {k}, {}, ...)",
                    2 * k
                )
            }
            Some(Some(TraceRuns::Ids(ids))) => {
                format!("not traced: the spec traces runs {}", join_ids(ids))
            }
            _ => format!("not traced: {fallback}"),
        };
        PlotError::NotTraced { runs: missing, why }
    };
    let trace_dir = Layout::new(dir).traces_dir();
    let parts = match part_files(&trace_dir) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(PlotError::Io(io_err(&trace_dir)(e))),
    };
    if parts.is_empty() {
        return Err(not_traced(
            runs,
            "this result directory has no traces/ parts",
        ));
    }

    // Trace rows of the chosen runs: parts and row groups whose run ids cannot hold them are
    // skipped (the parts' mpr_sweep.runs metadata, the row groups' run_id statistics).
    let wanted = runs.clone();
    let names = [
        ("run_id".to_string(), Kind::Num),
        ("t_ms".to_string(), Kind::Num),
        ("r_hz".to_string(), Kind::Num),
        ("v".to_string(), Kind::Num),
    ];
    let keep = |batch: &RecordBatch| Some(rows_of(batch, &wanted));
    let select = |b: &ParquetRecordBatchReaderBuilder<File>| {
        let meta = b.metadata();
        if let Some(range) = part_runs(meta)
            && !wanted.iter().any(|r| range.contains(r))
        {
            return None;
        }
        let id_col = b.schema().index_of("run_id").ok()?;
        let groups: Vec<usize> = (0..meta.num_row_groups())
            .filter(|&g| match meta.row_group(g).column(id_col).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(&lo), Some(&hi)) => {
                        wanted.iter().any(|&r| (lo as u64..=hi as u64).contains(&r))
                    }
                    _ => true,
                },
                _ => true,
            })
            .collect();
        if groups.is_empty() {
            return None;
        }
        Some(groups)
    };
    let cols = read_columns(&parts, &names, keep, select)?;
    let (ids, t, r, v) = (cols[0].num(), cols[1].num(), cols[2].num(), cols[3].num());
    let mut series: BTreeMap<u64, Vec<Point>> = BTreeMap::new();
    for i in 0..ids.len() {
        series
            .entry(ids[i] as u64)
            .or_default()
            .push((t[i], r[i], v[i]));
    }
    let missing: Vec<u64> = runs
        .iter()
        .copied()
        .filter(|r| !series.contains_key(r))
        .collect();
    if !missing.is_empty() {
        return Err(not_traced(
            missing,
            "no rows for it in traces/ (is its shard's part missing?)",
        ));
    }
    for s in series.values_mut() {
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    // Legend labels: each run's swept parameters.
    let labels = run_labels(&summary, spec.as_ref(), &runs)?;
    let title = {
        let what = format!("r_hz(t) and v(t), runs {}", join_ids(&runs));
        match spec.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => format!("{name}: {what}"),
            None => what,
        }
    };
    let lines: Vec<Line> = runs
        .iter()
        .zip(&labels)
        .map(|(r, l)| (l.clone(), series[r].as_slice()))
        .collect();
    let png = render(out, args.width, args.height, |root| {
        draw_traces(root, &title, &lines)
    })?;
    write_atomic(out, &png)?;
    Ok(TracesSummary {
        out: out.to_path_buf(),
        width: args.width,
        height: args.height,
        title,
        runs: runs
            .iter()
            .zip(labels)
            .map(|(r, l)| (*r, series[r].len(), l))
            .collect(),
    })
}

/// Which rows of `batch` belong to the runs `wanted` (by its `run_id` column).
fn rows_of(batch: &RecordBatch, wanted: &[u64]) -> Vec<bool> {
    let mut ids = Col::Num(Vec::new());
    match batch.column_by_name("run_id") {
        Some(a) if append(&mut ids, a.as_ref()).is_ok() => ids
            .num()
            .iter()
            .map(|&id| id >= 0.0 && wanted.contains(&(id as u64)))
            .collect(),
        _ => vec![false; batch.num_rows()],
    }
}

/// `mpr_sweep.runs` (`"start..end"`) of a part.
fn part_runs(meta: &parquet::file::metadata::ParquetMetaData) -> Option<Range<u64>> {
    let kv = meta.file_metadata().key_value_metadata()?;
    let value = kv
        .iter()
        .find(|p| p.key == "mpr_sweep.runs")?
        .value
        .as_ref()?;
    let (a, b) = value.split_once("..")?;
    Some(a.parse().ok()?..b.parse().ok()?)
}

/// `run 17: eta = -5, J = 15` from the summary: the swept parameters of each run (and the
/// replicate when there are several).
fn run_labels(
    parts: &[PathBuf],
    spec: Option<&crate::spec::Spec>,
    runs: &[u64],
) -> Result<Vec<String>, PlotError> {
    let mut params: Vec<String> = Vec::new();
    if let Some(spec) = spec {
        for p in &spec.params {
            if p.axis.is_swept() {
                params.push(p.slot.column().to_string());
            }
        }
        if spec.replicates > 1 {
            params.push("replicate".into());
        }
    }
    let columns = summary_columns(parts)?;
    params.retain(|p| columns.iter().any(|(n, k)| n == p && k.is_some()));
    if params.is_empty() {
        return Ok(runs.iter().map(|r| format!("run {r}")).collect());
    }
    let mut names = vec![("run_id".to_string(), Kind::Num)];
    names.extend(params.iter().map(|p| (p.clone(), Kind::Num)));
    let wanted = runs.to_vec();
    let keep = |batch: &RecordBatch| Some(rows_of(batch, &wanted));
    let select = |b: &ParquetRecordBatchReaderBuilder<File>| match part_runs(b.metadata()) {
        Some(range) if !wanted.iter().any(|r| range.contains(r)) => None,
        _ => Some(Vec::new()),
    };
    let cols = read_columns(parts, &names, keep, select)?;
    let ids = cols[0].num();
    Ok(runs
        .iter()
        .map(|&r| match ids.iter().position(|&id| id as u64 == r) {
            Some(i) => {
                let kv: Vec<String> = params
                    .iter()
                    .zip(&cols[1..])
                    .map(|(p, c)| format!("{p} = {}", c.num()[i]))
                    .collect();
                format!("run {r}: {}", kv.join(", "))
            }
            None => format!("run {r}"),
        })
        .collect())
}

fn join_ids(ids: &[u64]) -> String {
    const SHOW: usize = 12;
    let mut s: Vec<String> = ids.iter().take(SHOW).map(u64::to_string).collect();
    if ids.len() > SHOW {
        s.push(format!("... ({} in all)", ids.len()));
    }
    s.join(", ")
}

// ---------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------

type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A trace sample: t_ms, r_hz, v.
type Point = (f64, f64, f64);

/// A run's legend label and its trace.
type Line<'a> = (String, &'a [Point]);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TrueType file (the tests draw text with it).
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Draws with `draw` into an RGB buffer of `width` x `height` and encodes it as PNG.
fn render(
    out: &Path,
    width: u32,
    height: u32,
    draw: impl FnOnce(&Root) -> Result<(), String>,
) -> Result<Vec<u8>, PlotError> {
    register_font();
    let fail = |why: String| PlotError::Render {
        path: out.to_path_buf(),
        why,
    };
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| fail(e.to_string()))?;
        w.write_image_data(&buf).map_err(|e| fail(e.to_string()))?;
        w.finish().map_err(|e| fail(e.to_string()))?;
    }
    Ok(png_bytes)
}

fn err<E: std::error::Error>(e: E) -> String {
    e.to_string()
}

/// A short label for a number: up to 4 decimals, trailing zeros dropped; exponent form
/// for very large and very small magnitudes.
pub fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        return "null".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.3e}");
        let (m, e) = s.split_once('e').expect("exponent form");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let digits = if a >= 100.0 { 2 } else { 4 };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// Matplotlib's viridis, 9 stops, interpolated linearly.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (72, 40, 120),
        (62, 73, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + f * (q as f64 - p as f64)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The colour bar's range: the data's, widened when all values are equal.
fn bar_range((lo, hi): (f64, f64)) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let h = if lo == 0.0 { 0.5 } else { 0.05 * lo.abs() };
        (lo - h, hi + h)
    }
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

const MARGIN: u32 = 12;
const X_LABEL_AREA: u32 = 60;
const Y_LABEL_AREA: u32 = 80;
const BAR_WIDTH: u32 = 170;

fn draw_heatmap(
    root: &Root,
    s: &PlotSummary,
    (x_name, y_name): (&str, &str),
    bar_label: &str,
    scale: (f64, f64),
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let area = root.titled(&s.title, font(22).color(&BLACK)).map_err(err)?;
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(BAR_WIDTH));
    let (xscale, xe) = edges(&s.x_values);
    let (yscale, ye) = edges(&s.y_values);
    let xr = xe[0]..xe[xe.len() - 1];
    let yr = ye[0]..ye[ye.len() - 1];
    let cells = Cells {
        s,
        xe: &xe,
        ye: &ye,
        range: scale,
    };
    let names = (x_name, y_name);
    match (xscale, yscale) {
        (Scale::Linear, Scale::Linear) => cells.draw(&main, xr, yr, names)?,
        (Scale::Log, Scale::Linear) => cells.draw(&main, xr.log_scale(), yr, names)?,
        (Scale::Linear, Scale::Log) => cells.draw(&main, xr, yr.log_scale(), names)?,
        (Scale::Log, Scale::Log) => cells.draw(&main, xr.log_scale(), yr.log_scale(), names)?,
    }
    draw_colorbar(
        &bar,
        cells.range,
        bar_label,
        s.values.iter().any(|v| v.is_nan()),
    )
}

struct Cells<'a> {
    s: &'a PlotSummary,
    xe: &'a [f64],
    ye: &'a [f64],
    range: (f64, f64),
}

impl Cells<'_> {
    fn draw<XR, YR>(
        &self,
        area: &Root,
        xr: XR,
        yr: YR,
        (x_name, y_name): (&str, &str),
    ) -> Result<(), String>
    where
        XR: AsRangedCoord<Value = f64>,
        YR: AsRangedCoord<Value = f64>,
        XR::CoordDescType: ValueFormatter<f64>,
        YR::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        let nx = self.s.x_values.len();
        let (lo, hi) = self.range;
        let rects = self.s.values.iter().enumerate().map(|(k, &v)| {
            let (ix, iy) = (k % nx, k / nx);
            let color = if v.is_nan() {
                NO_DATA
            } else {
                viridis((v - lo) / (hi - lo))
            };
            Rectangle::new(
                [
                    (self.xe[ix], self.ye[iy]),
                    (self.xe[ix + 1], self.ye[iy + 1]),
                ],
                color.filled(),
            )
        });
        chart.draw_series(rects).map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .set_all_tick_mark_size(6)
            .x_desc(x_name)
            .y_desc(y_name)
            .axis_desc_style(font(20))
            .label_style(font(15))
            .x_label_formatter(&|v| fmt_value(*v))
            .y_label_formatter(&|v| fmt_value(*v))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

fn draw_colorbar(
    area: &Root,
    (lo, hi): (f64, f64),
    label: &str,
    no_data: bool,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(MARGIN)
        .margin_bottom(MARGIN + X_LABEL_AREA)
        .margin_left(10)
        .margin_right(MARGIN)
        .set_label_area_size(LabelAreaPosition::Right, 110)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(err)?;
    const STEPS: usize = 256;
    let step = (hi - lo) / STEPS as f64;
    chart
        .draw_series((0..STEPS).map(|k| {
            let y0 = lo + k as f64 * step;
            Rectangle::new(
                [(0.0, y0), (1.0, y0 + step)],
                viridis((k as f64 + 0.5) / STEPS as f64).filled(),
            )
        }))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .set_all_tick_mark_size(6)
        .disable_x_axis()
        .y_desc(label)
        .axis_desc_style(font(18))
        .label_style(font(15))
        .y_label_formatter(&|v| fmt_value(*v))
        .draw()
        .map_err(err)?;
    if no_data {
        let (_, h) = area.dim_in_pixel();
        let y = (h - X_LABEL_AREA + 10) as i32;
        area.draw(&Rectangle::new([(12, y), (30, y + 18)], NO_DATA.filled()))
            .map_err(err)?;
        area.draw(&Text::new("no value", (36, y + 1), font(15)))
            .map_err(err)?;
    }
    Ok(())
}

fn draw_traces(root: &Root, title: &str, lines: &[Line]) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let area = root.titled(title, font(22).color(&BLACK)).map_err(err)?;
    let panels = area.split_evenly((2, 1));
    let t_range = lines
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
            (a.min(t), b.max(t))
        });
    let t_range = bar_range(t_range);
    for (panel, (var, pick)) in panels.iter().zip([
        ("r_hz (Hz)", (|p: &Point| p.1) as fn(&Point) -> f64),
        ("v", |p: &Point| p.2),
    ]) {
        let (lo, hi) = lines
            .iter()
            .flat_map(|(_, s)| s.iter().map(pick))
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo.is_finite() {
            bar_range((lo, hi))
        } else {
            (-1.0, 1.0)
        };
        let pad = 0.05 * (hi - lo);
        let mut chart = ChartBuilder::on(panel)
            .margin(MARGIN)
            .x_label_area_size(50)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(t_range.0..t_range.1, (lo - pad)..(hi + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(1)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_desc("t (ms)")
            .y_desc(var)
            .axis_desc_style(font(18))
            .label_style(font(15))
            .x_label_formatter(&|v| fmt_value(*v))
            .y_label_formatter(&|v| fmt_value(*v))
            .draw()
            .map_err(err)?;
        for (k, (label, series)) in lines.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    series.iter().map(|p| (p.0, pick(p))),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if var == "r_hz (Hz)" {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .label_font(font(14))
                .draw()
                .map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates() {
        let v = [3.0, 1.0, 2.0, 10.0];
        let a = |agg: Agg| agg.apply(&mut v.clone());
        assert_eq!(a(Agg::Mean), 4.0);
        assert_eq!(a(Agg::Min), 1.0);
        assert_eq!(a(Agg::Max), 10.0);
        assert_eq!(a(Agg::Median), 2.5);
        assert_eq!(a(Agg::Count), 4.0);
        let std = ((1.0 + 9.0 + 4.0 + 36.0) / 3.0f64).sqrt();
        assert!((a(Agg::Std) - std).abs() < 1e-12);
        assert!(Agg::Std.apply(&mut [1.0]).is_nan());
        assert_eq!(Agg::Count.apply(&mut []), 0.0);
        assert_eq!(Agg::Median.apply(&mut [5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn grid_helpers() {
        let d = distinct([1.0, 0.1 + 0.2, 0.3, f64::NAN, 1.0 + 1e-12].into_iter());
        assert_eq!(d.len(), 2);
        assert_eq!(position(&d, 0.3), Some(0));
        assert_eq!(position(&d, 1.0), Some(1));
        assert_eq!(position(&d, 0.5), None);
        let (s, e) = edges(&[0.0, 1.0, 2.0]);
        assert_eq!(s, Scale::Linear);
        assert_eq!(e, vec![-0.5, 0.5, 1.5, 2.5]);
        let (s, e) = edges(&[1.0, 10.0, 100.0]);
        assert_eq!(s, Scale::Log);
        assert!((e[1] - 10f64.sqrt()).abs() < 1e-12);
        assert_eq!(edges(&[2.0]).1, vec![1.9, 2.1]);
    }

    #[test]
    fn number_labels() {
        assert_eq!(fmt_value(0.0), "0");
        assert_eq!(fmt_value(-7.5), "-7.5");
        assert_eq!(fmt_value(1000.0), "1000");
        assert_eq!(fmt_value(3006.1234), "3006.12");
        assert_eq!(fmt_value(0.1), "0.1");
        assert_eq!(fmt_value(1.5e-5), "1.5e-5");
        assert_eq!(fmt_value(2e7), "2e7");
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        plot: PlotCli,
    }

    #[test]
    fn command_line() {
        use clap::Parser;
        let w = Wrap::try_parse_from([
            "plot",
            "DIR",
            "--x",
            "eta",
            "--y",
            "J",
            "--color",
            "r_hz_mean",
            "--where",
            "delta=1,init_r_hz=1000",
            "--where",
            "noise_v_sigma=0",
            "--agg",
            "median",
            "-o",
            "map.png",
        ])
        .unwrap();
        assert_eq!(
            w.plot.filters,
            ["delta=1", "init_r_hz=1000", "noise_v_sigma=0"]
        );
        assert_eq!(w.plot.agg, Agg::Median);
        assert_eq!(w.plot.traces, None);
        let w =
            Wrap::try_parse_from(["plot", "DIR", "--traces", "0,17,42", "-o", "t.png"]).unwrap();
        assert_eq!(w.plot.traces, Some(vec![0, 17, 42]));
        assert!(Wrap::try_parse_from(["plot", "DIR", "-o", "t.png"]).is_err());
        assert!(
            Wrap::try_parse_from(["plot", "DIR", "--traces", "1", "--x", "eta", "-o", "t.png"])
                .is_err()
        );
        assert!(Wrap::try_parse_from(["plot", "DIR", "--x", "eta", "-o", "t.png"]).is_err());
    }
}

//! `mpr-sweep plot`: a heatmap of a summary column over two parameter columns, r_hz(t)
//! and v(t) of chosen runs, or the FC matrix of a network run, drawn to PNG without Python and without system fonts.
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

use crate::output::{Layout, OutputError, TableKind, io_err, write_atomic};

/// DejaVu Sans 2.37 (Bitstream Vera license: `assets/fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

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

/// How the values of one cell combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// Arithmetic mean.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median (the mean of the two middle values for an even count).
    Median,
    /// Non-null values in the cell.
    Count,
    /// Sample standard deviation (ddof = 1).
    Std,
}

impl Agg {
    /// Every aggregate, in the order `--help` lists them.
    pub const ALL: [Agg; 6] = [
        Agg::Mean,
        Agg::Min,
        Agg::Max,
        Agg::Median,
        Agg::Count,
        Agg::Std,
    ];

    /// The aggregate named `name` (`mean`, `min`, ...).
    pub fn from_name(name: &str) -> Option<Agg> {
        Agg::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The name used on the command line and in titles.
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
    /// Summary column on the x axis.
    pub x: String,
    /// Summary column on the y axis.
    pub y: String,
    /// Summary column whose aggregate colours each cell.
    pub color: String,
    /// `COLUMN=VALUE` filters, all of which must hold.
    pub filters: Vec<String>,
    /// How the runs in a cell combine.
    pub agg: Agg,
    /// Image width in pixels, 200 to 8000.
    pub width: u32,
    /// Image height in pixels, 200 to 8000.
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
    /// Run ids to draw, one line per run.
    pub runs: Vec<u64>,
    /// Image width in pixels, 200 to 8000.
    pub width: u32,
    /// Image height in pixels, 200 to 8000.
    pub height: u32,
}

/// The heatmap as drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSummary {
    /// The PNG written.
    pub out: PathBuf,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The title drawn above the heatmap.
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
    /// The PNG written.
    pub out: PathBuf,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The title drawn above the traces.
    pub title: String,
    /// Per run, in the order asked: run id, trace rows, legend label.
    pub runs: Vec<(u64, usize, String)>,
}

/// Why a plot cannot be made. Every message starts with the offending name.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The directory given is not the output of `mpr-sweep run`.
    #[error("{}: not an mpr-sweep result directory ({why})", dir.display())]
    NotResultDir {
        /// The directory given.
        dir: PathBuf,
        /// What is missing or wrong in it.
        why: String,
    },
    /// A column name that the summary does not have.
    #[error("{name}: no such column in the summary; available: {}", available.join(", "))]
    UnknownColumn {
        /// The name asked for.
        name: String,
        /// The summary's columns.
        available: Vec<String>,
    },
    /// A column that exists but cannot be used this way.
    #[error("{name}: {why}")]
    BadColumn {
        /// The column.
        name: String,
        /// Why it cannot be used (a text column, or both --x and --y).
        why: String,
    },
    /// A `COLUMN=VALUE` filter that cannot be read or applied.
    #[error("{filter}: {why}")]
    BadFilter {
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        why: String,
    },
    /// A filter that no run matches.
    #[error("{filter}: no run matches{context}; {column} takes {}", values.join(", "))]
    NoMatch {
        /// The filter as given.
        filter: String,
        /// The column it tests.
        column: String,
        /// `" among the runs with a=1"` when earlier filters narrowed the runs.
        context: String,
        /// The distinct values the column takes among those runs.
        values: Vec<String>,
    },
    /// Runs asked for with `--traces` that have no trace.
    #[error("{}: {why}", if runs.len() == 1 { format!("run {}", runs[0]) } else { format!("runs {}", join_ids(runs)) })]
    NotTraced {
        /// The run ids asked for that have no trace or do not exist.
        runs: Vec<u64>,
        /// Why: no such run, or which runs the spec traces.
        why: String,
    },
    /// `--traces` asks for nothing or too much.
    #[error("--traces: {0}")]
    BadTraces(String),
    /// The output path or size does not fit.
    #[error("{name}: {why}")]
    BadOutput {
        /// The output path, or the flag (`--width`, `--height`) at fault.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// Reading the parts or writing the PNG failed.
    #[error("{0}")]
    Io(#[from] OutputError),
    /// The drawing library failed to render the PNG.
    #[error("{}: drawing failed: {why}", path.display())]
    Render {
        /// The PNG being drawn.
        path: PathBuf,
        /// The library's message.
        why: String,
    },
}

impl PlotError {
    /// Whether the request is at fault (exit 2), not the machine (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, PlotError::Io(_) | PlotError::Render { .. })
    }
}

mod draw;
mod fc;
mod grid;
mod heatmap;
mod read;
mod traces;

use draw::*;
use grid::*;
use heatmap::check_out;
use read::*;
use traces::{join_ids, part_runs, rows_of};

pub use draw::fmt_value;
pub use fc::fc;
pub use heatmap::heatmap;
pub use traces::traces;

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
}

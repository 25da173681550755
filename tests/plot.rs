//! `plot`: heatmap grids and aggregates against an independent reading of the summary,
//! filters, traces, the PNG written, and the errors (through the library API).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use mpr_sweep::integrate::Isa;
use mpr_sweep::plan::Shard;
use mpr_sweep::plot::{self, Agg, HeatmapArgs, PlotError, TracesArgs};
use mpr_sweep::run::{RunOptions, run};

use common::run::mpr_sweep;
use common::table::Table;

/// 3 eta x 2 J x 2 delta points x 3 replicates = 36 runs, noisy so replicates differ,
/// every 5th run traced, written as two shards.
const SPEC: &str = "\
name: plot-test
model:
  eta: [-6.0, -5.0, -4.0]
  J: [10.0, 15.0]
  delta: [0.5, 1.0]
noise:
  v: {white: {sigma: 0.3}}
simulation:
  duration_ms: 20
  transient_ms: 10
sweep:
  seed: 7
  replicates: 3
output:
  traces:
    every_ms: 0.5
    runs: {every: 5}
";

fn sweep() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let spec = mpr_sweep::spec::parse(SPEC).unwrap();
    for index in 0..2 {
        let opts = RunOptions {
            out: dir.path().to_path_buf(),
            shard: Shard { index, count: 2 },
            threads: 2,
            isa: Isa::detect(),
            resume: false,
            overwrite: false,
            quiet: true,
        };
        run(&spec, &opts).unwrap();
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("summary"))
            .unwrap()
            .count(),
        2
    );
    dir
}

/// Every summary row's (eta, J, delta, r_hz_final), read without the plot module.
fn rows(dir: &Path) -> Vec<[f64; 4]> {
    let t = Table::read_dir(dir, "summary");
    let (eta, j, delta) = (t.f64s("eta"), t.f64s("J"), t.f64s("delta"));
    let r = t.opt_f64s("r_hz_final");
    (0..t.rows)
        .map(|i| {
            let r = r[i].expect("no run of this sweep diverges");
            [eta[i], j[i], delta[i], r]
        })
        .collect()
}

/// r_hz_final per (eta, J) cell among the runs that `keep`.
fn cells(rows: &[[f64; 4]], keep: impl Fn(&[f64; 4]) -> bool) -> BTreeMap<(i64, i64), Vec<f64>> {
    let mut m: BTreeMap<(i64, i64), Vec<f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| keep(r)) {
        m.entry(((r[0] * 1000.0) as i64, (r[1] * 1000.0) as i64))
            .or_default()
            .push(r[3]);
    }
    m
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "IHDR is the first chunk");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!(be(8), 13, "IHDR length");
    assert_eq!(bytes[24], 8, "bit depth");
    assert_eq!(bytes[25], 2, "colour type RGB");
    (be(16), be(20))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn heatmap_grid_and_every_aggregate() {
    let dir = sweep();
    let reference = rows(dir.path());
    assert_eq!(reference.len(), 36);
    let expected = cells(&reference, |r| r[2] == 1.0);
    assert_eq!(expected.len(), 6);
    for agg in [
        Agg::Mean,
        Agg::Min,
        Agg::Max,
        Agg::Median,
        Agg::Count,
        Agg::Std,
    ] {
        let out = dir.path().join(format!("{}.png", agg.name()));
        let mut args = HeatmapArgs::new("eta", "J", "r_hz_final");
        args.filters = vec!["delta=1".into()];
        args.agg = agg;
        let s = plot::heatmap(dir.path(), &args, &out).unwrap();
        assert_eq!(s.x_values, [-6.0, -5.0, -4.0]);
        assert_eq!(s.y_values, [10.0, 15.0]);
        assert_eq!(s.values.len(), 6);
        assert_eq!(s.counts, [3; 6]);
        assert_eq!(s.rows, 18);
        for (&(x, y), vals) in &expected {
            let (x, y) = (x as f64 / 1000.0, y as f64 / 1000.0);
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            let mut sorted = vals.clone();
            sorted.sort_by(f64::total_cmp);
            let want = match agg {
                Agg::Mean => mean,
                Agg::Min => sorted[0],
                Agg::Max => sorted[2],
                Agg::Median => sorted[1],
                Agg::Count => 3.0,
                Agg::Std => {
                    (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                }
            };
            let got = s.value(x, y).unwrap();
            assert!(close(got, want), "{agg:?} at ({x}, {y}): {got} vs {want}");
            // Row-major layout: y rows, x columns.
            let (ix, iy) = (
                s.x_values.iter().position(|&v| v == x).unwrap(),
                s.y_values.iter().position(|&v| v == y).unwrap(),
            );
            assert_eq!(s.values[iy * 3 + ix].to_bits(), got.to_bits());
        }
        let lo = s.values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = s.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(s.range, (lo, hi));
        assert_eq!(png_size(&out), (1000, 800));
        assert!(s.title.contains("delta = 1"), "{}", s.title);
        assert!(s.title.starts_with("plot-test: "), "{}", s.title);
    }

    // Without the filter the other delta joins the cells: 2 x 3 runs each.
    let out = dir.path().join("all.png");
    let mut args = HeatmapArgs::new("eta", "J", "r_hz_final");
    args.agg = Agg::Max;
    let s = plot::heatmap(dir.path(), &args, &out).unwrap();
    assert_eq!(s.counts, [6; 6]);
    let all = cells(&reference, |_| true);
    for (&(x, y), vals) in &all {
        let want = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(s.value(x as f64 / 1000.0, y as f64 / 1000.0), Some(want));
    }
}

#[test]
fn filters_match_within_tolerance_and_combine() {
    let dir = sweep();
    let out = dir.path().join("f.png");
    let mut args = HeatmapArgs::new("eta", "J", "r_hz_mean");
    // 1e-10 relative matches; comma-separated and repeated filters are the same list.
    args.filters = vec!["delta = 1.0000000001".into(), "replicate=2".into()];
    let s = plot::heatmap(dir.path(), &args, &out).unwrap();
    assert_eq!(s.counts, [1; 6]);
    assert_eq!(s.rows, 6);
    assert!(
        s.title
            .ends_with("where delta = 1.0000000001, replicate = 2"),
        "{}",
        s.title
    );

    // A filter on the x column leaves one column of cells.
    args.filters = vec!["eta=-5".into()];
    let s = plot::heatmap(dir.path(), &args, &out).unwrap();
    assert_eq!(s.x_values, [-5.0]);
    assert_eq!(s.counts, [6, 6]);

    // Booleans plot as 0/1 and filter as true/false.
    let mut args = HeatmapArgs::new("eta", "J", "diverged");
    args.filters = vec!["diverged=false".into()];
    let s = plot::heatmap(dir.path(), &args, &out).unwrap();
    assert!(s.values.iter().all(|&v| v == 0.0));

    // fp_settled (text) filters by its value (with noise no run ends on a fixed point).
    let mut args = HeatmapArgs::new("eta", "J", "r_hz_final");
    args.filters = vec!["fp_settled=none".into()];
    let s = plot::heatmap(dir.path(), &args, &out).unwrap();
    assert_eq!(s.rows, 36);
}

#[test]
fn filter_errors_name_the_filter_and_list_values() {
    let dir = sweep();
    let out = dir.path().join("e.png");
    let err = |filters: &[&str]| {
        let mut args = HeatmapArgs::new("eta", "J", "r_hz_mean");
        args.filters = filters.iter().map(|f| f.to_string()).collect();
        let e = plot::heatmap(dir.path(), &args, &out).unwrap_err();
        assert!(e.is_usage(), "{e}");
        (e.to_string(), e)
    };
    let (msg, e) = err(&["delta=3"]);
    assert!(matches!(e, PlotError::NoMatch { .. }));
    assert_eq!(msg, "delta=3: no run matches; delta takes 0.5, 1");
    let (msg, _) = err(&["delta=1.00001"]);
    assert!(msg.starts_with("delta=1.00001: no run matches"), "{msg}");
    let (msg, _) = err(&["delta=1", "eta=-7"]);
    assert_eq!(
        msg,
        "eta=-7: no run matches among the runs with delta=1; eta takes -6, -5, -4"
    );
    let (msg, _) = err(&["fp_settled=middle"]);
    assert!(
        msg.starts_with("fp_settled=middle: no run matches; fp_settled takes "),
        "{msg}"
    );
    let (msg, e) = err(&["delta"]);
    assert!(matches!(e, PlotError::BadFilter { .. }));
    assert!(msg.starts_with("delta: expected COLUMN=VALUE"), "{msg}");
    let (msg, _) = err(&["delta=abc"]);
    assert!(msg.starts_with("delta=abc: delta takes a number"), "{msg}");
    let (msg, e) = err(&["gamma=1"]);
    assert!(matches!(e, PlotError::UnknownColumn { .. }));
    assert!(msg.starts_with("gamma: no such column"), "{msg}");
    assert!(!out.exists(), "nothing is written on error");
}

#[test]
fn column_errors() {
    let dir = sweep();
    let out = dir.path().join("e.png");
    let try_plot = |x: &str, y: &str, c: &str, agg: Agg| {
        let mut args = HeatmapArgs::new(x, y, c);
        args.agg = agg;
        plot::heatmap(dir.path(), &args, &out)
            .unwrap_err()
            .to_string()
    };
    let msg = try_plot("eta", "J2", "r_hz_mean", Agg::Mean);
    assert!(
        msg.starts_with("J2: no such column in the summary; available: run_id, "),
        "{msg}"
    );
    assert!(msg.contains(", eta, J, delta, "), "{msg}");
    let msg = try_plot("eta", "J", "r_hz", Agg::Mean);
    assert!(msg.starts_with("r_hz: no such column"), "{msg}");
    let msg = try_plot("eta", "J", "fp_settled", Agg::Mean);
    assert!(
        msg.starts_with("fp_settled: a text column cannot be --color"),
        "{msg}"
    );
    let msg = try_plot("eta", "eta", "r_hz_mean", Agg::Mean);
    assert_eq!(msg, "eta: given as both --x and --y");
    // std of one run per cell is undefined.
    let mut args = HeatmapArgs::new("eta", "J", "r_hz_mean");
    args.agg = Agg::Std;
    args.filters = vec!["delta=1".into(), "replicate=0".into()];
    let msg = plot::heatmap(dir.path(), &args, &out)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("r_hz_mean: --agg std needs at least 2 runs"),
        "{msg}"
    );
    // Output: PNG only, in an existing directory.
    let args = HeatmapArgs::new("eta", "J", "r_hz_mean");
    let svg = dir.path().join("map.svg");
    let msg = plot::heatmap(dir.path(), &args, &svg)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(&format!("{}: only PNG", svg.display())),
        "{msg}"
    );
    let nested = dir.path().join("no/such/map.png");
    let e = plot::heatmap(dir.path(), &args, &nested).unwrap_err();
    assert!(e.is_usage());
}

#[test]
fn not_a_result_directory() {
    let empty = tempfile::tempdir().unwrap();
    let out = empty.path().join("m.png");
    let args = HeatmapArgs::new("eta", "J", "r_hz_mean");
    for dir in [empty.path().to_path_buf(), empty.path().join("missing")] {
        let e = plot::heatmap(&dir, &args, &out).unwrap_err();
        assert!(matches!(e, PlotError::NotResultDir { .. }));
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: not an mpr-sweep result directory",
                dir.display()
            )),
            "{msg}"
        );
        assert_eq!(mpr_sweep::Error::from(e).exit_code(), 2);
    }
    std::fs::create_dir(empty.path().join("summary")).unwrap();
    let e = plot::heatmap(empty.path(), &args, &out).unwrap_err();
    assert!(
        e.to_string().ends_with("(no summary/part-*.parquet)"),
        "{e}"
    );
}

#[test]
fn png_is_written_atomically_at_the_asked_size() {
    let dir = sweep();
    let plots = tempfile::tempdir().unwrap();
    let out = plots.path().join("map.png");
    let mut args = HeatmapArgs::new("eta", "J", "r_hz_mean");
    args.width = 640;
    args.height = 480;
    plot::heatmap(dir.path(), &args, &out).unwrap();
    assert_eq!(png_size(&out), (640, 480));
    // Replaced in place; no temporary file is left.
    args.width = 801;
    plot::heatmap(dir.path(), &args, &out).unwrap();
    assert_eq!(png_size(&out), (801, 480));
    let names: Vec<_> = std::fs::read_dir(plots.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["map.png"]);
    // The image is not blank: the viridis cells and the text put many colours in it.
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.len() > 5000, "{} bytes", bytes.len());
}

#[test]
fn traces_of_chosen_runs() {
    let dir = sweep();
    let out = dir.path().join("traces.png");
    let args = TracesArgs {
        runs: vec![0, 35, 5, 0],
        width: 900,
        height: 700,
    };
    let s = plot::traces(dir.path(), &args, &out).unwrap();
    // Duplicates dropped, order kept; 20 ms every 0.5 ms plus the initial state.
    let ids: Vec<u64> = s.runs.iter().map(|r| r.0).collect();
    assert_eq!(ids, [0, 35, 5]);
    assert!(s.runs.iter().all(|r| r.1 == 41), "{:?}", s.runs);
    // Run 35 is the last point (eta -4, J 15, delta 1), replicate 2.
    assert_eq!(
        s.runs[1].2,
        "run 35: eta = -4, J = 15, delta = 1, replicate = 2"
    );
    assert_eq!(png_size(&out), (900, 700));

    let e = plot::traces(
        dir.path(),
        &TracesArgs {
            runs: vec![0, 1, 2],
            ..args.clone()
        },
        &out,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "runs 1, 2: not traced: the spec traces every 5th run (0, 5, 10, ...)"
    );
    assert_eq!(mpr_sweep::Error::from(e).exit_code(), 2);
    let e = plot::traces(
        dir.path(),
        &TracesArgs {
            runs: vec![36],
            ..args.clone()
        },
        &out,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "run 36: no such run (the sweep has 36 runs, ids 0 to 35)"
    );
    let e = plot::traces(
        dir.path(),
        &TracesArgs {
            runs: vec![],
            ..args.clone()
        },
        &out,
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("--traces: "), "{e}");
    // A traced run whose shard's part is gone.
    std::fs::remove_file(dir.path().join("traces/part-00001-of-00002.parquet")).unwrap();
    let e = plot::traces(
        dir.path(),
        &TracesArgs {
            runs: vec![35],
            ..args
        },
        &out,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "run 35: not traced: no rows for it in traces/ (is its shard's part missing?)"
    );
}

#[test]
fn command_line_entry() {
    let dir = sweep();
    let out = dir.path().join("cli.png");
    let plot = |extra: &[&str]| {
        mpr_sweep()
            .arg("plot")
            .arg(dir.path())
            .arg("-o")
            .arg(&out)
            .args(["--width", "500", "--height", "400"])
            .args(extra)
            .output()
    };
    let heatmap = [
        "--x",
        "eta",
        "--y",
        "J",
        "--where",
        "delta=0.5",
        "--agg",
        "median",
    ];
    let ok = plot(&[&heatmap[..], &["--color", "r_hz_final"]].concat());
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(png_size(&out), (500, 400));
    let bad = plot(&[&heatmap[..], &["--color", "nope"]].concat());
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("mpr-sweep: error: nope: no such column"),
        "{stderr}"
    );
    let traced = plot(&["--traces", "10"]);
    assert!(traced.status.success(), "{traced:?}");
}

//! The accuracy table of docs/dt.md: W1 (eta linspace(-10, 0, 64) x J linspace(0, 30, 64) x
//! delta [0.5, 1, 2, 4], r0 = 100 Hz, v0 = -2, 100 ms) with every method at several steps,
//! the final r and v of every run against rk4 at dt = 0.00025 ms (itself checked against
//! rk4 at 0.0005 ms), and the wall time of each `mpr-sweep run` of the release binary.
//!
//!     cargo bench --bench accuracy                     # the whole table, ~3e10 run-steps
//!     cargo bench --bench accuracy -- --grid 16        # a 16 x 16 eta x J grid instead
//!     cargo bench --bench accuracy -- --threads 2 --methods rk4,dopri5
//!
//! A run is "off" when its final r or v differs from the reference by more than 1e-6
//! relative (a diverged run is off); the worst error is the largest of those relative
//! differences over the runs. The table goes to stdout and to target/accuracy/table.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const BINARY: &str = env!("CARGO_BIN_EXE_mpr-sweep");

/// The steps (ms) tried per method.
const STEPS: [(&str, &[f64]); 6] = [
    ("exp_euler", &[0.01, 0.0025, 0.001, 0.0005]),
    ("euler", &[0.005, 0.0025, 0.001, 0.0005]),
    ("heun", &[0.01, 0.005, 0.0025, 0.001]),
    ("rk2", &[0.01, 0.005, 0.0025, 0.001]),
    ("rk4", &[0.01, 0.005, 0.0025, 0.00125]),
    ("dopri5", &[0.02, 0.01, 0.005, 0.0025]),
];

const REFERENCE_DT: f64 = 0.00025;

/// Final states of one sweep, by run id: `(r_hz, v)`, NaN when diverged; plus the count of
/// runs with `dt_stable = false`.
struct Finals {
    states: Vec<(f64, f64)>,
    unstable: usize,
    seconds: f64,
}

fn spec_text(grid: usize, method: &str, dt: f64) -> String {
    format!(
        "model:\n  eta: {{linspace: [-10, 0, {grid}]}}\n  J: {{linspace: [0, 30, {grid}]}}\n  \
         delta: [0.5, 1, 2, 4]\ninit: {{r_hz: 100, v: -2}}\n\
         simulation: {{method: {method}, dt_ms: {dt}, duration_ms: 100}}\n"
    )
}

fn run(work: &Path, grid: usize, threads: usize, method: &str, dt: f64) -> Finals {
    let spec = work.join(format!("{method}-{dt}.yaml"));
    fs::write(&spec, spec_text(grid, method, dt)).expect("write the spec");
    let out = work.join(format!("{method}-{dt}"));
    let start = Instant::now();
    let status = Command::new(BINARY)
        .args([
            "run",
            "--quiet",
            "--overwrite",
            "--threads",
            &threads.to_string(),
        ])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run mpr-sweep");
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        status.status.success(),
        "mpr-sweep run {method} {dt}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (states, unstable) = read_finals(&out.join("summary"));
    Finals {
        states,
        unstable,
        seconds,
    }
}

fn read_finals(dir: &Path) -> (Vec<(f64, f64)>, usize) {
    let mut rows: Vec<(u64, f64, f64, bool)> = Vec::new();
    let mut parts: Vec<PathBuf> = fs::read_dir(dir)
        .expect("summary directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    for part in parts {
        let file = fs::File::open(&part).expect("open part");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("Parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let col = |name: &str| batch.column_by_name(name).expect(name).clone();
            let ids = col("run_id");
            let ids = ids.as_primitive::<UInt64Type>();
            let r = col("r_hz_final");
            let r = r.as_primitive::<Float64Type>();
            let v = col("v_final");
            let v = v.as_primitive::<Float64Type>();
            let stable = col("dt_stable");
            let stable = stable.as_boolean();
            for i in 0..batch.num_rows() {
                let get = |a: &arrow_array::PrimitiveArray<Float64Type>| {
                    if a.is_null(i) { f64::NAN } else { a.value(i) }
                };
                rows.push((
                    ids.value(i),
                    get(r),
                    get(v),
                    !stable.is_null(i) && !stable.value(i),
                ));
            }
        }
    }
    rows.sort_by_key(|x| x.0);
    let unstable = rows.iter().filter(|x| x.3).count();
    (rows.into_iter().map(|x| (x.1, x.2)).collect(), unstable)
}

/// (fraction of runs off by more than 1e-6 relative, worst relative error).
fn compare(got: &[(f64, f64)], reference: &[(f64, f64)]) -> (f64, f64) {
    assert_eq!(got.len(), reference.len());
    let mut off = 0;
    let mut worst = 0.0f64;
    for (g, w) in got.iter().zip(reference) {
        let err = ((g.0 - w.0) / w.0).abs().max(((g.1 - w.1) / w.1).abs());
        // NaN (a diverged run) counts as off and as the worst.
        let err = if err.is_nan() { f64::INFINITY } else { err };
        if err > 1e-6 {
            off += 1;
        }
        worst = worst.max(err);
    }
    (off as f64 / got.len() as f64, worst)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut grid = 64;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut methods: Vec<String> = STEPS.iter().map(|(m, _)| m.to_string()).collect();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--grid" => grid = value().parse().expect("--grid N"),
            "--threads" => threads = value().parse().expect("--threads N"),
            "--methods" => methods = value().split(',').map(String::from).collect(),
            // cargo bench passes --bench to harness-less benchmarks.
            "--bench" => {}
            other => panic!("unknown option {other}; expected --grid, --threads, --methods"),
        }
    }
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/accuracy");
    fs::create_dir_all(&work).expect("target/accuracy");
    let runs = grid * grid * 4;
    eprintln!("W1 with a {grid} x {grid} eta x J grid: {runs} runs per sweep, {threads} threads");

    let reference = run(&work, grid, threads, "rk4", REFERENCE_DT);
    let check = run(&work, grid, threads, "rk4", 2.0 * REFERENCE_DT);
    let (_, ref_err) = compare(&check.states, &reference.states);
    let mut table = format!(
        "W1 ({grid} x {grid} x 4 = {runs} runs, 100 ms): final r and v against rk4 at dt = \
         {REFERENCE_DT} ms ({:.1} s; rk4 at {} ms is within {ref_err:.1e} of it), \
         {threads} threads\n\n\
         | method | dt (ms) | steps | runs off by > 1e-6 (relative) | worst relative error | dt_stable = false | time (s) |\n\
         |---|--:|--:|--:|--:|--:|--:|\n",
        reference.seconds,
        2.0 * REFERENCE_DT
    );
    for (method, dts) in STEPS.iter().filter(|(m, _)| methods.iter().any(|x| x == m)) {
        for &dt in *dts {
            let f = run(&work, grid, threads, method, dt);
            let (off, worst) = compare(&f.states, &reference.states);
            let line = format!(
                "| {method} | {dt} | {} | {:.1} % | {worst:.1e} | {} | {:.2} |\n",
                (100.0 / dt).round(),
                100.0 * off,
                f.unstable,
                f.seconds
            );
            eprint!("{line}");
            table += &line;
        }
    }
    print!("{table}");
    fs::write(work.join("table.md"), &table).expect("write table.md");
}

//! The accuracy table of docs/dt.md: W1 (eta linspace(-10, 0, 64) x J linspace(0, 30, 64) x
//! delta [0.5, 1, 2, 4], r0 = 100 Hz, v0 = -2, 100 ms) with every method at several steps,
//! the final r and v of every run against rk4 at dt = 0.00025 ms (itself checked against
//! rk4 at 0.0005 ms), and the wall time of each `mpr-sweep run` of the release binary.
//!
//!     cargo bench --bench accuracy                     # the whole table, ~3e10 run-steps
//!     cargo bench --bench accuracy -- --grid 16        # a 16 x 16 eta x J grid instead
//!     cargo bench --bench accuracy -- --threads 2 --methods rk4,dopri5
//!     cargo bench --bench accuracy -- --methods adaptive      # the adaptive rows only
//!
//! The `adaptive` rows run `method: dopri5` and `method: dop853` with `simulation.adaptive`
//! at each tolerance of [`RTOLS`] (atol at their defaults) and add the accepted and rejected steps per run
//! (median, max) and the wall time per accepted step per core. The lane utilisation of the
//! adaptive kernel (which refills lanes from a queue of runs) is measured by
//! `cargo bench --bench adaptive`, which sees the kernel's iterations.
//!
//! Errors are scaled as in the reference tests, `|x - x_ref| / max(1, |x_ref|)`: relative
//! for r (Hz, above 1 here), absolute for v while |v| < 1 (a run still ringing at 100 ms
//! can end with v near 0, where a relative error says nothing). A run is "off" when the
//! scaled error of its final r or v exceeds 1e-6 (a diverged run is off); the worst error is
//! the largest over the runs. The table goes to stdout and to target/accuracy/table.md.

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

/// The tolerances of the adaptive rows.
const RTOLS: [f64; 3] = [1e-6, 1e-8, 1e-10];

/// Final states of one sweep, by run id: `(r_hz, v)`, NaN when diverged; plus the count of
/// runs with `dt_stable = false`.
struct Finals {
    states: Vec<(f64, f64)>,
    unstable: usize,
    seconds: f64,
    /// Accepted and rejected steps per run, for adaptive sweeps.
    steps: Vec<(u64, u64)>,
}

/// The sweep with `method` at step `dt`, or with `method` (dopri5 or dop853) and adaptive
/// steps at tolerance `rtol`.
enum Stepping<'a> {
    Fixed(&'a str, f64),
    Adaptive(&'a str, f64),
}

impl Stepping<'_> {
    fn name(&self) -> String {
        match self {
            Stepping::Fixed(method, dt) => format!("{method}-{dt}"),
            Stepping::Adaptive(method, rtol) => format!("adaptive-{method}-{rtol}"),
        }
    }

    fn simulation(&self) -> String {
        match self {
            Stepping::Fixed(method, dt) => format!("method: {method}, dt_ms: {dt}"),
            Stepping::Adaptive(method, rtol) => {
                format!("method: {method}, adaptive: {{rtol: {rtol}}}")
            }
        }
    }
}

fn spec_text(grid: usize, stepping: &Stepping) -> String {
    format!(
        "model:\n  eta: {{linspace: [-10, 0, {grid}]}}\n  J: {{linspace: [0, 30, {grid}]}}\n  \
         delta: [0.5, 1, 2, 4]\ninit: {{r_hz: 100, v: -2}}\n\
         simulation: {{{}, duration_ms: 100}}\n",
        stepping.simulation()
    )
}

fn run(work: &Path, grid: usize, threads: usize, stepping: &Stepping) -> Finals {
    let name = stepping.name();
    let spec = work.join(format!("{name}.yaml"));
    fs::write(&spec, spec_text(grid, stepping)).expect("write the spec");
    let out = work.join(&name);
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
        "mpr-sweep run {name}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    Finals {
        seconds,
        ..read_finals(&out.join("summary"))
    }
}

/// Row of a run: id, final r and v, `dt_stable = false`, and the step counts when present.
type Row = (u64, f64, f64, bool, Option<(u64, u64)>);

/// The finals of the summary parts in `dir` (`seconds` left at 0).
fn read_finals(dir: &Path) -> Finals {
    let mut rows: Vec<Row> = Vec::new();
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
            let counts = batch
                .column_by_name("steps")
                .zip(batch.column_by_name("rejected_steps"));
            for i in 0..batch.num_rows() {
                let get = |a: &arrow_array::PrimitiveArray<Float64Type>| {
                    if a.is_null(i) { f64::NAN } else { a.value(i) }
                };
                let steps = counts.map(|(s, j)| {
                    (
                        s.as_primitive::<UInt64Type>().value(i),
                        j.as_primitive::<UInt64Type>().value(i),
                    )
                });
                rows.push((
                    ids.value(i),
                    get(r),
                    get(v),
                    !stable.is_null(i) && !stable.value(i),
                    steps,
                ));
            }
        }
    }
    rows.sort_by_key(|x| x.0);
    let unstable = rows.iter().filter(|x| x.3).count();
    let steps = rows.iter().filter_map(|x| x.4).collect();
    Finals {
        states: rows.into_iter().map(|x| (x.1, x.2)).collect(),
        unstable,
        seconds: 0.0,
        steps,
    }
}

/// `(median, max)` of `xs`.
fn median_max(mut xs: Vec<u64>) -> (u64, u64) {
    xs.sort_unstable();
    (xs[xs.len() / 2], *xs.last().expect("runs"))
}

/// (fraction of runs off by more than 1e-6, worst scaled error); the worst run goes to
/// stderr.
fn compare(got: &[(f64, f64)], reference: &[(f64, f64)]) -> (f64, f64) {
    assert_eq!(got.len(), reference.len());
    let mut off = 0;
    let mut worst = 0.0f64;
    let mut worst_run = 0;
    for (i, (g, w)) in got.iter().zip(reference).enumerate() {
        let scaled = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
        let err = scaled(g.0, w.0).max(scaled(g.1, w.1));
        // NaN (a diverged run) counts as off and as the worst.
        let err = if err.is_nan() { f64::INFINITY } else { err };
        if err > 1e-6 {
            off += 1;
        }
        if err > worst {
            (worst, worst_run) = (err, i);
        }
    }
    eprintln!(
        "  worst: run {worst_run}: (r_hz, v) = {:?}, reference {:?}",
        got[worst_run], reference[worst_run]
    );
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

    let reference = run(&work, grid, threads, &Stepping::Fixed("rk4", REFERENCE_DT));
    let check = run(
        &work,
        grid,
        threads,
        &Stepping::Fixed("rk4", 2.0 * REFERENCE_DT),
    );
    let (_, ref_err) = compare(&check.states, &reference.states);
    let mut table = format!(
        "W1 ({grid} x {grid} x 4 = {runs} runs, 100 ms): final r and v against rk4 at dt = \
         {REFERENCE_DT} ms ({:.1} s; rk4 at {} ms is within {ref_err:.1e} of it); errors \
         |x - x_ref|/max(1, |x_ref|), {threads} threads\n\n\
         | method | dt (ms) | steps | runs off by > 1e-6 | worst error | dt_stable = false | time (s) |\n\
         |---|--:|--:|--:|--:|--:|--:|\n",
        reference.seconds,
        2.0 * REFERENCE_DT
    );
    for (method, dts) in STEPS.iter().filter(|(m, _)| methods.iter().any(|x| x == m)) {
        for &dt in *dts {
            let f = run(&work, grid, threads, &Stepping::Fixed(method, dt));
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
    if methods.iter().any(|m| m == "adaptive") {
        table += "\n| adaptive method | rtol | accepted steps per run (median, max) | rejected (median, max) | runs off by > 1e-6 | worst relative error | time (s) | ns per accepted step per core |\n\
                  |---|--:|--:|--:|--:|--:|--:|--:|\n";
        for (method, rtol) in ["dopri5", "dop853"]
            .into_iter()
            .flat_map(|m| RTOLS.map(|rtol| (m, rtol)))
        {
            let f = run(&work, grid, threads, &Stepping::Adaptive(method, rtol));
            let (off, worst) = compare(&f.states, &reference.states);
            let accepted = median_max(f.steps.iter().map(|s| s.0).collect());
            let rejected = median_max(f.steps.iter().map(|s| s.1).collect());
            let total: u64 = f.steps.iter().map(|s| s.0).sum();
            let line = format!(
                "| {method} | {rtol:e} | {}, {} | {}, {} | {:.1} % | {worst:.1e} | {:.2} | {:.0} |\n",
                accepted.0,
                accepted.1,
                rejected.0,
                rejected.1,
                100.0 * off,
                f.seconds,
                f.seconds * threads as f64 * 1e9 / total as f64
            );
            eprint!("{line}");
            table += &line;
        }
    }
    print!("{table}");
    fs::write(work.join("table.md"), &table).expect("write table.md");
}

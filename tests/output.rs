//! End-to-end tests of the Parquet output (DESIGN.md section 6) and of reproducibility
//! (section 4), through the library API: `run::run` writes a result directory, and the
//! tests read it back with the parquet crate's Arrow reader.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use arrow_schema::DataType;
use parquet::basic::Compression;
use sha2::{Digest, Sha256};

use mpr_sweep::integrate::Isa;
use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::run::{Destination, RunOptions, RunReport, run};
use mpr_sweep::spec;

use common::closed_forms::fixed_points;
use common::table::{Col, Table, assert_tables_bitwise_equal};

const STATS: [&str; 10] = [
    "r_hz_mean",
    "r_hz_std",
    "r_hz_min",
    "r_hz_max",
    "r_hz_final",
    "v_mean",
    "v_std",
    "v_min",
    "v_max",
    "v_final",
];

/// The analytic stable states, last in the summary, in this order.
const FP_COLUMNS: [&str; 6] = [
    "fp_count",
    "fp_r_hz_low",
    "fp_r_hz_high",
    "fp_v_low",
    "fp_v_high",
    "fp_settled",
];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A result directory in a temporary directory that lives as long as this value.
struct Out {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Out {
    fn new() -> Out {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        Out { _tmp: tmp, dir }
    }

    fn summary_path(&self, shard: Shard) -> PathBuf {
        self.dir.join("summary").join(part_name(shard))
    }

    fn traces_path(&self, shard: Shard) -> PathBuf {
        self.dir.join("traces").join(part_name(shard))
    }

    fn summary(&self, shard: Shard) -> Table {
        Table::read(&self.summary_path(shard))
    }

    fn traces(&self, shard: Shard) -> Table {
        Table::read(&self.traces_path(shard))
    }
}

fn part_name(shard: Shard) -> String {
    format!("part-{:05}-of-{:05}.parquet", shard.index, shard.count)
}

fn shard(index: u64, count: u64) -> Shard {
    Shard { index, count }
}

/// Runs one shard of `text` into `out` and returns the report.
fn run_into(out: &Out, text: &str, shard: Shard, threads: usize, isa: Isa) -> RunReport {
    let spec = spec::parse(text).unwrap_or_else(|e| panic!("spec does not parse: {e}\n{text}"));
    let opts = RunOptions {
        out: Destination::Dir(out.dir.clone()),
        shard,
        threads,
        isa,
        resume: false,
        overwrite: false,
        quiet: true,
    };
    run(&spec, &opts).unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Runs the whole sweep (one shard) in a fresh directory.
fn run_whole(text: &str, threads: usize, isa: Isa) -> (Out, Table) {
    let out = Out::new();
    run_into(&out, text, Shard::WHOLE, threads, isa);
    let t = out.summary(Shard::WHOLE);
    (out, t)
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Standard base64 (with padding), enough to open the `ARROW:schema` footer entry.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * a.abs().max(b.abs())
}

/// One deterministic run (no noise, fixed initial state) at a stable point of the paper's
/// default parameters.
const WELL_CONDITIONED: &str = "\
model: {eta: -5, J: 15, delta: 1}
init: {r_hz: 100, v: -2}
simulation: {dt_ms: 0.01, duration_ms: 5, transient_ms: 1}
";

// ---------------------------------------------------------------------------------------
// 1. Summary schema and parameter values
// ---------------------------------------------------------------------------------------

const SCHEMA_SPEC: &str = "\
name: schema-test
model:
  eta: [-6, -5.5, -4.25]
  J: [10, 15]
init:
  r_hz: {uniform: [0, 1]}
  v: -2
noise:
  v: {white: {sigma: 0.125}}
simulation: {dt_ms: 0.01, duration_ms: 1}
sweep: {seed: 11, replicates: 2}
";

#[test]
fn summary_schema_is_exact() {
    let (_out, t) = run_whole(SCHEMA_SPEC, 2, Isa::Portable);
    let expected: Vec<(&str, DataType)> = [
        ("run_id", DataType::UInt64),
        ("point_id", DataType::UInt64),
        ("replicate", DataType::UInt32),
        ("tau_ms", DataType::Float64),
        ("eta", DataType::Float64),
        ("J", DataType::Float64),
        ("delta", DataType::Float64),
        ("input_r_hz", DataType::Float64),
        ("input_v", DataType::Float64),
        ("noise_v_sigma", DataType::Float64),
        ("dt_ms", DataType::Float64),
        ("init_r_hz", DataType::Float64),
        ("init_v", DataType::Float64),
    ]
    .into_iter()
    .chain(STATS.iter().map(|&s| (s, DataType::Float64)))
    .chain([
        ("diverged", DataType::Boolean),
        ("diverged_at_ms", DataType::Float64),
        ("fp_count", DataType::UInt8),
        ("fp_r_hz_low", DataType::Float64),
        ("fp_r_hz_high", DataType::Float64),
        ("fp_v_low", DataType::Float64),
        ("fp_v_high", DataType::Float64),
        ("fp_settled", DataType::Utf8),
        ("dt_stable", DataType::Boolean),
        ("dt_stable_max_ms", DataType::Float64),
    ])
    .collect();
    let got: Vec<(&str, DataType)> = t
        .fields
        .iter()
        .map(|(n, ty, _)| (n.as_str(), ty.clone()))
        .collect();
    assert_eq!(got, expected);
    for (name, _, nullable) in &t.fields {
        if STATS.contains(&name.as_str())
            || name == "diverged_at_ms"
            || FP_COLUMNS.contains(&name.as_str())
            || name.starts_with("dt_stable")
        {
            assert!(*nullable, "{name} must be nullable");
        }
        if ["run_id", "point_id", "replicate", "diverged"].contains(&name.as_str()) {
            assert!(!*nullable, "{name} must not be nullable");
        }
    }
    assert_eq!(t.rows, 12);
    assert_eq!(t.row_groups, 1, "12 rows belong in one row group");
}

#[test]
fn summary_parameter_columns_follow_the_grid() {
    let (_out, t) = run_whole(SCHEMA_SPEC, 1, Isa::Portable);
    let etas: [f64; 3] = [-6.0, -5.5, -4.25];
    let js: [f64; 2] = [10.0, 15.0];
    let replicates = 2u64;
    let n = etas.len() * js.len() * replicates as usize;
    assert_eq!(t.rows, n);
    let run_id = t.u64s("run_id");
    let point_id = t.u64s("point_id");
    let replicate = t.u32s("replicate");
    let eta = t.f64s("eta");
    let j = t.f64s("J");
    for i in 0..n {
        let (p, r) = (point_id[i], replicate[i] as u64);
        assert_eq!(run_id[i], i as u64, "rows are in run id order");
        assert_eq!(
            run_id[i],
            p * replicates + r,
            "run_id = point_id * replicates + replicate"
        );
        assert_eq!(p, i as u64 / replicates);
        assert!(r < replicates);
        // eta is the first axis in the spec: it varies slowest.
        let want_eta = etas[(p as usize) / js.len()];
        let want_j = js[(p as usize) % js.len()];
        assert_eq!(eta[i].to_bits(), want_eta.to_bits(), "eta of run {i}");
        assert_eq!(j[i].to_bits(), want_j.to_bits(), "J of run {i}");
    }
    let fixed: [(&str, f64); 7] = [
        ("tau_ms", 1.0),
        ("delta", 1.0),
        ("input_r_hz", 0.0),
        ("input_v", 0.0),
        ("noise_v_sigma", 0.125),
        ("dt_ms", 0.01),
        ("init_v", -2.0),
    ];
    for (name, want) in fixed {
        for (i, x) in t.f64s(name).into_iter().enumerate() {
            assert_eq!(x.to_bits(), want.to_bits(), "{name} of run {i}: {x}");
        }
    }
    // init_r_hz holds the drawn values: inside [0, 1), all different.
    let r0 = t.f64s("init_r_hz");
    for (i, &x) in r0.iter().enumerate() {
        assert!((0.0..1.0).contains(&x), "init_r_hz of run {i}: {x}");
        for &y in &r0[..i] {
            assert_ne!(x.to_bits(), y.to_bits(), "two runs drew the same init_r_hz");
        }
    }
    // Healthy runs: statistics present, not diverged; constant inputs and white noise:
    // the analytic states are reported.
    assert!(t.bools("diverged").iter().all(|d| !d));
    assert!(
        t.opt_u8s("fp_count")
            .iter()
            .all(|c| c.is_some_and(|c| c >= 1))
    );
    assert!(t.opt_f64s("fp_r_hz_low").iter().all(Option::is_some));
    assert!(t.opt_strs("fp_settled").iter().all(Option::is_some));
    assert!(t.opt_f64s("diverged_at_ms").iter().all(Option::is_none));
    for s in STATS {
        assert!(t.f64s(s).iter().all(|x| x.is_finite()), "{s}");
    }
}

#[test]
fn trace_schema_is_exact() {
    let text =
        "simulation: {dt_ms: 0.01, duration_ms: 1}\noutput: {traces: {every_ms: 0.5, runs: all}}\n";
    let out = Out::new();
    run_into(&out, text, Shard::WHOLE, 1, Isa::Portable);
    let t = out.traces(Shard::WHOLE);
    let got: Vec<(&str, DataType)> = t
        .fields
        .iter()
        .map(|(n, ty, _)| (n.as_str(), ty.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("run_id", DataType::UInt64),
            ("t_ms", DataType::Float64),
            ("r_hz", DataType::Float64),
            ("v", DataType::Float64),
        ]
    );
    assert_eq!(t.u64s("run_id"), vec![0, 0, 0]);
    assert_eq!(t.f64s("t_ms"), vec![0.0, 0.5, 1.0]);
}

// ---------------------------------------------------------------------------------------
// 2. Metadata and compression
// ---------------------------------------------------------------------------------------

fn check_metadata(
    meta: &HashMap<String, String>,
    text: &str,
    shard: &str,
    runs: &str,
    isa: &str,
    what: &str,
) {
    let get = |k: &str| {
        meta.get(k)
            .unwrap_or_else(|| panic!("{what}: no {k} in {:?}", meta.keys().collect::<Vec<_>>()))
            .as_str()
    };
    assert_eq!(
        get("mpr_sweep.version"),
        env!("CARGO_PKG_VERSION"),
        "{what}"
    );
    assert_eq!(get("mpr_sweep.spec"), text, "{what}");
    let sha = get("mpr_sweep.spec_sha256");
    assert_eq!(sha.len(), 64, "{what}: {sha}");
    assert!(
        sha.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{what}: {sha}"
    );
    assert_eq!(sha, hex_sha256(text), "{what}");
    assert_eq!(get("mpr_sweep.shard"), shard, "{what}");
    assert_eq!(get("mpr_sweep.runs"), runs, "{what}");
    assert_eq!(get("mpr_sweep.isa"), isa, "{what}");
}

/// The `ARROW:schema` footer entry (what pyarrow's `schema.metadata` shows) carries the
/// pairs itself, not only the footer: the reader merges both, so look inside it.
fn check_embedded_arrow_schema(t: &Table, text: &str, what: &str) {
    let encoded = t
        .file_meta
        .get("ARROW:schema")
        .unwrap_or_else(|| panic!("{what}: no ARROW:schema entry"));
    let ipc = base64_decode(encoded);
    for needle in [
        "mpr_sweep.version",
        "mpr_sweep.spec",
        "mpr_sweep.spec_sha256",
        "mpr_sweep.shard",
        "mpr_sweep.runs",
        "mpr_sweep.isa",
        &hex_sha256(text),
        text,
    ] {
        assert!(
            contains(&ipc, needle.as_bytes()),
            "{what}: the embedded Arrow schema lacks {needle:?}"
        );
    }
}

#[test]
fn parts_carry_metadata_and_are_zstd_compressed() {
    let text = "\
name: metadata-test (Montbrió–Pazó–Roxin)
model:
  eta: {linspace: [-6, -4, 5]}
init: {r_hz: 1.0, v: -2.0}
simulation: {dt_ms: 0.01, duration_ms: 0.5}
sweep: {replicates: 2}
output: {traces: {every_ms: 0.1, runs: all}}
";
    let out = Out::new();
    // 10 runs in 3 shards: [0, 3), [3, 6), [6, 10).
    for (i, runs) in [(0, "0..3"), (1, "3..6"), (2, "6..10")] {
        let s = shard(i, 3);
        let report = run_into(&out, text, s, 1, Isa::Portable);
        let (lo, hi) = runs.split_once("..").unwrap();
        assert_eq!(report.runs, lo.parse().unwrap()..hi.parse().unwrap());
        let shard_text = format!("{i}/3");
        for (t, kind) in [(out.summary(s), "summary"), (out.traces(s), "traces")] {
            let what = format!("{kind} part {shard_text}");
            check_metadata(
                &t.file_meta,
                text,
                &shard_text,
                runs,
                "portable",
                &format!("{what} file"),
            );
            check_metadata(
                &t.arrow_meta,
                text,
                &shard_text,
                runs,
                "portable",
                &format!("{what} schema"),
            );
            check_embedded_arrow_schema(&t, text, &what);
            assert!(!t.compressions.is_empty());
            for c in &t.compressions {
                assert!(
                    matches!(c, Compression::ZSTD(_)),
                    "{what}: column chunk compressed with {c:?}"
                );
            }
            let ids = t.u64s("run_id");
            assert!(
                ids.iter().all(|&id| report.runs.contains(&id)),
                "{what}: run ids {ids:?} outside {runs}"
            );
        }
        assert_eq!(
            out.summary(s).u64s("run_id"),
            report.runs.clone().collect::<Vec<_>>()
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.dir.join("spec.yaml")).unwrap(),
        text
    );
}

// ---------------------------------------------------------------------------------------
// 3. Traces
// ---------------------------------------------------------------------------------------

const TRACE_SPEC_HEAD: &str = "\
model:
  eta: [-5, -4]
  J: [10, 15]
init:
  r_hz: {uniform: [0, 50]}
  v: {normal: [-2, 0.5]}
simulation: {dt_ms: 0.01, duration_ms: 2}
sweep: {seed: 3, replicates: 2}
";

/// Trace rows of one run: (t, r, v).
fn trace_of(t: &Table, run: u64) -> Vec<(f64, f64, f64)> {
    let ids = t.u64s("run_id");
    let (ts, rs, vs) = (t.f64s("t_ms"), t.f64s("r_hz"), t.f64s("v"));
    (0..t.rows)
        .filter(|&i| ids[i] == run)
        .map(|i| (ts[i], rs[i], vs[i]))
        .collect()
}

fn distinct_ids(t: &Table) -> Vec<u64> {
    let mut ids = t.u64s("run_id");
    ids.dedup();
    ids
}

#[test]
fn traces_every_k_runs_have_the_expected_rows() {
    let text =
        format!("{TRACE_SPEC_HEAD}output: {{traces: {{every_ms: 0.1, runs: {{every: 3}}}}}}\n");
    let out = Out::new();
    run_into(&out, &text, Shard::WHOLE, 2, Isa::Portable);
    let s = out.summary(Shard::WHOLE);
    let t = out.traces(Shard::WHOLE);
    assert_eq!(s.rows, 8);
    // Rows grouped by run (ascending), each run's rows in time order.
    assert_eq!(distinct_ids(&t), vec![0, 3, 6]);
    assert_eq!(t.rows, 3 * 21);
    let ids = s.u64s("run_id");
    let (r0, v0) = (s.f64s("init_r_hz"), s.f64s("init_v"));
    let (rf, vf) = (s.f64s("r_hz_final"), s.f64s("v_final"));
    for run in [0u64, 3, 6] {
        let row = ids.iter().position(|&id| id == run).unwrap();
        let tr = trace_of(&t, run);
        assert_eq!(tr.len(), 21, "run {run}");
        for (i, &(tm, r, v)) in tr.iter().enumerate() {
            assert!(
                (tm - i as f64 * 0.1).abs() <= 1e-12,
                "run {run} row {i}: t = {tm}"
            );
            assert!(r.is_finite() && v.is_finite());
        }
        // The first row is the initial state (exactness is checked separately below).
        let (_, r_first, v_first) = tr[0];
        assert!(
            rel_close(r_first, r0[row], 1e-15),
            "run {run}: {r_first} vs {}",
            r0[row]
        );
        assert!(
            rel_close(v_first, v0[row], 1e-15),
            "run {run}: {v_first} vs {}",
            v0[row]
        );
        let (_, r_last, v_last) = tr[20];
        assert_eq!(
            (r_last.to_bits(), v_last.to_bits()),
            (rf[row].to_bits(), vf[row].to_bits()),
            "run {run}: last trace row ({r_last}, {v_last}) vs final ({}, {})",
            rf[row],
            vf[row]
        );
    }
}

/// DESIGN.md section 6: "the first row of a run is its initial state at t = 0", and the
/// summary's `init_r_hz` holds the drawn initial value: both must be the same number.
#[test]
fn first_trace_row_is_exactly_the_initial_state() {
    let text = format!("{TRACE_SPEC_HEAD}output: {{traces: {{every_ms: 1, runs: all}}}}\n");
    let out = Out::new();
    run_into(&out, &text, Shard::WHOLE, 1, Isa::Portable);
    let s = out.summary(Shard::WHOLE);
    let t = out.traces(Shard::WHOLE);
    let (r0, v0) = (s.f64s("init_r_hz"), s.f64s("init_v"));
    let mut mismatches = Vec::new();
    for run in 0..s.rows {
        let (tm, r, v) = trace_of(&t, run as u64)[0];
        assert_eq!(tm, 0.0);
        if (r.to_bits(), v.to_bits()) != (r0[run].to_bits(), v0[run].to_bits()) {
            mismatches.push(format!(
                "run {run}: trace ({r:?}, {v:?}) vs summary init ({:?}, {:?})",
                r0[run], v0[run]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "t = 0 trace rows differ from init_r_hz/init_v:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn traces_of_listed_run_ids_only() {
    let text =
        format!("{TRACE_SPEC_HEAD}output: {{traces: {{every_ms: 0.5, runs: {{ids: [4, 1]}}}}}}\n");
    let out = Out::new();
    run_into(&out, &text, Shard::WHOLE, 1, Isa::Portable);
    let t = out.traces(Shard::WHOLE);
    assert_eq!(distinct_ids(&t), vec![1, 4]);
    assert_eq!(t.rows, 2 * 5);
    for run in [1, 4] {
        let ts: Vec<f64> = trace_of(&t, run).iter().map(|x| x.0).collect();
        assert_eq!(ts, vec![0.0, 0.5, 1.0, 1.5, 2.0], "run {run}");
    }
    // A shard holding none of the listed runs (shard 3/4 holds runs 6 and 7) writes an
    // empty but valid trace part.
    let out = Out::new();
    let report = run_into(&out, &text, shard(3, 4), 1, Isa::Portable);
    assert_eq!(report.runs, 6..8);
    let t = out.traces(shard(3, 4));
    assert_eq!(t.rows, 0);
    assert_eq!(t.fields.len(), 4);
}

// ---------------------------------------------------------------------------------------
// 4. Divergence
// ---------------------------------------------------------------------------------------

const DIVERGING_SPEC: &str = "\
model: {eta: -5, J: 15, delta: 1}
init:
  r_hz: 10
  v: [-2, 1e200, -1, 40, 0.5]
simulation: {dt_ms: 0.01, duration_ms: 3, transient_ms: 0.5}
output: {traces: {every_ms: 0.01, runs: all}}
";

const HEALTHY_SPEC: &str = "\
model: {eta: -5, J: 15, delta: 1}
init:
  r_hz: 10
  v: [-2, -1, 0.5]
simulation: {dt_ms: 0.01, duration_ms: 3, transient_ms: 0.5}
";

#[test]
fn diverged_runs_have_null_statistics_and_the_sweep_goes_on() {
    let out = Out::new();
    let report = run_into(&out, DIVERGING_SPEC, Shard::WHOLE, 2, Isa::Portable);
    let s = out.summary(Shard::WHOLE);
    let init_v = s.f64s("init_v");
    let diverged = s.bools("diverged");
    let at = s.opt_f64s("diverged_at_ms");
    assert_eq!(init_v, vec![-2.0, 1e200, -1.0, 40.0, 0.5]);
    assert_eq!(
        diverged,
        vec![false, true, false, true, false],
        "init_v {init_v:?}, at {at:?}"
    );
    assert_eq!(report.diverged, 2);
    let dt = 0.01;
    let traces = out.traces(Shard::WHOLE);
    let fp_count = s.opt_u8s("fp_count");
    let settled = s.opt_strs("fp_settled");
    for i in 0..s.rows {
        // The fixed points depend on the parameters only: there whether or not the run
        // diverged (constant inputs, no noise).
        assert_eq!(fp_count[i], Some(3), "run {i}: fp_count");
        for name in &FP_COLUMNS[1..5] {
            assert!(s.opt_f64s(name)[i].is_some(), "run {i}: {name} is null");
        }
        if diverged[i] {
            assert_eq!(
                settled[i], None,
                "run {i}: fp_settled of a diverged run must be null"
            );
            let a = at[i].unwrap_or_else(|| panic!("run {i}: diverged_at_ms is null"));
            let k = (a / dt).round();
            assert!(
                k >= 1.0 && (a - k * dt).abs() <= 1e-9,
                "run {i}: diverged_at_ms {a} is not a multiple of dt"
            );
            assert!(
                a <= 3.0 + 1e-12,
                "run {i}: diverged_at_ms {a} after the end"
            );
            for st in STATS {
                assert_eq!(
                    s.opt_f64s(st)[i],
                    None,
                    "run {i}: {st} of a diverged run must be null"
                );
            }
            // The trace stops before the first non-finite state.
            let tr = trace_of(&traces, i as u64);
            assert!(!tr.is_empty());
            assert!(
                tr.iter().all(|&(_, r, v)| r.is_finite() && v.is_finite()),
                "run {i}"
            );
            let last = tr.last().unwrap().0;
            assert!(
                last < a - dt / 2.0,
                "run {i}: trace reaches t = {last}, diverged at {a}"
            );
            assert!(
                (last - (a - dt)).abs() <= 1e-9,
                "run {i}: trace ends at {last}, diverged at {a}"
            );
        } else {
            assert!(
                matches!(settled[i].as_deref(), Some("low" | "high" | "none")),
                "run {i}: fp_settled {:?}",
                settled[i]
            );
            assert_eq!(at[i], None, "run {i}: healthy run with diverged_at_ms");
            for st in STATS {
                let x = s.opt_f64s(st)[i];
                assert!(x.is_some_and(f64::is_finite), "run {i}: {st} = {x:?}");
            }
            assert_eq!(trace_of(&traces, i as u64).len(), 301);
        }
    }
    // v0 = 1e200 is non-finite after the first step.
    assert_eq!(at[1], Some(dt));
    // v0 = 40 blows up later (dv/dt ~ v^2 reaches infinity in about 1/40 ms).
    assert!(at[3].unwrap() > dt, "v0 = 40 diverged at {:?}", at[3]);

    // Healthy runs are the same as in a sweep of the healthy values alone.
    let (_o, h) = run_whole(HEALTHY_SPEC, 1, Isa::Portable);
    assert_eq!(h.f64s("init_v"), vec![-2.0, -1.0, 0.5]);
    for (hi, si) in [(0usize, 0usize), (1, 2), (2, 4)] {
        assert_eq!(h.opt_strs("fp_settled")[hi], settled[si], "fp_settled");
        for st in STATS {
            let (a, b) = (h.opt_f64s(st)[hi], s.opt_f64s(st)[si]);
            assert_eq!(
                a.map(f64::to_bits),
                b.map(f64::to_bits),
                "{st}: alone {a:?}, next to diverging runs {b:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. Reproducibility
// ---------------------------------------------------------------------------------------

/// 6 x 6 points x 3 replicates = 108 runs: four lane batches of 32.
const NOISY_SPEC: &str = "\
model:
  eta: {linspace: [-6, -3.5, 6]}
  J: [5, 8, 11, 14, 17, 20]
init:
  r_hz: {uniform: [0, 50]}
  v: {normal: [-2, 0.5]}
noise:
  v: {white: {sigma: 0.5}}
simulation: {dt_ms: 0.01, duration_ms: 2, transient_ms: 0.5}
sweep: {seed: 2026, replicates: 3}
";

/// An adaptive sweep (docs/adaptive.md): a W1-like grid whose runs take different step
/// counts, with traces at a period that is no multiple of anything.
const ADAPTIVE_SPEC: &str = "\
model: {eta: {linspace: [-10, 0, 9]}, J: {linspace: [0, 30, 9]}, delta: [1, 4]}
init: {r_hz: 100, v: -2}
simulation: {method: dopri5, adaptive: {rtol: 1e-8}, duration_ms: 20, transient_ms: 5}
output: {traces: {every_ms: 0.37, runs: {every: 7}}}
";

#[test]
fn adaptive_sweep_is_bitwise_reproducible_and_has_its_columns() {
    let (_a, one) = run_whole(ADAPTIVE_SPEC, 1, Isa::detect());
    let (b, two) = run_whole(ADAPTIVE_SPEC, 2, Isa::detect());
    assert_tables_bitwise_equal(&one, &two, "adaptive: threads 1 vs 2");
    let names: Vec<&str> = one.fields.iter().map(|f| f.0.as_str()).collect();
    let tail = &names[names.len() - 4..];
    assert_eq!(
        tail,
        ["steps", "rejected_steps", "stop_reason", "stopped_at_ms"]
    );
    for name in ["rtol", "atol_r_hz", "atol_v"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let steps = one.u64s("steps");
    assert!(steps.iter().all(|&s| s > 0) && steps.iter().min() != steps.iter().max());
    // Shards cut the lane batches elsewhere.
    let out = Out::new();
    for i in 0..3 {
        run_into(&out, ADAPTIVE_SPEC, shard(i, 3), 1, Isa::detect());
    }
    let rows: usize = (0..3).map(|i| out.summary(shard(i, 3)).rows).sum();
    assert_eq!(rows, one.rows);
    let traces = b.traces(Shard::WHOLE);
    // 20 / 0.37 = 54.05: 55 rows per traced run (t = 0 included), runs 0, 7, ..., 161.
    assert_eq!(traces.rows, 55 * 24);
}

#[test]
fn noisy_sweep_is_bitwise_reproducible() {
    let spec = spec::parse(NOISY_SPEC).unwrap();
    let plan = Plan::new(&spec).unwrap();
    assert_eq!(plan.runs, 108);

    let (_a, one) = run_whole(NOISY_SPEC, 1, Isa::Portable);
    let (_b, two) = run_whole(NOISY_SPEC, 2, Isa::Portable);
    let (_c, again) = run_whole(NOISY_SPEC, 2, Isa::Portable);
    assert_eq!(one.u64s("run_id"), (0..108).collect::<Vec<_>>());
    assert_tables_bitwise_equal(&one, &two, "threads 1 vs 2");
    assert_tables_bitwise_equal(&two, &again, "rerun");

    // Shards cut lane batches at other places: 0..36, 36..72, 72..108.
    let out = Out::new();
    let parts: Vec<Table> = (0..3)
        .map(|i| {
            run_into(&out, NOISY_SPEC, shard(i, 3), 2, Isa::Portable);
            out.summary(shard(i, 3))
        })
        .collect();
    let sharded = Table::concat(parts);
    assert_eq!(sharded.u64s("run_id"), (0..108).collect::<Vec<_>>());
    assert_tables_bitwise_equal(&one, &sharded, "3 shards vs unsharded");

    // Sanity: the runs are not trivially equal, nothing diverged.
    assert!(one.bools("diverged").iter().all(|d| !d));
    let v_std = one.f64s("v_std");
    assert!(v_std.iter().all(|&x| x > 0.0));
}

#[test]
fn replicates_differ_and_the_seed_matters() {
    let (_a, t) = run_whole(NOISY_SPEC, 2, Isa::Portable);
    let point = t.u64s("point_id");
    let r0 = t.f64s("init_r_hz");
    let v0 = t.f64s("init_v");
    let v_mean = t.f64s("v_mean");
    for p in 0..36u64 {
        let rows: Vec<usize> = (0..t.rows).filter(|&i| point[i] == p).collect();
        assert_eq!(rows.len(), 3);
        for (x, y) in [(0, 1), (0, 2), (1, 2)] {
            let (i, j) = (rows[x], rows[y]);
            assert_ne!(r0[i], r0[j], "point {p}: replicates share init_r_hz");
            assert_ne!(v0[i], v0[j], "point {p}: replicates share init_v");
            assert_ne!(v_mean[i], v_mean[j], "point {p}: replicates share v_mean");
        }
    }
    // Initial draws follow their distributions roughly.
    assert!(r0.iter().all(|&x| (0.0..50.0).contains(&x)));
    let mean_v0 = v0.iter().sum::<f64>() / v0.len() as f64;
    assert!((mean_v0 + 2.0).abs() < 0.2, "mean init_v {mean_v0}");

    let other_seed = NOISY_SPEC.replace("seed: 2026", "seed: 2027");
    assert_ne!(other_seed, NOISY_SPEC);
    let (_b, u) = run_whole(&other_seed, 2, Isa::Portable);
    let (r1, vm1) = (u.f64s("init_r_hz"), u.f64s("v_mean"));
    for i in 0..t.rows {
        assert_ne!(r0[i], r1[i], "run {i}: same init_r_hz with another seed");
        assert_ne!(v_mean[i], vm1[i], "run {i}: same v_mean with another seed");
    }
}

#[test]
fn instruction_set_paths_agree() {
    let (po, portable) = run_whole(WELL_CONDITIONED, 1, Isa::Portable);
    assert_eq!(
        portable.file_meta.get("mpr_sweep.isa").map(String::as_str),
        Some("portable")
    );
    assert!(po.summary_path(Shard::WHOLE).exists());
    let (_p2, portable_noisy) = run_whole(NOISY_SPEC, 2, Isa::Portable);
    for isa in [Isa::Avx2Fma, Isa::Avx512] {
        if !isa.is_available() {
            eprintln!(
                "no {} on this CPU: the {} path is not checked",
                isa.features(),
                isa.name()
            );
            continue;
        }
        let (_o, t) = run_whole(WELL_CONDITIONED, 1, isa);
        assert_eq!(
            t.file_meta.get("mpr_sweep.isa").map(String::as_str),
            Some(isa.name())
        );
        for st in STATS {
            let (a, b) = (portable.f64s(st)[0], t.f64s(st)[0]);
            assert!(
                rel_close(a, b, 1e-12),
                "{st}: portable {a} vs {} {b}",
                isa.name()
            );
        }
        // Also the noisy sweep: the same draws, so the same initial states and statistics
        // within 1e-12 (not bitwise: FMA rounds differently).
        let (_o2, noisy) = run_whole(NOISY_SPEC, 2, isa);
        assert_eq!(portable_noisy.f64s("init_r_hz"), noisy.f64s("init_r_hz"));
        assert_eq!(portable_noisy.f64s("init_v"), noisy.f64s("init_v"));
        for st in STATS {
            for (i, (a, b)) in portable_noisy
                .f64s(st)
                .into_iter()
                .zip(noisy.f64s(st))
                .enumerate()
            {
                assert!(
                    rel_close(a, b, 1e-12),
                    "noisy run {i}, {st}: portable {a} vs {} {b}",
                    isa.name()
                );
            }
        }
    }
}

/// The AVX-512 path runs the AVX2 path's arithmetic (every multiply-add fused, the same
/// polynomials in the same order) on wider vectors, so its results are the same bits.
#[test]
fn avx512_and_avx2_paths_give_the_same_bits() {
    if !Isa::Avx512.is_available() {
        eprintln!("no {} on this CPU: not checked", Isa::Avx512.features());
        return;
    }
    let mut specs = vec![NOISY_SPEC.to_string()];
    for method in ["exp_euler", "euler", "heun", "rk4", "dopri5"] {
        // White noise (refused with rk4 and dopri5), OU noise and a time-varying input, and
        // runs that diverge or leave exp_euler's series range.
        let noise = if matches!(method, "rk4" | "dopri5") {
            "{v: {ou: {sigma: 0.5, tau_ms: 3}}}"
        } else {
            "{v: {white: {sigma: 0.5}}, r_hz: {ou: {sigma: 20, tau_ms: 2}}}"
        };
        specs.push(format!(
            "\
model: {{eta: [-5, -4], J: 15, delta: 1}}
input: {{r_hz: {{sine: {{amplitude: 10, freq_hz: 40}}}}}}
noise: {noise}
init: {{r_hz: 10, v: [-2, 1e200, -1, 40, 0.5]}}
simulation: {{dt_ms: 0.01, duration_ms: 3, transient_ms: 0.5, method: {method}}}
sweep: {{seed: 7, replicates: 4}}
"
        ));
    }
    for text in &specs {
        let (_a, avx2) = run_whole(text, 2, Isa::Avx2Fma);
        let (_b, avx512) = run_whole(text, 2, Isa::Avx512);
        assert!(avx2.rows >= 18, "{text}");
        assert_tables_bitwise_equal(&avx2, &avx512, &format!("avx2+fma vs avx512:\n{text}"));
    }
}

// ---------------------------------------------------------------------------------------
// 6. Statistics against the full trace
// ---------------------------------------------------------------------------------------

fn check_stats_against_trace(text: &str, transient_ms: f64) {
    let out = Out::new();
    run_into(&out, text, Shard::WHOLE, 1, Isa::Portable);
    let s = out.summary(Shard::WHOLE);
    let t = out.traces(Shard::WHOLE);
    let tr = trace_of(&t, 0);
    assert_eq!(tr.len(), 501, "every step of 5 ms at dt 0.01, and t = 0");
    let rows: Vec<&(f64, f64, f64)> = tr
        .iter()
        .filter(|(tm, _, _)| *tm > 0.0 && *tm >= transient_ms - 1e-9)
        .collect();
    // First post-step state with t >= transient_ms (steps k, t = k dt), at least step 1.
    let first_step = (1..=500)
        .find(|&k| k as f64 * 0.01 >= transient_ms - 1e-9)
        .unwrap();
    let expected_rows = 500 - first_step + 1;
    assert_eq!(rows.len(), expected_rows);
    for (var, pick) in [
        (
            "r_hz",
            (|x: &(f64, f64, f64)| x.1) as fn(&(f64, f64, f64)) -> f64,
        ),
        ("v", |x: &(f64, f64, f64)| x.2),
    ] {
        let xs: Vec<f64> = rows.iter().map(|x| pick(x)).collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let get = |stat: &str| s.f64s(&format!("{var}_{stat}"))[0];
        for (stat, want) in [("mean", mean), ("std", std), ("min", min), ("max", max)] {
            let got = get(stat);
            assert!(
                rel_close(got, want, 1e-12),
                "transient {transient_ms}: {var}_{stat} = {got}, from the trace {want} (rel. err {:.2e})",
                (got - want).abs() / want.abs()
            );
        }
        // min and max are samples: exact.
        assert_eq!(get("min"), min, "{var}_min");
        assert_eq!(get("max"), max, "{var}_max");
        assert_eq!(get("final"), pick(tr.last().unwrap()), "{var}_final");
        assert!(std > 0.0);
    }
}

#[test]
fn statistics_match_the_trace_after_the_transient() {
    let text = format!("{WELL_CONDITIONED}output: {{traces: {{every_ms: 0.01, runs: all}}}}\n");
    check_stats_against_trace(&text, 1.0);
}

#[test]
fn a_transient_between_steps_is_refused() {
    // 1.234 ms is not a multiple of dt: the statistics would start at 1.24 ms, so the spec
    // is refused, naming the nearest transients that are whole numbers of steps.
    let text = WELL_CONDITIONED.replace("transient_ms: 1", "transient_ms: 1.234");
    assert!(text.contains("transient_ms: 1.234"));
    let e = spec::parse(&text).unwrap_err();
    assert_eq!(e.path, "simulation.transient_ms");
    assert!(
        e.message.ends_with("the nearest that are: 1.23 and 1.24"),
        "{e}"
    );
}

#[test]
fn statistics_without_transient_exclude_the_initial_state() {
    let text = WELL_CONDITIONED.replace(", transient_ms: 1", "")
        + "output: {traces: {every_ms: 0.01, runs: all}}\n";
    assert!(!text.contains("transient"));
    check_stats_against_trace(&text, 0.0);
    // The initial state (r = 100 Hz) is the maximum of r only if t = 0 were included.
    let out = Out::new();
    run_into(&out, &text, Shard::WHOLE, 1, Isa::Portable);
    let s = out.summary(Shard::WHOLE);
    assert_ne!(s.f64s("r_hz_max")[0], 100.0);
}

// ---------------------------------------------------------------------------------------
// 8. Parameters of time-varying inputs and OU noise
// ---------------------------------------------------------------------------------------

#[test]
fn time_varying_inputs_and_ou_noise_have_their_own_parameter_columns() {
    let text = "\
model: {eta: -5}
input:
  r_hz: {sine: {amplitude: [10, 20], freq_hz: 40}}
  v: {pulse: {start_ms: 0.25, stop_ms: 0.5, amplitude: 2}}
noise:
  v: {ou: {sigma: 0.5, tau_ms: 3}}
simulation: {dt_ms: 0.01, duration_ms: 1}
";
    let (_out, t) = run_whole(text, 1, Isa::Portable);
    let params: Vec<&str> = t
        .names()
        .into_iter()
        .take_while(|&n| n != "init_r_hz")
        .collect();
    assert_eq!(
        params,
        [
            "run_id",
            "point_id",
            "replicate",
            "tau_ms",
            "eta",
            "J",
            "delta",
            "input_r_hz_amplitude",
            "input_r_hz_freq_hz",
            "input_r_hz_phase",
            "input_r_hz_offset",
            "input_v_start_ms",
            "input_v_stop_ms",
            "input_v_amplitude",
            "noise_v_sigma",
            "noise_v_tau_ms",
            "dt_ms",
        ],
        "a time-varying input has no constant input_* column"
    );
    assert!(!t.has("input_v") && !t.has("input_r_hz"));
    assert_eq!(t.rows, 2);
    let expect: [(&str, [f64; 2]); 9] = [
        ("input_r_hz_amplitude", [10.0, 20.0]),
        ("input_r_hz_freq_hz", [40.0, 40.0]),
        ("input_r_hz_phase", [0.0, 0.0]),
        ("input_r_hz_offset", [0.0, 0.0]),
        ("input_v_start_ms", [0.25, 0.25]),
        ("input_v_stop_ms", [0.5, 0.5]),
        ("input_v_amplitude", [2.0, 2.0]),
        ("noise_v_sigma", [0.5, 0.5]),
        ("noise_v_tau_ms", [3.0, 3.0]),
    ];
    for (name, want) in expect {
        assert_eq!(t.f64s(name), want, "{name}");
    }
    // Every parameter column is non-nullable Float64.
    for (name, ty, nullable) in &t.fields[3..params.len()] {
        assert_eq!((ty, *nullable), (&DataType::Float64, false), "{name}");
    }

    // A step without `before` (default 0) on v, OU noise on r_hz; r_hz keeps its constant.
    let text = "\
input:
  v: {step: {at_ms: 0.5, after: -1}}
noise:
  r_hz: {ou: {sigma: 20, tau_ms: [1, 4]}}
simulation: {dt_ms: 0.01, duration_ms: 1}
";
    let (_out, t) = run_whole(text, 1, Isa::Portable);
    for name in [
        "input_r_hz",
        "input_v_at_ms",
        "input_v_before",
        "input_v_after",
        "noise_r_hz_sigma",
        "noise_r_hz_tau_ms",
    ] {
        assert!(t.has(name), "no {name} in {:?}", t.names());
    }
    assert!(!t.has("input_v"), "{:?}", t.names());
    assert_eq!(t.f64s("input_r_hz"), [0.0, 0.0]);
    assert_eq!(t.f64s("input_v_at_ms"), [0.5, 0.5]);
    assert_eq!(t.f64s("input_v_before"), [0.0, 0.0]);
    assert_eq!(t.f64s("input_v_after"), [-1.0, -1.0]);
    assert_eq!(t.f64s("noise_r_hz_tau_ms"), [1.0, 4.0]);
    let p = t.names().iter().position(|&n| n == "input_r_hz").unwrap();
    let q = t
        .names()
        .iter()
        .position(|&n| n == "input_v_at_ms")
        .unwrap();
    assert!(
        p < q,
        "r_hz's input columns come before v's: {:?}",
        t.names()
    );
}

/// An input that changes only after the run ends, or a sine of amplitude 0, is the
/// constant input it starts with (up to the order of additions: I_v = 0.5 at eta = -5 is
/// compared with I_v = 0 at eta = -4.5).
#[test]
fn inputs_constant_during_the_run_match_a_constant_input() {
    let run_with = |eta: f64, input: &str| {
        let text = format!(
            "model: {{eta: {eta}, J: 15, delta: 1}}\ninit: {{r_hz: 100, v: -2}}\ninput: {{v: {input}}}\nsimulation: {{dt_ms: 0.01, duration_ms: 5, transient_ms: 1}}\n"
        );
        run_whole(&text, 1, Isa::Portable).1
    };
    let constant = run_with(-5.0, "0.5");
    for (eta, input) in [
        (-5.0, "{step: {at_ms: 10, before: 0.5, after: 3}}"),
        (-4.5, "{step: {at_ms: 10, after: 3}}"),
        (-4.5, "{pulse: {start_ms: 6, stop_ms: 7, amplitude: 3}}"),
        (-5.0, "{sine: {amplitude: 0, freq_hz: 40, offset: 0.5}}"),
    ] {
        let t = run_with(eta, input);
        for st in STATS {
            let (a, b) = (constant.f64s(st)[0], t.f64s(st)[0]);
            assert!(
                rel_close(a, b, 1e-12),
                "eta {eta}, input {input}: {st} = {b}, with the constant input {a}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 9. Analytic stable states (fp_* columns)
// ---------------------------------------------------------------------------------------

/// The paper's bistable point, started near each stable state: 300 ms is plenty to settle.
const BISTABLE_SPEC: &str = "\
model: {eta: -5, J: 15, delta: 1}
init:
  r_hz: [1000, 0.1]
  v: [-0.16, -2]
simulation: {dt_ms: 0.01, duration_ms: 300, transient_ms: 200}
sweep: {zip: [[init_r_hz, init_v]]}
";

#[test]
fn fp_columns_at_the_bistable_point_match_the_analytic_states() {
    let pi = std::f64::consts::PI;
    let (eta, j, delta) = (-5.0, 15.0, 1.0);
    let fps = fixed_points(eta, j, delta);
    let roots: Vec<f64> = fps.iter().map(|f| f.x).collect();
    assert_eq!(
        roots.len(),
        3,
        "eta -5, J 15, delta 1 is bistable: {roots:?}"
    );
    let stable: Vec<f64> = fps.iter().filter(|f| f.stable).map(|f| f.x).collect();
    assert_eq!(stable.len(), 2, "roots {roots:?}");
    let (x_low, x_high) = (stable[0], stable[1]);

    let (_out, t) = run_whole(BISTABLE_SPEC, 1, Isa::Portable);
    assert_eq!(t.rows, 2);
    assert_eq!(t.f64s("init_r_hz"), [1000.0, 0.1]);
    assert_eq!(t.f64s("init_v"), [-0.16, -2.0]);
    assert_eq!(t.opt_u8s("fp_count"), [Some(3), Some(3)]);
    for name in &FP_COLUMNS[1..5] {
        let col = t.opt_f64s(name);
        assert!(col.iter().all(Option::is_some), "{name}: {col:?}");
        assert_eq!(col[0], col[1], "{name}: same parameters, same fixed points");
    }
    let r_low = t.f64s("fp_r_hz_low")[0];
    let r_high = t.f64s("fp_r_hz_high")[0];
    let v_low = t.f64s("fp_v_low")[0];
    let v_high = t.f64s("fp_v_high")[0];
    assert!(
        r_low < r_high,
        "fp_r_hz_low {r_low} >= fp_r_hz_high {r_high}"
    );
    assert!(v_low < v_high, "fp_v_low {v_low} >= fp_v_high {v_high}");
    assert!(
        rel_close(r_low, 1000.0 * x_low, 1e-9),
        "fp_r_hz_low {r_low} vs analytic {}",
        1000.0 * x_low
    );
    assert!(
        rel_close(r_high, 1000.0 * x_high, 1e-9),
        "fp_r_hz_high {r_high} vs analytic {}",
        1000.0 * x_high
    );
    for (r, v, which) in [(r_low, v_low, "low"), (r_high, v_high, "high")] {
        let want = -delta / (2.0 * pi * r / 1000.0);
        assert!(
            rel_close(v, want, 1e-9),
            "fp_v_{which} {v} vs -delta/(2 pi x) = {want}"
        );
    }

    // Each run ends in the state it started near, and says so.
    assert_eq!(
        t.opt_strs("fp_settled"),
        [Some("high".to_string()), Some("low".to_string())]
    );
    let (rf, vf) = (t.f64s("r_hz_final"), t.f64s("v_final"));
    assert!(rel_close(rf[0], r_high, 1e-3) && rel_close(vf[0], v_high, 1e-3));
    assert!(rel_close(rf[1], r_low, 1e-3) && rel_close(vf[1], v_low, 1e-3));
}

#[test]
fn fp_columns_of_monostable_points_and_white_noise_runs() {
    // eta -10: only the low state; eta 0: only the high state (both at J 15, delta 1).
    // The high state is a weakly damped focus: exp_euler at dt 0.01 circles it on a
    // spurious limit cycle (DESIGN.md section 9), heun settles.
    let text = "\
model: {eta: [-10, 0], J: 15, delta: 1}
init: {r_hz: 10, v: -1}
noise: {v: {white: {sigma: [0, 0.01]}}}
simulation: {dt_ms: 0.01, duration_ms: 100, transient_ms: 50, method: heun}
sweep: {seed: 5}
";
    let (_out, t) = run_whole(text, 1, Isa::Portable);
    assert_eq!(t.rows, 4);
    let eta = t.f64s("eta");
    let sigma = t.f64s("noise_v_sigma");
    let count = t.opt_u8s("fp_count");
    let settled = t.opt_strs("fp_settled");
    assert!(t.bools("diverged").iter().all(|d| !d));
    for i in 0..t.rows {
        let roots: Vec<f64> = fixed_points(eta[i], 15.0, 1.0)
            .iter()
            .map(|f| f.x)
            .collect();
        assert_eq!(roots.len(), 1, "eta {}: {roots:?}", eta[i]);
        // White noise does not change the inputs: the columns are filled.
        assert_eq!(
            count[i],
            Some(1),
            "run {i}: eta {}, sigma {}",
            eta[i],
            sigma[i]
        );
        // The one stable state is in the `low` columns, whatever its rate.
        let low = t.opt_f64s("fp_r_hz_low")[i].expect("the one stable state");
        assert!(
            rel_close(low, 1000.0 * roots[0], 1e-9),
            "run {i}: {low} vs {roots:?}"
        );
        assert!(t.opt_f64s("fp_v_low")[i].is_some());
        assert_eq!(t.opt_f64s("fp_r_hz_high")[i], None, "run {i}");
        assert_eq!(t.opt_f64s("fp_v_high")[i], None, "run {i}");
        let s = settled[i].as_deref();
        assert!(
            matches!(s, Some("low" | "none")),
            "run {i}: fp_settled {s:?}"
        );
        if sigma[i] == 0.0 {
            assert_eq!(s, Some("low"), "run {i}: a deterministic run settles");
        }
    }
}

#[test]
fn fp_columns_are_null_when_inputs_are_not_constant() {
    let base = "\
model: {eta: -5, J: 15, delta: 1}
init: {r_hz: 10, v: -2}
simulation: {dt_ms: 0.01, duration_ms: 2}
";
    for extra in [
        "input: {v: {pulse: {start_ms: 0.5, stop_ms: 1, amplitude: 3}}}",
        "input: {v: {pulse: {start_ms: 10, stop_ms: 20, amplitude: 3}}}",
        "input: {r_hz: {step: {at_ms: 1, after: 50}}}",
        "input: {v: {sine: {amplitude: 0.5, freq_hz: 100}}}",
        "noise: {v: {ou: {sigma: 0.5, tau_ms: 2}}}",
        "noise: {r_hz: {ou: {sigma: 10, tau_ms: 2}}}",
        "noise: {v: {ou: {sigma: 0, tau_ms: 2}}}",
    ] {
        let text = format!("{base}{extra}\n");
        let (_out, t) = run_whole(&text, 1, Isa::Portable);
        assert!(!t.bools("diverged")[0], "{extra}");
        assert_eq!(t.opt_u8s("fp_count"), [None], "{extra}");
        for name in &FP_COLUMNS[1..5] {
            assert_eq!(t.opt_f64s(name), [None], "{extra}: {name}");
        }
        assert_eq!(t.opt_strs("fp_settled"), [None], "{extra}");
        assert_eq!(t.opt_bools("dt_stable"), [None], "{extra}");
        assert_eq!(t.opt_f64s("dt_stable_max_ms"), [None], "{extra}");
        // The run itself has its statistics.
        for st in STATS {
            assert!(t.opt_f64s(st)[0].is_some(), "{extra}: {st}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 10. dt as an axis
// ---------------------------------------------------------------------------------------

/// 6 x 3 x 2 points x 2 replicates = 72 runs, dt the last axis: runs alternate dt every
/// two run ids, and each dt has 36 runs (two lane batches of up to 32).
const DT_AXIS_SPEC: &str = "\
model:
  eta: {linspace: [-6, -4, 6]}
  J: [10, 15, 20]
init:
  r_hz: {uniform: [0, 50]}
  v: {normal: [-2, 0.5]}
noise:
  v: {white: {sigma: 0.5}}
  r_hz: {ou: {sigma: 20, tau_ms: 2}}
simulation:
  dt_ms: [0.01, 0.005]
  duration_ms: 2
  transient_ms: 0.5
sweep: {seed: 2026, replicates: 2}
output: {traces: {every_ms: 0.01, runs: {every: 5}}}
";

#[test]
fn sweep_with_a_dt_axis_is_bitwise_reproducible() {
    let isa = Isa::detect();
    let spec = spec::parse(DT_AXIS_SPEC).unwrap();
    let plan = Plan::new(&spec).unwrap();
    assert_eq!(plan.runs, 72);

    let whole = |threads| {
        let out = Out::new();
        run_into(&out, DT_AXIS_SPEC, Shard::WHOLE, threads, isa);
        let (s, t) = (out.summary(Shard::WHOLE), out.traces(Shard::WHOLE));
        (out, s, t)
    };
    let (_a, one, one_tr) = whole(1);
    let (_b, two, two_tr) = whole(2);
    assert_tables_bitwise_equal(&one, &two, "dt axis: threads 1 vs 2");
    assert_tables_bitwise_equal(&one_tr, &two_tr, "dt axis traces: threads 1 vs 2");

    // Shards put other runs next to each run in its lane batch.
    for n in [2, 5] {
        let out = Out::new();
        let (mut sums, mut traces) = (Vec::new(), Vec::new());
        for i in 0..n {
            run_into(&out, DT_AXIS_SPEC, shard(i, n), 2, isa);
            sums.push(out.summary(shard(i, n)));
            traces.push(out.traces(shard(i, n)));
        }
        let (sums, traces) = (Table::concat(sums), Table::concat(traces));
        assert_tables_bitwise_equal(&one, &sums, &format!("dt axis: {n} shards vs unsharded"));
        assert_tables_bitwise_equal(
            &one_tr,
            &traces,
            &format!("dt axis traces: {n} shards vs unsharded"),
        );
    }

    // Rows in run id order; parameters follow the grid, dt the fastest axis.
    assert_eq!(one.u64s("run_id"), (0..72).collect::<Vec<_>>());
    let point = one.u64s("point_id");
    let dt = one.f64s("dt_ms");
    let eta = one.f64s("eta");
    let j = one.f64s("J");
    let etas: Vec<f64> = (0..6).map(|i| -6.0 + 2.0 * i as f64 / 5.0).collect();
    for i in 0..72 {
        let p = point[i] as usize;
        assert_eq!(p, i / 2, "run {i}");
        let want_dt: f64 = [0.01, 0.005][p % 2];
        assert_eq!(
            dt[i].to_bits(),
            want_dt.to_bits(),
            "dt_ms of run {i}: {}",
            dt[i]
        );
        assert_eq!(j[i], [10.0, 15.0, 20.0][(p / 2) % 3], "J of run {i}");
        assert!(
            rel_close(eta[i], etas[p / 6], 1e-15),
            "eta of run {i}: {}",
            eta[i]
        );
    }
    assert!(one.bools("diverged").iter().all(|d| !d));
    assert!(one.f64s("v_std").iter().all(|&x| x > 0.0));
    // OU noise: the fp columns are null.
    assert!(one.opt_u8s("fp_count").iter().all(Option::is_none));

    // Traces: every 0.01 ms whatever the run's dt, from the initial state to 2 ms.
    assert_eq!(
        distinct_ids(&one_tr),
        (0..72).step_by(5).collect::<Vec<_>>()
    );
    let (r0, v0) = (one.f64s("init_r_hz"), one.f64s("init_v"));
    let (rf, vf) = (one.f64s("r_hz_final"), one.f64s("v_final"));
    for run in (0..72u64).step_by(5) {
        let tr = trace_of(&one_tr, run);
        let i = run as usize;
        assert_eq!(tr.len(), 201, "run {run} at dt {}", dt[i]);
        for (k, &(tm, _, _)) in tr.iter().enumerate() {
            assert!(
                (tm - k as f64 * 0.01).abs() <= 1e-9,
                "run {run} row {k}: t = {tm}"
            );
        }
        assert_eq!((tr[0].1, tr[0].2), (r0[i], v0[i]), "run {run}: first row");
        assert_eq!(
            (tr[200].1, tr[200].2),
            (rf[i], vf[i]),
            "run {run}: last row"
        );
    }
}

/// A run of a sweep with a dt axis is the same run as in a sweep with that dt fixed, when
/// its run id and parameters are the same (point 0: the first value of every axis).
#[test]
fn runs_at_one_dt_do_not_depend_on_the_dt_axis() {
    let fixed = DT_AXIS_SPEC
        .replace("dt_ms: [0.01, 0.005]", "dt_ms: 0.01")
        .replace("output: {traces: {every_ms: 0.01, runs: {every: 5}}}\n", "");
    assert!(fixed.contains("dt_ms: 0.01\n") && !fixed.contains("traces"));
    let swept = DT_AXIS_SPEC.replace("output: {traces: {every_ms: 0.01, runs: {every: 5}}}\n", "");
    let (_a, f) = run_whole(&fixed, 2, Isa::Portable);
    let (_b, s) = run_whole(&swept, 2, Isa::Portable);
    assert_eq!(f.rows, 36);
    assert_eq!(s.rows, 72);
    // Runs 0 and 1 are point 0 (replicates 0 and 1) in both sweeps.
    for name in f.names() {
        if name == "point_id" {
            continue;
        }
        for i in 0..2 {
            let (a, b) = (f.col(name), s.col(name));
            let same = match (a, b) {
                (Col::U64(x), Col::U64(y)) => x[i] == y[i],
                (Col::U32(x), Col::U32(y)) => x[i] == y[i],
                (Col::F64(x), Col::F64(y)) => x[i] == y[i],
                (Col::Bool(x), Col::Bool(y)) => x[i] == y[i],
                (Col::U8(x), Col::U8(y)) => x[i] == y[i],
                (Col::Str(x), Col::Str(y)) => x[i] == y[i],
                _ => false,
            };
            assert!(
                same,
                "run {i}: {name} differs: fixed dt {a:?} vs dt axis {b:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 7. Atomic commit leaves no temporary files
// ---------------------------------------------------------------------------------------

#[test]
fn no_temporary_files_remain_after_a_run() {
    let text =
        format!("{TRACE_SPEC_HEAD}output: {{traces: {{every_ms: 0.1, runs: {{every: 2}}}}}}\n");
    let out = Out::new();
    for i in 0..2 {
        run_into(&out, &text, shard(i, 2), 2, Isa::Portable);
    }
    for sub in ["summary", "traces"] {
        let mut names: Vec<String> = std::fs::read_dir(out.dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "{sub}/ holds temporary files: {names:?}"
        );
        assert_eq!(
            names,
            vec!["part-00000-of-00002.parquet", "part-00001-of-00002.parquet"],
            "{sub}/"
        );
    }
    let mut top: Vec<String> = std::fs::read_dir(&out.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, vec!["spec.yaml", "summary", "traces"]);
}

/// 140,000 runs: three summary row groups (65,536 rows each, then the rest), each made of
/// many pieces of runs; traces from runs spread over the pieces.
const MANY_RUNS_SPEC: &str = "\
model:
  eta: {linspace: [-10, 0, 350]}
  J: {linspace: [0, 30, 400]}
noise:
  v: {white: {sigma: 0.5}}
simulation: {dt_ms: 0.01, duration_ms: 0.02}
output:
  traces: {every_ms: 0.01, runs: {every: 997}}
";

#[test]
fn parts_are_byte_identical_for_any_thread_count() {
    let parts = |threads| {
        let out = Out::new();
        run_into(&out, MANY_RUNS_SPEC, Shard::WHOLE, threads, Isa::Portable);
        let summary = std::fs::read(out.summary_path(Shard::WHOLE)).unwrap();
        let traces = std::fs::read(out.traces_path(Shard::WHOLE)).unwrap();
        (out, summary, traces)
    };
    let (out, summary_1, traces_1) = parts(1);
    let (_, summary_3, traces_3) = parts(3);
    // Whole files: column chunks, row groups, footer and its metadata.
    assert!(
        summary_1 == summary_3,
        "summary parts differ between 1 and 3 threads"
    );
    assert!(
        traces_1 == traces_3,
        "trace parts differ between 1 and 3 threads"
    );
    let summary = out.summary(Shard::WHOLE);
    assert_eq!(summary.rows, 140_000);
    assert_eq!(summary.row_groups, 3, "65,536 + 65,536 + 8,928 rows");
    assert_eq!(summary.u64s("run_id"), (0..140_000).collect::<Vec<_>>());
    let traces = out.traces(Shard::WHOLE);
    // Runs 0, 997, ..., 139,580: 141 runs of 3 rows (t = 0, 0.01, 0.02 ms).
    assert_eq!(traces.rows, 141 * 3);
}

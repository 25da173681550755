//! End-to-end tests of the Parquet output (DESIGN.md section 6) and of reproducibility
//! (section 4), through the library API: `run::run` writes a result directory, and the
//! tests read it back with the parquet crate's Arrow reader.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type, UInt64Type};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use sha2::{Digest, Sha256};

use mpr_sweep::integrate::Isa;
use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::run::{RunOptions, RunReport, run};
use mpr_sweep::spec;

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

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// One column of a Parquet file; floats are kept as bits so that `==` is bitwise.
#[derive(Debug, Clone, PartialEq)]
enum Col {
    U64(Vec<u64>),
    U32(Vec<u32>),
    F64(Vec<Option<u64>>),
    Bool(Vec<Option<bool>>),
}

impl Col {
    fn extend(&mut self, other: Col) {
        match (self, other) {
            (Col::U64(a), Col::U64(b)) => a.extend(b),
            (Col::U32(a), Col::U32(b)) => a.extend(b),
            (Col::F64(a), Col::F64(b)) => a.extend(b),
            (Col::Bool(a), Col::Bool(b)) => a.extend(b),
            (a, b) => panic!("column types differ: {a:?} vs {b:?}"),
        }
    }
}

/// A Parquet file read back whole.
struct Table {
    /// (name, type, nullable) in file order.
    fields: Vec<(String, DataType, bool)>,
    cols: Vec<Col>,
    /// The Parquet footer's key-value metadata.
    file_meta: HashMap<String, String>,
    /// The Arrow schema's metadata as the reader reports it.
    arrow_meta: HashMap<String, String>,
    /// Compression of every column chunk of every row group.
    compressions: Vec<Compression>,
    row_groups: usize,
    rows: usize,
}

impl Table {
    fn read(path: &Path) -> Table {
        let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
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
        let mut cols: Vec<Col> = fields
            .iter()
            .map(|(_, t, _)| match t {
                DataType::UInt64 => Col::U64(Vec::new()),
                DataType::UInt32 => Col::U32(Vec::new()),
                DataType::Float64 => Col::F64(Vec::new()),
                DataType::Boolean => Col::Bool(Vec::new()),
                other => panic!("unexpected column type {other}"),
            })
            .collect();
        let mut rows = 0;
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            rows += batch.num_rows();
            for (i, col) in cols.iter_mut().enumerate() {
                let a = batch.column(i);
                let part = match col {
                    Col::U64(_) => {
                        assert_eq!(a.null_count(), 0);
                        Col::U64(a.as_primitive::<UInt64Type>().values().to_vec())
                    }
                    Col::U32(_) => {
                        assert_eq!(a.null_count(), 0);
                        Col::U32(a.as_primitive::<UInt32Type>().values().to_vec())
                    }
                    Col::F64(_) => {
                        let a = a.as_primitive::<Float64Type>();
                        Col::F64(
                            (0..a.len())
                                .map(|j| a.is_valid(j).then(|| a.value(j).to_bits()))
                                .collect(),
                        )
                    }
                    Col::Bool(_) => {
                        let a = a.as_boolean();
                        Col::Bool(
                            (0..a.len())
                                .map(|j| a.is_valid(j).then(|| a.value(j)))
                                .collect(),
                        )
                    }
                };
                col.extend(part);
            }
        }
        Table {
            fields,
            cols,
            file_meta,
            arrow_meta: schema.metadata().clone().into(),
            compressions,
            row_groups: meta.num_row_groups(),
            rows,
        }
    }

    /// The rows of several parts, in the order given.
    fn concat(parts: Vec<Table>) -> Table {
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

    fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|(n, _, _)| n.as_str()).collect()
    }

    fn col(&self, name: &str) -> &Col {
        let i = self
            .fields
            .iter()
            .position(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.names()));
        &self.cols[i]
    }

    fn u64s(&self, name: &str) -> Vec<u64> {
        match self.col(name) {
            Col::U64(v) => v.clone(),
            other => panic!("{name} is not UInt64: {other:?}"),
        }
    }

    fn u32s(&self, name: &str) -> Vec<u32> {
        match self.col(name) {
            Col::U32(v) => v.clone(),
            other => panic!("{name} is not UInt32: {other:?}"),
        }
    }

    /// A Float64 column, nulls as `None`.
    fn opt_f64s(&self, name: &str) -> Vec<Option<f64>> {
        match self.col(name) {
            Col::F64(v) => v.iter().map(|x| x.map(f64::from_bits)).collect(),
            other => panic!("{name} is not Float64: {other:?}"),
        }
    }

    /// A Float64 column without nulls.
    fn f64s(&self, name: &str) -> Vec<f64> {
        self.opt_f64s(name)
            .into_iter()
            .enumerate()
            .map(|(i, x)| x.unwrap_or_else(|| panic!("{name}[{i}] is null")))
            .collect()
    }

    fn bools(&self, name: &str) -> Vec<bool> {
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
        out: out.dir.clone(),
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

/// Every column of `a` and `b` equal, floats compared by their bits.
fn assert_tables_bitwise_equal(a: &Table, b: &Table, what: &str) {
    assert_eq!(a.fields, b.fields, "{what}: schemas differ");
    assert_eq!(a.rows, b.rows, "{what}: row counts differ");
    for ((name, _, _), (ca, cb)) in a.fields.iter().zip(a.cols.iter().zip(&b.cols)) {
        if ca != cb {
            let i = match (ca, cb) {
                (Col::F64(x), Col::F64(y)) => x.iter().zip(y).position(|(p, q)| p != q),
                _ => None,
            };
            panic!("{what}: column {name} differs (first differing row {i:?}): {ca:?} vs {cb:?}");
        }
    }
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
    ])
    .collect();
    let got: Vec<(&str, DataType)> = t
        .fields
        .iter()
        .map(|(n, ty, _)| (n.as_str(), ty.clone()))
        .collect();
    assert_eq!(got, expected);
    for (name, _, nullable) in &t.fields {
        if STATS.contains(&name.as_str()) || name == "diverged_at_ms" {
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
    // Healthy runs: statistics present, not diverged.
    assert!(t.bools("diverged").iter().all(|d| !d));
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
    for i in 0..s.rows {
        if diverged[i] {
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
fn portable_and_avx2_paths_agree() {
    let (po, portable) = run_whole(WELL_CONDITIONED, 1, Isa::Portable);
    assert_eq!(
        portable.file_meta.get("mpr_sweep.isa").map(String::as_str),
        Some("portable")
    );
    assert!(po.summary_path(Shard::WHOLE).exists());
    if Isa::detect() != Isa::Avx2Fma {
        eprintln!("no AVX2+FMA on this CPU: only the portable path was checked");
        return;
    }
    let (_ao, avx) = run_whole(WELL_CONDITIONED, 1, Isa::Avx2Fma);
    assert_eq!(
        avx.file_meta.get("mpr_sweep.isa").map(String::as_str),
        Some("avx2+fma")
    );
    for st in STATS {
        let (a, b) = (portable.f64s(st)[0], avx.f64s(st)[0]);
        assert!(rel_close(a, b, 1e-12), "{st}: portable {a} vs avx2+fma {b}");
    }
    // Also the noisy sweep: same draws, so close (not bitwise: FMA rounds differently).
    let (_p2, pn) = run_whole(NOISY_SPEC, 2, Isa::Portable);
    let (_a2, an) = run_whole(NOISY_SPEC, 2, Isa::Avx2Fma);
    assert_eq!(pn.f64s("init_r_hz"), an.f64s("init_r_hz"));
    assert_eq!(pn.f64s("init_v"), an.f64s("init_v"));
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
fn statistics_with_a_transient_between_steps() {
    // 1.234 ms is not a multiple of dt: the first state counted is at t = 1.24 ms.
    let text = WELL_CONDITIONED.replace("transient_ms: 1", "transient_ms: 1.234")
        + "output: {traces: {every_ms: 0.01, runs: all}}\n";
    assert!(text.contains("transient_ms: 1.234"));
    check_stats_against_trace(&text, 1.234);
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

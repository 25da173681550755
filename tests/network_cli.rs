//! Networks through the command line: `mpr-sweep run` on a spec with a `network` section.
//!
//! - The traces of brainmass reference case b's network (tests/data/network, uniform initial
//!   state) equal, bit for bit, the network kernel called directly with brainmass's own
//!   delays in steps (tests/network.rs checks that kernel against brainmass's trajectory).
//! - `DIR/summary`, `DIR/nodes`, `DIR/fc` and `DIR/traces` are the same bits with 1 or 2
//!   threads and as one shard or the union of two.
//! - Bad network inputs exit with status 2 and one error line naming the key and the file.
//! - `fc_fit` is the Pearson correlation of the `DIR/fc` rows with the target's upper
//!   triangle, and `fc_mean` their mean.
//! - `--resume` skips a complete shard and reruns one whose `nodes` part is missing, and
//!   refuses parts computed from other contents of the network's files.
//! - The result directory holds copies of the files the spec names by relative paths, and
//!   its `spec.yaml` reruns to the same bits.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mpr_sweep::integrate::network::{
    Coupling, NET_LANES, NODES_PER_GROUP, NetBatch, NetSchedule, NodeInit, Wiring,
    integrate_network,
};
use mpr_sweep::integrate::{Isa, LANES, Method, Schedule, StopToken, Xoshiro};
use mpr_sweep::model::{HZ_PER_KHZ, NodeParams};
use serde_json::Value;
use tempfile::TempDir;

use common::run::{Outcome, files_under, mpr_sweep, s, write_file};
use common::table::{Table, assert_tables_bitwise_equal, is_hidden};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/network");

/// Longest a run of these small networks may take (catches hangs).
const TIMEOUT: Duration = Duration::from_secs(300);

/// The result kinds a network run writes with `output.fc` and traces.
const KINDS: [&str; 4] = ["summary", "nodes", "fc", "traces"];

/// Brainmass reference case b: W, tract lengths (mm), and brainmass's delays in steps at
/// its speed and dt.
struct CaseB {
    w: Vec<Vec<f64>>,
    distance_mm: Vec<Vec<f64>>,
    delay_steps: Vec<Vec<usize>>,
}

fn case_b() -> CaseB {
    let json: Value =
        serde_json::from_str(&fs::read_to_string(format!("{DATA}/brainmass_ref_b.json")).unwrap())
            .unwrap();
    let matrix = |key: &str| -> Vec<Vec<f64>> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    assert_eq!(json["speed_mm_per_ms"].as_f64(), Some(2.0));
    assert_eq!(json["dt_ms"].as_f64(), Some(0.01));
    CaseB {
        w: matrix("W"),
        distance_mm: matrix("distance_mm"),
        delay_steps: matrix("delay_steps")
            .into_iter()
            .map(|row| row.into_iter().map(|d| d as usize).collect())
            .collect(),
    }
}

/// `m` as text, one row a line, entries separated by `sep`; `{:?}` keeps every bit.
fn matrix_text(m: &[Vec<f64>], sep: &str) -> String {
    m.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().map(|x| format!("{x:?}")).collect();
            cells.join(sep) + "\n"
        })
        .collect()
}

/// Writes case b's weights as `w.txt` (whitespace) and its lengths as `len.csv`.
fn write_case_b(dir: &Path, case: &CaseB) {
    write_file(dir, "w.txt", &matrix_text(&case.w, "  "));
    write_file(dir, "len.csv", &matrix_text(&case.distance_mm, ","));
}

/// `mpr-sweep run SPEC --out OUT --quiet ARGS...`.
fn run(spec: &Path, out: &Path, args: &[&str]) -> Outcome {
    mpr_sweep()
        .args(["run", s(spec), "--out", s(out), "--quiet"])
        .args(args)
        .timeout(TIMEOUT)
        .outcome()
}

/// Node `i` of lane `l` at trace row `row`: (r in kHz, v), as the kernel lays them out.
fn traced_khz(trace: &[f64], groups: usize, row: usize, i: usize, l: usize) -> (f64, f64) {
    let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
    let base = row * groups * 2 * LANES + g * 2 * LANES + q * NET_LANES + l;
    (trace[base], trace[base + LANES])
}

/// The initial state of every node in the case b runs (and its rate before t = 0).
const R0_HZ: f64 = 100.0;
const V0: f64 = -2.0;

/// Per-node offsets of eta in the case b runs: without them identical nodes starting
/// together would feel the coupling only through the delays.
const ETA_OFFSETS: [f64; 4] = [0.0, -2.0, 1.5, -1.0];

/// The kernel's trace (every step) on path `isa` of case b's network with every node
/// starting at [`R0_HZ`], [`V0`], tau 1 ms, eta -5 plus [`ETA_OFFSETS`], J 15, delta 1,
/// exp_euler, dt 0.01 ms, with coupling `k` and the given delays in steps; and its number
/// of node groups.
fn kernel_trace(
    isa: Isa,
    case: &CaseB,
    delay_steps: &[Vec<usize>],
    k: f64,
    steps: u64,
) -> (usize, Vec<f64>) {
    let n = case.w.len();
    let incoming: Vec<Vec<(usize, f64, usize)>> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && case.w[i][j] != 0.0)
                .map(|j| (j, case.w[i][j], delay_steps[i][j]))
                .collect()
        })
        .collect();
    let wiring = Wiring::new(Coupling::Diffusive, &incoming);
    let dt = 0.01;
    let mut batch = NetBatch::new(wiring.groups());
    for l in 0..NET_LANES {
        for i in 0..wiring.groups() * NODES_PER_GROUP {
            // Padding slots past the last node copy node 0; nothing reads them.
            let mut params = NodeParams::from_user(1.0, -5.0, 15.0, 1.0, 0.0, 0.0);
            params.eta += ETA_OFFSETS[if i < n { i } else { 0 }];
            let node = NodeInit {
                params,
                sigma: [0.0, 0.0],
                r0_khz: R0_HZ / HZ_PER_KHZ,
                v0: V0,
                stream: Xoshiro::from_run(0, 0),
            };
            batch.set_node(i, l, &node, dt);
        }
    }
    batch.k = [k; NET_LANES];
    batch.history = vec![[R0_HZ / HZ_PER_KHZ; NET_LANES]; n];
    let schedule = NetSchedule {
        base: Schedule {
            dt,
            steps,
            first_stat_step: 0,
            trace_stride: 1,
            white: [false; 2],
        },
        fc_stride: 0,
    };
    let mut trace = Vec::new();
    integrate_network(
        isa,
        Method::ExpEuler,
        &schedule,
        &wiring,
        &batch,
        &mut trace,
        &StopToken::new(),
    )
    .expect("nobody asked to stop");
    (wiring.groups(), trace)
}

/// The CLI's traces of case b's network (every step, uniform initial state r 100 Hz,
/// v -2, per-node eta offsets) are the kernel's bits on every instruction-set path of this
/// CPU: the spec's files, units, lengths / speed -> delays, offsets and history reach the
/// kernel as brainmass's case b sets them up (its own delays in steps are given to the
/// kernel here).
#[test]
fn cli_traces_of_brainmass_case_b_equal_the_kernel_bit_for_bit() {
    let case = case_b();
    let n = case.w.len();
    let steps = 3000;
    let dir = TempDir::new().unwrap();
    write_case_b(dir.path(), &case);
    let offsets: String = ETA_OFFSETS.iter().map(|x| format!("{x:?}\n")).collect();
    write_file(dir.path(), "eta.txt", &offsets);
    let spec = write_file(
        dir.path(),
        "spec.yaml",
        &format!(
            "model: {{tau_ms: 1.0, eta: -5.0, J: 15.0, delta: 1.0}}\n\
             init: {{r_hz: {R0_HZ:?}, v: {V0:?}}}\n\
             simulation: {{dt_ms: 0.01, duration_ms: 30, method: exp_euler}}\n\
             network:\n  weights: w.txt\n  tract_lengths_mm: len.csv\n  speed_mm_per_ms: 2.0\n  k: 0.8\n\
             \x20 node_offsets: {{eta: eta.txt}}\n\
             output:\n  traces: {{every_ms: 0.01, runs: all}}\n"
        ),
    );
    for isa in Isa::available() {
        let choice = match isa {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        };
        let out = dir.path().join(choice);
        run(&spec, &out, &["--isa", choice]).expect_code(0);
        let traces = Table::read_dir(&out, "traces");
        assert_eq!(traces.rows, (steps + 1) * n, "one row per step and node");
        let (t_ms, node) = (traces.f64s("t_ms"), traces.u32s("node"));
        let (r_hz, v) = (traces.f64s("r_hz"), traces.f64s("v"));
        assert!(traces.u64s("run_id").iter().all(|&id| id == 0));

        let (groups, want) = kernel_trace(isa, &case, &case.delay_steps, 0.8, steps as u64);
        for row in 0..traces.rows {
            let (step, i) = (row / n, row % n);
            assert_eq!(
                (t_ms[row], node[row]),
                (step as f64 * 0.01, i as u32),
                "{choice}: row {row}"
            );
            let (r_khz, v_want) = traced_khz(&want, groups, step, i, 0);
            // Row 0 is the initial state as the spec gives it.
            let r_want = if step == 0 { R0_HZ } else { r_khz * HZ_PER_KHZ };
            assert_eq!(
                (r_hz[row].to_bits(), v[row].to_bits()),
                (r_want.to_bits(), v_want.to_bits()),
                "{choice}: step {step}, node {i}: CLI ({}, {}) vs kernel ({r_want}, {v_want})",
                r_hz[row],
                v[row]
            );
        }
        // The delays and the coupling matter here: without either, some node's
        // trajectory is another one.
        let zero = vec![vec![0; n]; n];
        for (what, delays, k) in [("delays", &zero, 0.8), ("coupling", &case.delay_steps, 0.0)] {
            let (_, other) = kernel_trace(isa, &case, delays, k, steps as u64);
            let apart = (0..traces.rows)
                .map(|row| {
                    let (r_khz, _) = traced_khz(&other, groups, row / n, row % n, 0);
                    (r_khz * HZ_PER_KHZ - r_hz[row]).abs()
                })
                .fold(0.0, f64::max);
            eprintln!("{choice}: without the {what}, some rate moves by {apart:.3e} Hz");
            assert!(
                apart > 1.0,
                "{choice}: the {what} move no rate by more than {apart} Hz"
            );
        }
    }
}

/// A noisy sweep of 12 network runs (k x replicates) with names, an FC target, FC output
/// and traces of every other run, over case b's network with its delays.
fn write_noisy_sweep(dir: &Path) -> PathBuf {
    write_case_b(dir, &case_b());
    write_file(dir, "names.txt", "V1\nV2\nM1\nPFC\n");
    write_file(
        dir,
        "fc.csv",
        "1,0.5,0.1,0.3\n0.5,1,0.7,-0.2\n0.1,0.7,1,0.4\n0.3,-0.2,0.4,1\n",
    );
    write_file(
        dir,
        "spec.yaml",
        "model: {tau_ms: 1.0, eta: -5.0, J: 15.0, delta: 1.0}\n\
         init: {r_hz: {uniform: [50, 150]}, v: -2.0}\n\
         noise:\n  v: {white: {sigma: 0.5}}\n\
         simulation: {dt_ms: 0.01, duration_ms: 20, transient_ms: 5, method: heun}\n\
         sweep: {seed: 11, replicates: 3}\n\
         network:\n  weights: w.txt\n  tract_lengths_mm: len.csv\n  speed_mm_per_ms: 2.0\n  \
         k: [0.0, 0.4, 0.8, 1.6]\n  node_names: names.txt\n  fc_target: fc.csv\n  fc_sample_ms: 0.1\n\
         output:\n  fc: true\n  traces: {every_ms: 0.5, runs: {every: 2}}\n",
    )
}

/// Every kind of part, by name, with its bytes.
fn parts(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(out)
        .into_iter()
        .filter(|p| !is_hidden(p) && p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| {
            let bytes = fs::read(out.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

/// 1 or 2 threads, one shard or two: the same rows, bit for bit, in every kind of part (and
/// the same bytes, 1 thread against 2).
#[test]
fn network_parts_are_the_same_bits_across_threads_and_shards() {
    let dir = TempDir::new().unwrap();
    let spec = write_noisy_sweep(dir.path());
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    let sharded = dir.path().join("sharded");
    run(&spec, &one, &["--threads", "1"]).expect_code(0);
    run(&spec, &two, &["--threads", "2"]).expect_code(0);
    for i in 0..2 {
        run(
            &spec,
            &sharded,
            &["--threads", "2", "--shard", &format!("{i}/2")],
        )
        .expect_code(0);
    }
    for kind in KINDS {
        let whole = Table::read_dir(&one, kind);
        assert!(whole.rows > 0, "{kind}: no rows");
        assert_tables_bitwise_equal(
            &whole,
            &Table::read_dir(&two, kind),
            &format!("{kind}: 1 vs 2 threads"),
        );
        assert_tables_bitwise_equal(
            &whole,
            &Table::read_dir(&sharded, kind),
            &format!("{kind}: 1 shard vs 2"),
        );
    }
    // Whole files too: column chunks, row groups and footers of every kind of part.
    let (one_parts, two_parts) = (parts(&one), parts(&two));
    assert_eq!(one_parts.len(), 4);
    assert!(
        one_parts == two_parts,
        "parts differ between 1 and 2 threads"
    );
    let summary = Table::read_dir(&one, "summary");
    assert_eq!(summary.rows, 12);
    let nodes = Table::read_dir(&one, "nodes");
    assert_eq!(nodes.rows, 12 * 4);
    // The noise acts: replicates of one k differ.
    let r_mean = summary.f64s("r_hz_mean");
    assert_ne!(r_mean[0].to_bits(), r_mean[1].to_bits());
    assert_eq!(
        nodes.opt_strs("node_name")[..4],
        ["V1", "V2", "M1", "PFC"].map(|s| Some(s.to_string()))
    );
    // The sharded directory holds two parts of each kind.
    for kind in KINDS {
        let count = parts(&sharded)
            .iter()
            .filter(|(p, _)| p.starts_with(kind))
            .count();
        assert_eq!(count, 2, "{kind} parts of 2 shards");
    }
}

/// The upper triangle `i < j` of a square matrix given as text rows, row by row.
fn upper_triangle(text: &str) -> Vec<f64> {
    let rows: Vec<Vec<f64>> = text
        .lines()
        .map(|l| l.split(',').map(|x| x.trim().parse().unwrap()).collect())
        .collect();
    let n = rows.len();
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .map(|(i, j)| rows[i][j])
        .collect()
}

/// Pearson's correlation of two samples, written out.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Each run's `fc_fit` is the correlation of its `DIR/fc` rows (i < j, in row order) with
/// the target's upper triangle, and `fc_mean` their mean, within 1e-12.
#[test]
fn fc_fit_is_the_correlation_of_the_fc_rows_with_the_target() {
    let dir = TempDir::new().unwrap();
    let spec = write_noisy_sweep(dir.path());
    let out = dir.path().join("out");
    run(&spec, &out, &[]).expect_code(0);
    let target = upper_triangle(&fs::read_to_string(dir.path().join("fc.csv")).unwrap());
    let summary = Table::read_dir(&out, "summary");
    let fc = Table::read_dir(&out, "fc");
    let (fc_run, fc_i, fc_j, fc_val) = (
        fc.u64s("run_id"),
        fc.u32s("i"),
        fc.u32s("j"),
        fc.opt_f64s("fc"),
    );
    let (fits, means) = (summary.opt_f64s("fc_fit"), summary.opt_f64s("fc_mean"));
    let mut spread: f64 = 0.0;
    for (row, run_id) in summary.u64s("run_id").into_iter().enumerate() {
        let mine: Vec<usize> = (0..fc.rows).filter(|&r| fc_run[r] == run_id).collect();
        let pairs: Vec<(u32, u32)> = mine.iter().map(|&r| (fc_i[r], fc_j[r])).collect();
        assert_eq!(
            pairs,
            [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)],
            "run {run_id}: the pairs i < j, row by row"
        );
        let sim: Vec<f64> = mine
            .iter()
            .map(|&r| fc_val[r].unwrap_or_else(|| panic!("run {run_id}: null fc")))
            .collect();
        let want_fit = correlation(&sim, &target);
        let want_mean = sim.iter().sum::<f64>() / sim.len() as f64;
        let fit = fits[row].unwrap_or_else(|| panic!("run {run_id}: null fc_fit"));
        let mean = means[row].unwrap_or_else(|| panic!("run {run_id}: null fc_mean"));
        assert!(
            (fit - want_fit).abs() <= 1e-12,
            "run {run_id}: fc_fit {fit} vs {want_fit} from DIR/fc"
        );
        assert!(
            (mean - want_mean).abs() <= 1e-12,
            "run {run_id}: fc_mean {mean} vs {want_mean} from DIR/fc"
        );
        spread = spread.max(
            sim.iter().cloned().fold(f64::MIN, f64::max)
                - sim.iter().cloned().fold(f64::MAX, f64::min),
        );
    }
    assert!(
        spread > 0.01,
        "the simulated FC is flat ({spread}): fc_fit says nothing"
    );
}

/// `--resume` after a complete run leaves every part as it was; after the `nodes` part is
/// removed (a crash between writes) it runs the shard again, to the same bits.
#[test]
fn resume_skips_a_complete_network_shard_and_reruns_an_incomplete_one() {
    let dir = TempDir::new().unwrap();
    let spec = write_noisy_sweep(dir.path());
    let out = dir.path().join("out");
    run(&spec, &out, &[]).expect_code(0);
    let before = parts(&out);
    assert_eq!(
        before.len(),
        KINDS.len(),
        "one part of each kind: {before:?}"
    );
    let tables: Vec<Table> = KINDS.iter().map(|k| Table::read_dir(&out, k)).collect();
    let mtimes = |out: &Path| -> Vec<std::time::SystemTime> {
        parts(out)
            .iter()
            .map(|(p, _)| fs::metadata(out.join(p)).unwrap().modified().unwrap())
            .collect()
    };
    let stamps = mtimes(&out);

    run(&spec, &out, &["--resume"]).expect_code(0);
    assert_eq!(
        parts(&out),
        before,
        "a skipped shard's parts keep their bytes"
    );
    assert_eq!(
        mtimes(&out),
        stamps,
        "a skipped shard's parts are not rewritten"
    );

    let nodes_parts: Vec<PathBuf> = before
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| p.starts_with("nodes"))
        .collect();
    assert_eq!(nodes_parts.len(), 1);
    fs::remove_file(out.join(&nodes_parts[0])).unwrap();
    run(&spec, &out, &["--resume"]).expect_code(0);
    assert!(
        out.join(&nodes_parts[0]).is_file(),
        "the nodes part is written again"
    );
    for (kind, table) in KINDS.iter().zip(&tables) {
        assert_tables_bitwise_equal(
            table,
            &Table::read_dir(&out, kind),
            &format!("{kind} after the rerun"),
        );
    }
}

/// `mpr-sweep status DIR [--json]`.
fn status(out: &Path) -> (Outcome, Value) {
    let text = mpr_sweep().args(["status", s(out)]).outcome();
    let json = mpr_sweep().args(["status", s(out), "--json"]).outcome();
    assert_eq!(
        text.code, json.code,
        "text and JSON agree on the exit status"
    );
    let value = serde_json::from_str(&json.stdout).expect("status --json prints JSON");
    (text, value)
}

/// `status` checks every table of a network sweep (summary, traces, nodes, FC) and the
/// network files: a shard whose nodes part is missing is incomplete and listed for
/// resubmission, and parts computed from other contents of the files than the directory's
/// copies are reported corrupt, naming both hashes.
#[test]
fn status_checks_every_table_of_a_network_sweep_and_its_files() {
    let dir = TempDir::new().unwrap();
    let spec = write_noisy_sweep(dir.path());
    let out = dir.path().join("out");
    run(&spec, &out, &["--shard", "0/2"]).expect_code(0);
    run(&spec, &out, &["--shard", "1/2"]).expect_code(0);
    let (text, v) = status(&out);
    text.expect_code(0);
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["other_network_files"], false, "{v}");
    for part in v["parts"].as_array().unwrap() {
        for kind in KINDS {
            assert_eq!(part[kind]["state"], "complete", "{kind}: {part}");
        }
    }

    let nodes = out.join("nodes/part-00001-of-00002.parquet");
    fs::remove_file(&nodes).unwrap();
    let (text, v) = status(&out);
    text.expect_code(1);
    assert_eq!(v["missing_shards"], serde_json::json!([1]), "{v}");
    assert_eq!(v["parts"][1]["nodes"]["state"], "missing", "{v}");
    assert_eq!(v["parts"][1]["fc"]["state"], "complete", "{v}");
    assert_eq!(v["parts"][0]["nodes"]["state"], "complete", "{v}");
    assert!(
        text.stdout
            .contains("shard 1: runs 6..12 (summary, traces, fc written, nodes missing)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("--array=1 "), "{}", text.stdout);
    run(&spec, &out, &["--resume", "--shard", "1/2"]).expect_code(0);
    status(&out).0.expect_code(0);

    // The directory's copy of the weights no longer holds what the parts were computed
    // from.
    let mut case = case_b();
    case.w[0][1] *= 0.5;
    write_case_b(&out, &case);
    let (text, v) = status(&out);
    text.expect_code(1);
    assert_eq!(v["corrupt_shards"], serde_json::json!([0, 1]), "{v}");
    for kind in KINDS {
        let reason = v["parts"][0][kind]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("computed from other network files (mpr_sweep.network_sha256 "),
            "{kind}: {reason}"
        );
    }
    assert_eq!(v["other_network_files"], true, "{v}");
    assert_eq!(v["parts"][1]["fc"]["other_network_files"], true, "{v}");
    // Resubmitting cannot help (`run` refuses the directory): the report says what can.
    assert!(
        text.stdout.contains("computed from other network files")
            && text.stdout.contains("rerun every shard with --overwrite")
            && !text.stdout.contains("sbatch --array"),
        "{}",
        text.stdout
    );

    // Without the files there is nothing to check the parts against: exit 2, naming it.
    fs::remove_file(out.join("len.csv")).unwrap();
    let outcome = mpr_sweep().args(["status", s(&out)]).outcome();
    outcome.expect_code(2);
    assert!(
        outcome
            .stderr
            .contains("cannot check the parts without the network files")
            && outcome.stderr.contains("network.tract_lengths_mm")
            && outcome.stderr.contains("len.csv"),
        "{}",
        outcome.stderr
    );
}

/// The same spec text over changed network files: `--resume` (and a plain run of another
/// shard) refuses the directory, naming the part and both sha256 prefixes, rather than mix
/// two networks' results; `--overwrite` recomputes every part with the new files.
#[test]
fn resume_refuses_parts_of_other_network_files() {
    let dir = TempDir::new().unwrap();
    let spec = write_noisy_sweep(dir.path());
    let out = dir.path().join("out");
    run(&spec, &out, &["--shard", "0/2"]).expect_code(0);
    let before = parts(&out);
    // Half the weight of one edge.
    let mut case = case_b();
    case.w[0][1] *= 0.5;
    write_case_b(dir.path(), &case);
    for args in [
        &["--resume", "--shard", "0/2"][..],
        &["--shard", "1/2"][..],
        &["--resume", "--shard", "1/2"][..],
    ] {
        let outcome = run(&spec, &out, args);
        outcome.expect_code(2);
        let line = outcome.stderr.trim();
        assert!(
            line.contains("part-00000-of-00002.parquet")
                && line.contains("computed with other network files")
                && line.matches("network_sha256").count() == 1
                && line.contains("--overwrite"),
            "{args:?}: {line}"
        );
        assert_eq!(parts(&out), before, "{args:?}: nothing changed");
    }
    run(&spec, &out, &["--overwrite", "--shard", "0/2"]).expect_code(0);
    run(&spec, &out, &["--resume", "--shard", "1/2"]).expect_code(0);
    // Every part now carries the new files' hash: a rerun from scratch gives the same bits.
    let fresh = dir.path().join("fresh");
    run(&spec, &fresh, &["--shard", "0/2"]).expect_code(0);
    run(&spec, &fresh, &["--shard", "1/2"]).expect_code(0);
    assert_eq!(parts(&out), parts(&fresh));
}

/// The result directory holds copies of the network's files at the spec's relative
/// paths, so its `spec.yaml` reruns to the same bits from anywhere; a file named by an
/// absolute path is read where it is and not copied.
#[test]
fn the_result_directory_reruns_from_its_own_spec() {
    let dir = TempDir::new().unwrap();
    let spec = write_noisy_sweep(dir.path());
    // The FC target by absolute path, the rest relative.
    let text = fs::read_to_string(&spec).unwrap().replace(
        "fc_target: fc.csv",
        &format!("fc_target: {}", dir.path().join("fc.csv").display()),
    );
    fs::write(&spec, text).unwrap();
    let out = dir.path().join("out");
    run(&spec, &out, &[]).expect_code(0);
    for name in ["w.txt", "len.csv", "names.txt"] {
        assert_eq!(
            fs::read(out.join(name)).unwrap(),
            fs::read(dir.path().join(name)).unwrap(),
            "{name} is copied"
        );
    }
    assert!(
        !out.join("fc.csv").exists(),
        "an absolute path is not copied"
    );
    // Rerun from the copy, elsewhere, with the originals gone.
    for name in ["w.txt", "len.csv", "names.txt"] {
        fs::remove_file(dir.path().join(name)).unwrap();
    }
    let again = dir.path().join("again");
    run(&out.join("spec.yaml"), &again, &[]).expect_code(0);
    assert_eq!(parts(&again), parts(&out));
    // And resuming the directory from its own spec finds it complete.
    run(&out.join("spec.yaml"), &out, &["--resume"]).expect_code(0);
}

/// One bad network input: files to write, the spec, and what the error line must name.
struct Bad {
    what: &'static str,
    files: &'static [(&'static str, &'static str)],
    spec: &'static str,
    key: &'static str,
    /// The file the message names: a data file, or `spec.yaml` for the spec's own keys.
    file: &'static str,
    /// A piece of the message: what is wrong.
    message: &'static str,
}

const W4: &str = "0 1 0 1\n1 0 1 0\n0 1 0 1\n1 0 1 0\n";
const L4: &str = "0,1,2,3\n1,0,1,2\n2,1,0,1\n3,2,1,0\n";
const BASE: &str = "simulation: {duration_ms: 2}\n";

const BAD: &[Bad] = &[
    Bad {
        what: "non-square weights",
        files: &[("w.txt", "0 1 2\n1 0 2\n")],
        spec: "network: {weights: w.txt, k: 0.5}\n",
        key: "network.weights",
        file: "w.txt",
        message: "must be square",
    },
    Bad {
        what: "NaN in the weights",
        files: &[("w.txt", "0 1 0 1\n1 0 NaN 0\n0 1 0 1\n1 0 1 0\n")],
        spec: "network: {weights: w.txt, k: 0.5}\n",
        key: "network.weights",
        file: "w.txt",
        message: "NaN at (row 1, column 2)",
    },
    Bad {
        what: "a negative tract length",
        files: &[
            ("w.txt", W4),
            ("len.csv", "0,1,2,3\n1,0,-1,2\n2,1,0,1\n3,2,1,0\n"),
        ],
        spec: "network: {weights: w.txt, tract_lengths_mm: len.csv, speed_mm_per_ms: 2.0, k: 0.5}\n",
        key: "network.tract_lengths_mm",
        file: "len.csv",
        message: "must be >= 0 mm",
    },
    Bad {
        what: "tract lengths of another shape",
        files: &[("w.txt", W4), ("len.csv", "0,1,2\n1,0,1\n2,1,0\n")],
        spec: "network: {weights: w.txt, tract_lengths_mm: len.csv, speed_mm_per_ms: 2.0, k: 0.5}\n",
        key: "network.tract_lengths_mm",
        file: "len.csv",
        message: "must have the same shape",
    },
    Bad {
        what: "a missing weights file",
        files: &[],
        spec: "network: {weights: missing.txt, k: 0.5}\n",
        key: "network.weights",
        file: "missing.txt",
        message: "cannot read",
    },
    Bad {
        what: "fewer names than nodes",
        files: &[("w.txt", W4), ("names.txt", "A\nB\nC\n")],
        spec: "network: {weights: w.txt, k: 0.5, node_names: names.txt}\n",
        key: "network.node_names",
        file: "names.txt",
        message: "3 names, but the network has 4 nodes",
    },
    Bad {
        what: "tract lengths without a speed",
        files: &[("w.txt", W4), ("len.csv", L4)],
        spec: "network: {weights: w.txt, tract_lengths_mm: len.csv, k: 0.5}\n",
        key: "network.tract_lengths_mm",
        file: "spec.yaml",
        message: "need `network.speed_mm_per_ms`",
    },
    Bad {
        what: "no k",
        files: &[("w.txt", W4)],
        spec: "network: {weights: w.txt}\n",
        key: "network",
        file: "spec.yaml",
        message: "needs `k`",
    },
    Bad {
        what: "output.fc without a network",
        files: &[],
        spec: "output: {fc: true}\n",
        key: "output.fc",
        file: "spec.yaml",
        message: "needs a `network` section",
    },
    Bad {
        what: "an FC target of another shape",
        files: &[
            ("w.txt", W4),
            ("fc.csv", "1,0.5,0.1\n0.5,1,0.2\n0.1,0.2,1\n"),
        ],
        spec: "network: {weights: w.txt, k: 0.5, fc_target: fc.csv}\n",
        key: "network.fc_target",
        file: "fc.csv",
        message: "expected 4 x 4",
    },
    Bad {
        what: "node offsets making tau_ms <= 0",
        files: &[("w.txt", W4), ("tau.txt", "0\n0\n-1\n0.5\n")],
        spec: "model: {tau_ms: 1.0}\nnetwork: {weights: w.txt, k: 0.5, node_offsets: {tau_ms: tau.txt}}\n",
        key: "network.node_offsets.tau_ms",
        file: "tau.txt",
        message: "tau_ms must be > 0",
    },
    Bad {
        what: "simulation.adaptive with a network",
        files: &[("w.txt", W4)],
        spec: "simulation: {method: dopri5, adaptive: {rtol: 1.0e-8}}\nnetwork: {weights: w.txt, k: 0.5}\n",
        key: "network",
        file: "spec.yaml",
        message: "remove `simulation.adaptive`",
    },
];

/// Every bad input: exit 2, one error line naming the spec, the key, the file and what is
/// wrong, nothing written to the result directory.
#[test]
fn bad_network_inputs_exit_2_naming_the_key_and_the_file() {
    let mut wrong = Vec::new();
    for case in BAD {
        let dir = TempDir::new().unwrap();
        for (name, text) in case.files {
            write_file(dir.path(), name, text);
        }
        let spec_text = if case.spec.starts_with("simulation") {
            case.spec.to_string()
        } else {
            format!("{BASE}{}", case.spec)
        };
        let spec = write_file(dir.path(), "spec.yaml", &spec_text);
        let out = dir.path().join("out");
        let res = run(&spec, &out, &[]);
        let line = res.stderr.trim_end();
        let head = format!("mpr-sweep: error: {}: {}", s(&spec), case.key);
        let ok = res.code == Some(2)
            && res.stderr.lines().count() == 1
            && line.starts_with(&head)
            && line.contains(case.file)
            && line.contains(case.message)
            && res.stdout.is_empty()
            && !res.stderr.contains("panicked")
            && files_under(&out).is_empty();
        if !ok {
            wrong.push(format!(
                "{}: want exit 2 and one line starting {head:?} naming {} and saying {:?}, \
                 nothing in {}\n{}",
                case.what,
                case.file,
                case.message,
                out.display(),
                res.describe()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// `plot --fc RUN` draws a run's FC matrix (N x N, the diagonal 1, symmetric), `fc_fit`
/// maps over the swept axes like any summary column, and `--traces` refuses a network's
/// traces (one row per node) with exit status 2 instead of drawing nonsense.
#[test]
fn plot_draws_a_network_runs_fc_and_refuses_its_traces() {
    let dir = TempDir::new().unwrap();
    let spec = write_noisy_sweep(dir.path());
    let out = dir.path().join("out");
    let done = run(&spec, &out, &["--threads", "1"]);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let plot = |args: &[&str]| {
        mpr_sweep()
            .arg("plot")
            .arg(s(&out))
            .args(args)
            .timeout(TIMEOUT)
            .outcome()
    };
    let png = dir.path().join("fc.png");
    let drawn = plot(&["--fc", "3", "-o", s(&png)]);
    assert_eq!(drawn.code, Some(0), "{}", drawn.stderr);
    assert!(
        drawn.stderr.contains("FC of run 3, 4 nodes"),
        "{}",
        drawn.stderr
    );
    assert!(fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    let map = dir.path().join("fit.png");
    let drawn = plot(&[
        "--x",
        "k",
        "--y",
        "replicate",
        "--color",
        "fc_fit",
        "-o",
        s(&map),
    ]);
    assert_eq!(drawn.code, Some(0), "{}", drawn.stderr);
    assert!(
        drawn.stderr.contains("fc_fit over k (4) x replicate (3)"),
        "{}",
        drawn.stderr
    );

    let refused = plot(&["--traces", "0", "-o", s(&dir.path().join("t.png"))]);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("network's traces"),
        "{}",
        refused.stderr
    );
    let missing = plot(&["--fc", "99", "-o", s(&dir.path().join("x.png"))]);
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);
    assert!(missing.stderr.contains("run 99"), "{}", missing.stderr);
}

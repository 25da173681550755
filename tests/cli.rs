//! End-to-end tests of the `mpr-sweep` command line (DESIGN.md sections 3, 5 and 6): exit
//! statuses, spec errors with key paths and positions, `plan` output, and what `run` writes
//! to its result directory. Every spec is tiny, so the whole file runs in a few seconds.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use common::run::{Outcome, files_under, mpr_sweep, write_file};
use common::table::part_meta;

/// A small valid spec: 2 points x 2 replicates = 4 runs of 100 steps.
const SMALL: &str = "\
name: cli-small
model:
  eta: [-5, -4]
simulation: {duration_ms: 1}
sweep: {replicates: 2}
";

/// The paper's bistability map from DESIGN.md section 3, planned but never run.
const BIG: &str = "\
model:
  eta: {linspace: [-10, 0, 101]}
  J: {linspace: [0, 30, 61]}
  delta: [0.5, 1.0, 2.0]
sweep: {replicates: 4}
";

const WHOLE_PART: &str = "summary/part-00000-of-00001.parquet";

fn exec<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    mpr_sweep().args(args).outcome()
}

fn plan(spec: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec![OsStr::new("plan"), spec.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    exec(args)
}

fn run(spec: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec![
        OsStr::new("run"),
        spec.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    exec(args)
}

fn plan_json(spec: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = plan(spec, &args);
    out.expect_code(0);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("plan --json is not JSON ({e}):\n{}", out.stdout))
}

/// Parquet parts under `DIR/summary`, as names.
fn summary_parts(dir: &Path) -> Vec<String> {
    let summary = dir.join("summary");
    let Ok(entries) = fs::read_dir(&summary) else {
        return Vec::new();
    };
    let mut parts: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    parts.sort();
    parts
}

#[track_caller]
fn assert_no_hidden_files(dir: &Path) {
    let hidden: Vec<_> = files_under(dir)
        .into_iter()
        .filter(|p| {
            p.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        })
        .collect();
    assert!(
        hidden.is_empty(),
        "temporary files left in {}: {hidden:?}",
        dir.display()
    );
}

/// Rows and `mpr_sweep.*` key-value metadata of a Parquet part.
fn part_info(path: &Path) -> (i64, BTreeMap<String, String>) {
    let (kv, rows) = part_meta(path);
    let ours = kv
        .into_iter()
        .filter(|(k, _)| k.starts_with("mpr_sweep."))
        .collect();
    (rows, ours)
}

fn kv<'a>(pairs: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    pairs.get(key).map(String::as_str)
}

fn last_line(text: &str) -> &str {
    text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// 1. Exit statuses and spec errors
// ---------------------------------------------------------------------------------------

/// A spec the tool must refuse: its text, the key path and position of the error, and a
/// piece of the message.
struct Bad {
    what: &'static str,
    text: &'static str,
    path: &'static str,
    /// `(line, column)` where the error is at a known place; `None` to check only the path.
    at: Option<(usize, usize)>,
    message: &'static str,
}

const BAD_SPECS: &[Bad] = &[
    Bad {
        what: "unknown key",
        text: "model:\n  eta: 1\n  foo: 2\n",
        path: "model.foo",
        // Where exactly is checked by `unknown_key_error_points_at_the_key`.
        at: None,
        message: "unknown key `foo`",
    },
    Bad {
        what: "unknown top-level key",
        text: "modle: {eta: 1}\n",
        path: "modle",
        at: None,
        message: "unknown key `modle`",
    },
    Bad {
        what: "wrong type (string for a number)",
        text: "model:\n  eta: abc\n",
        path: "model.eta",
        at: Some((2, 8)),
        message: "got a string",
    },
    Bad {
        what: "wrong type (fraction for a whole number)",
        text: "sweep:\n  replicates: 1.5\n",
        path: "sweep.replicates",
        at: Some((2, 15)),
        message: "whole number",
    },
    Bad {
        what: "wrong type (list for the whole spec)",
        text: "- 1\n- 2\n",
        path: "spec",
        at: Some((1, 1)),
        message: "expected a mapping",
    },
    Bad {
        what: "empty axis",
        text: "model:\n  J: []\n",
        path: "model.J",
        at: Some((2, 6)),
        message: "at least one value",
    },
    Bad {
        what: "empty linspace",
        text: "model:\n  J: {linspace: [0, 1, 0]}\n",
        path: "model.J.linspace[2]",
        at: Some((2, 24)),
        message: "at least one value",
    },
    Bad {
        what: "NaN",
        text: "model:\n  eta: .nan\n",
        path: "model.eta",
        at: Some((2, 8)),
        message: "NaN",
    },
    Bad {
        what: "NaN inside an axis",
        text: "model:\n  delta: [1, .nan]\n",
        path: "model.delta[1]",
        at: Some((2, 14)),
        message: "NaN",
    },
    Bad {
        what: "tau_ms = 0",
        text: "model:\n  tau_ms: 0\n",
        path: "model.tau_ms",
        at: Some((2, 11)),
        message: "tau_ms must be > 0",
    },
    Bad {
        what: "tau_ms <= 0 inside an axis",
        text: "model:\n  tau_ms: [1, 0.5, -1]\n",
        path: "model.tau_ms",
        at: Some((2, 11)),
        message: "tau_ms must be > 0",
    },
    Bad {
        what: "delta < 0",
        text: "model:\n  delta: -1\n",
        path: "model.delta",
        at: Some((2, 10)),
        message: "delta must be >= 0",
    },
    Bad {
        what: "dt_ms = 0",
        text: "simulation:\n  dt_ms: 0\n",
        path: "simulation.dt_ms",
        at: Some((2, 10)),
        message: "dt_ms must be > 0",
    },
    Bad {
        what: "transient_ms = duration_ms",
        text: "simulation:\n  duration_ms: 2\n  transient_ms: 2\n",
        path: "simulation.transient_ms",
        at: Some((3, 17)),
        message: "must be smaller than duration_ms",
    },
    Bad {
        what: "transient_ms > duration_ms, transient first",
        text: "simulation:\n  transient_ms: 5\n  duration_ms: 2\n",
        path: "simulation.transient_ms",
        at: Some((2, 17)),
        message: "must be smaller than duration_ms",
    },
    Bad {
        what: "every_ms not a multiple of dt_ms",
        text: "simulation:\n  duration_ms: 2\noutput:\n  traces:\n    every_ms: 0.015\n",
        path: "output.traces.every_ms",
        at: Some((5, 15)),
        message: "multiple of dt_ms",
    },
    Bad {
        what: "zip groups of unequal length",
        text: "model:\n  eta: [1, 2]\n  J: [1, 2, 3]\nsweep:\n  zip: [[eta, J]]\n",
        path: "sweep.zip[0][1]",
        at: Some((5, 15)),
        message: "equal lengths",
    },
    Bad {
        what: "zip naming a fixed parameter",
        text: "model:\n  eta: [1, 2]\n  J: 3\nsweep:\n  zip: [[eta, J]]\n",
        path: "sweep.zip[0][1]",
        at: Some((5, 15)),
        message: "not an axis",
    },
    Bad {
        what: "zip naming no parameter at all",
        text: "model:\n  eta: [1, 2]\nsweep:\n  zip:\n    - [eta, gamma]\n",
        path: "sweep.zip[0][1]",
        at: Some((5, 13)),
        message: "unknown parameter `gamma`",
    },
    Bad {
        what: "duplicate key",
        text: "model:\n  eta: 1\n  eta: 2\n",
        path: "model.eta",
        at: Some((3, 3)),
        message: "duplicate key",
    },
    Bad {
        what: "invalid YAML (bad indentation)",
        text: "model:\n  eta: 1\n   J: 2\n",
        path: "spec",
        at: Some((3, 5)),
        message: "invalid YAML",
    },
    Bad {
        what: "invalid YAML (unclosed flow list)",
        text: "model: {eta: [1, 2}\n",
        path: "spec",
        at: None,
        message: "invalid YAML",
    },
    // 2. Methods, noise, time-varying inputs and dt as an axis.
    Bad {
        what: "white noise with rk4, method first",
        text: "simulation:\n  method: rk4\nnoise:\n  v: {white: {sigma: 0.1}}\n",
        path: "noise.v.white",
        at: Some((4, 7)),
        message: "white noise cannot be used with method rk4",
    },
    Bad {
        what: "white noise with rk4, noise first",
        text: "noise:\n  r_hz:\n    white: {sigma: 0.1}\nsimulation: {method: rk4}\n",
        path: "noise.r_hz.white",
        at: Some((3, 5)),
        message: "white noise cannot be used with method rk4",
    },
    Bad {
        what: "OU noise without tau_ms",
        text: "noise:\n  v:\n    ou: {sigma: 1}\n",
        path: "noise.v.ou",
        at: Some((3, 9)),
        message: "ou noise needs `tau_ms`",
    },
    Bad {
        what: "OU noise with tau_ms = 0",
        text: "noise:\n  v:\n    ou: {sigma: 1, tau_ms: 0}\n",
        path: "noise.v.ou.tau_ms",
        at: Some((3, 28)),
        message: "tau_ms must be > 0",
    },
    Bad {
        what: "OU noise with tau_ms <= 0 inside an axis",
        text: "noise:\n  r_hz:\n    ou: {sigma: 1, tau_ms: [5, -1]}\n",
        path: "noise.r_hz.ou.tau_ms",
        at: Some((3, 28)),
        message: "tau_ms must be > 0",
    },
    Bad {
        what: "unknown noise kind",
        text: "noise:\n  v:\n    pink: {sigma: 1}\n",
        path: "noise.v.pink",
        at: Some((3, 5)),
        message: "unknown key `pink`",
    },
    Bad {
        what: "pulse without amplitude",
        text: "input:\n  v:\n    pulse: {start_ms: 10, stop_ms: 20}\n",
        path: "input.v.pulse",
        at: Some((3, 12)),
        message: "pulse needs `amplitude`",
    },
    Bad {
        what: "step without after",
        text: "input:\n  r_hz: {step: {at_ms: 10}}\n",
        path: "input.r_hz.step",
        at: Some((2, 16)),
        message: "step needs `after`",
    },
    Bad {
        what: "step with an unknown key",
        text: "input:\n  v:\n    step: {at_ms: 10, after: 1, when: 2}\n",
        path: "input.v.step.when",
        at: Some((3, 33)),
        message: "unknown key `when`",
    },
    Bad {
        what: "sine with a negative freq_hz",
        text: "input:\n  v:\n    sine: {amplitude: 1, freq_hz: -5}\n",
        path: "input.v.sine.freq_hz",
        at: Some((3, 35)),
        message: "freq_hz must be >= 0",
    },
    Bad {
        what: "sine with a negative freq_hz inside an axis",
        text: "input:\n  v:\n    sine: {amplitude: 1, freq_hz: [10, -5]}\n",
        path: "input.v.sine.freq_hz",
        at: Some((3, 35)),
        message: "freq_hz must be >= 0",
    },
    Bad {
        what: "dt_ms axis with traces but no every_ms",
        text: "simulation:\n  dt_ms: [0.01, 0.02]\noutput:\n  traces: {runs: all}\n",
        path: "output.traces",
        at: Some((4, 11)),
        message: "give every_ms",
    },
    Bad {
        what: "every_ms not a multiple of one of the dt values",
        text: "simulation:\n  dt_ms: [0.01, 0.004]\noutput:\n  traces: {every_ms: 0.01, runs: all}\n",
        path: "output.traces.every_ms",
        at: Some((4, 22)),
        message: "multiple of dt_ms (0.004)",
    },
    Bad {
        what: "dt_ms <= 0 inside an axis",
        text: "simulation:\n  dt_ms: [0.01, 0]\n",
        path: "simulation.dt_ms",
        at: Some((2, 10)),
        message: "dt_ms must be > 0",
    },
    Bad {
        what: "zip naming the constant input of a variable with a pulse",
        text: "input:\n  v: {pulse: {start_ms: 1, stop_ms: 2, amplitude: [1, 2]}}\nsweep:\n  zip: [[input_v_amplitude, input_v]]\n",
        path: "sweep.zip[0][1]",
        at: Some((4, 29)),
        message: "`input_v` is not an axis",
    },
    Bad {
        what: "unknown method",
        text: "simulation:\n  method: rk5\n",
        path: "simulation.method",
        at: Some((2, 11)),
        message: "unknown method `rk5`",
    },
];

#[track_caller]
fn assert_spec_error(out: &Outcome, spec: &Path, bad: &Bad) {
    let what = bad.what;
    assert_eq!(
        out.code,
        Some(2),
        "{what}: bad spec must exit 2\n{}",
        out.describe()
    );
    let head = match bad.at {
        Some((line, col)) => format!(
            "mpr-sweep: error: {}: {} (line {line}, column {col}): ",
            spec.display(),
            bad.path
        ),
        None => format!("mpr-sweep: error: {}: {} (line ", spec.display(), bad.path),
    };
    assert!(
        out.stderr.starts_with(&head),
        "{what}: stderr must start with {head:?}\n{}",
        out.describe()
    );
    assert!(
        out.stderr.contains(bad.message),
        "{what}: stderr must contain {:?}\n{}",
        bad.message,
        out.describe()
    );
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "{what}: one message\n{}",
        out.describe()
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: nothing on stdout\n{}",
        out.describe()
    );
}

#[test]
fn bad_specs_exit_2_naming_key_path_and_position_and_write_nothing() {
    let tmp = TempDir::new().unwrap();
    for (i, bad) in BAD_SPECS.iter().enumerate() {
        let spec = write_file(tmp.path(), &format!("bad-{i}.yaml"), bad.text);
        assert_spec_error(&plan(&spec, &[]), &spec, bad);
        let out_dir = tmp.path().join(format!("out-{i}"));
        assert_spec_error(&run(&spec, &out_dir, &[]), &spec, bad);
        assert!(
            summary_parts(&out_dir).is_empty(),
            "{}: a refused spec wrote {:?}",
            bad.what,
            summary_parts(&out_dir)
        );
        assert!(
            files_under(&out_dir).is_empty(),
            "{}: a refused spec wrote {:?}",
            bad.what,
            files_under(&out_dir)
        );
    }
}

#[test]
fn bad_spec_does_not_touch_an_existing_result_directory() {
    let tmp = TempDir::new().unwrap();
    let good = write_file(tmp.path(), "good.yaml", SMALL);
    let out_dir = tmp.path().join("out");
    run(&good, &out_dir, &["--quiet"]).expect_code(0);
    let before: Vec<_> = files_under(&out_dir)
        .into_iter()
        .map(|p| (fs::read(out_dir.join(&p)).unwrap(), p))
        .collect();
    let bad = write_file(tmp.path(), "bad.yaml", "model:\n  eta: .nan\n");
    let out = run(&bad, &out_dir, &["--overwrite"]);
    out.expect_code(2);
    assert!(out.stderr.contains("model.eta"), "{}", out.describe());
    let after: Vec<_> = files_under(&out_dir)
        .into_iter()
        .map(|p| (fs::read(out_dir.join(&p)).unwrap(), p))
        .collect();
    assert!(
        before == after,
        "a refused spec changed {}",
        out_dir.display()
    );
}

/// The position of an unknown key is the key's own, like a duplicate key's, not its
/// value's (which for a block mapping starts on the next line).
#[test]
fn unknown_key_error_points_at_the_key() {
    let tmp = TempDir::new().unwrap();
    let cases = [
        (
            "modle:\n  eta: 1\n",
            "modle (line 1, column 1): unknown key",
        ),
        (
            "model:\n  eta: 1\n  foo: 2\n",
            "model.foo (line 3, column 3): unknown key",
        ),
        (
            "model:\n  foo:\n    bar: 1\n",
            "model.foo (line 2, column 3): unknown key",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let spec = write_file(tmp.path(), &format!("s{i}.yaml"), text);
        let out = plan(&spec, &[]);
        out.expect_code(2);
        assert!(
            out.stderr.contains(expected),
            "spec {text:?}: expected {expected:?}\n{}",
            out.describe()
        );
    }
}

#[test]
fn missing_spec_file_exits_2_naming_it() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("no-such-spec.yaml");
    let out = plan(&missing, &[]);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(&format!(
            "mpr-sweep: error: {}: cannot read spec",
            missing.display()
        )),
        "{}",
        out.describe()
    );
    let out_dir = tmp.path().join("out");
    let out = run(&missing, &out_dir, &[]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{}",
        out.describe()
    );
    assert!(!out_dir.exists(), "run created {}", out_dir.display());
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let cases: [(&[&str], &str); 6] = [
        (&["--shard", "3/3"], "3/3"),
        (&["--shard", "x"], "'x'"),
        (&["--shard", "1/0"], "1/0"),
        (&["--isa", "bogus"], "bogus"),
        (&["--threads", "0"], "--threads"),
        (&["--frobnicate"], "--frobnicate"),
    ];
    for (i, (args, needle)) in cases.iter().enumerate() {
        let out_dir = tmp.path().join(format!("out-{i}"));
        let out = run(&spec, &out_dir, args);
        assert_eq!(out.code, Some(2), "{args:?}\n{}", out.describe());
        assert!(
            out.stderr.contains(needle),
            "{args:?}: stderr must mention {needle:?}\n{}",
            out.describe()
        );
        assert!(
            !out_dir.exists(),
            "{args:?}: run created {}",
            out_dir.display()
        );
    }
    // `run` without --out and `plan --shards 0` are usage errors too.
    let out = exec([OsStr::new("run"), spec.as_os_str()]);
    out.expect_code(2);
    assert!(out.stderr.contains("--out"), "{}", out.describe());
    let out = plan(&spec, &["--shards", "0"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--shards"), "{}", out.describe());
    let out = exec(["frobnicate"]);
    out.expect_code(2);
}

/// Each `--isa` path runs where this CPU has it (and says so in the metadata and on
/// stderr), and is refused with exit 2 naming the missing features where it does not.
#[test]
fn each_isa_runs_where_the_cpu_has_it_and_is_refused_elsewhere() {
    use mpr_sweep::integrate::Isa;
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    for (arg, isa) in [
        ("portable", Isa::Portable),
        ("avx2", Isa::Avx2Fma),
        ("avx512", Isa::Avx512),
    ] {
        let out_dir = tmp.path().join(arg);
        let out = run(&spec, &out_dir, &["--isa", arg]);
        if isa.is_available() {
            out.expect_code(0);
            assert!(out.stderr.contains(isa.name()), "{}", out.describe());
            let (rows, meta) = part_info(&out_dir.join(WHOLE_PART));
            assert_eq!(rows, 4);
            assert_eq!(kv(&meta, "mpr_sweep.isa"), Some(isa.name()));
        } else {
            eprintln!("no {} on this CPU: --isa {arg} is refused", isa.features());
            out.expect_code(2);
            let want = format!("--isa {arg}: this CPU lacks {}", isa.features());
            assert!(out.stderr.contains(&want), "{}", out.describe());
            assert!(!out_dir.exists(), "run created {}", out_dir.display());
        }
    }
    let auto = run(&spec, &tmp.path().join("auto"), &[]);
    auto.expect_code(0);
    assert!(
        auto.stderr.contains(&format!("({})", Isa::detect().name())),
        "{}",
        auto.describe()
    );
}

#[test]
fn plan_and_run_of_a_small_valid_spec_exit_0() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = plan(&spec, &[]);
    out.expect_code(0);
    assert!(out.stderr.is_empty(), "{}", out.describe());
    assert!(
        out.stdout.contains("sweep: cli-small"),
        "{}",
        out.describe()
    );
    let out_dir = tmp.path().join("out");
    run(&spec, &out_dir, &[]).expect_code(0);
    assert!(out_dir.join(WHOLE_PART).is_file());
}

/// Specs that earlier versions refused and that must now plan and run: each method, OU
/// noise, every input form and `dt_ms` as an axis. Each is tiny (at most a few thousand
/// run-steps).
const NOW_VALID: &[(&str, &str, u64)] = &[
    (
        "method rk4",
        "simulation:\n  method: rk4\n  duration_ms: 1\n",
        1,
    ),
    (
        "method rk4 with OU noise",
        "noise: {v: {ou: {sigma: 1, tau_ms: 5}}}\nsimulation: {method: rk4, duration_ms: 1}\n",
        1,
    ),
    (
        "method heun with white noise",
        "noise: {v: {white: {sigma: 0.1}}}\nsimulation: {method: heun, duration_ms: 1}\n",
        1,
    ),
    (
        "method euler",
        "simulation: {method: euler, duration_ms: 1}\n",
        1,
    ),
    (
        "OU noise",
        "noise: {v: {ou: {sigma: 1, tau_ms: 5}}}\nsimulation: {duration_ms: 1}\n",
        1,
    ),
    (
        "OU noise on r_hz with a tau_ms axis",
        "noise:\n  r_hz: {ou: {sigma: 10, tau_ms: [1, 5, 20]}}\nsimulation: {duration_ms: 1}\n",
        3,
    ),
    (
        "pulse input",
        "input: {v: {pulse: {start_ms: 0.2, stop_ms: 0.5, amplitude: 3.0}}}\nsimulation: {duration_ms: 1}\n",
        1,
    ),
    (
        "the pulse input of the spec reference",
        "input: {v: {pulse: {start_ms: 100, stop_ms: 150, amplitude: 3.0}}}\nsimulation: {duration_ms: 500}\n",
        1,
    ),
    (
        "step input without before, swept after",
        "input:\n  r_hz:\n    step: {at_ms: 0.5, after: [0, 100]}\nsimulation: {duration_ms: 1}\n",
        2,
    ),
    (
        "sine input without phase and offset",
        "input:\n  v:\n    sine: {amplitude: 1, freq_hz: 40}\nsimulation: {duration_ms: 1}\n",
        1,
    ),
    (
        "new parameters in a zip group",
        "input: {v: {pulse: {start_ms: 0.2, stop_ms: 0.5, amplitude: [1, 2]}}}\nnoise: {v: {ou: {sigma: 1, tau_ms: [2, 4]}}}\nsimulation: {duration_ms: 1}\nsweep: {zip: [[input_v_amplitude, noise_v_tau_ms]]}\n",
        2,
    ),
    (
        "dt_ms in a zip group",
        "model: {eta: [-5, -4]}\nsimulation: {dt_ms: [0.01, 0.02], duration_ms: 1}\nsweep: {zip: [[eta, dt_ms]]}\n",
        2,
    ),
    (
        "dt_ms as an axis",
        "simulation: {dt_ms: [0.01, 0.02], duration_ms: 1}\n",
        2,
    ),
    (
        "dt_ms as an axis with traces",
        "simulation: {dt_ms: [0.01, 0.02], duration_ms: 1}\noutput: {traces: {every_ms: 0.1, runs: all}}\n",
        2,
    ),
];

#[test]
fn methods_ou_noise_time_varying_inputs_and_dt_axes_plan_and_run() {
    let tmp = TempDir::new().unwrap();
    for (i, &(what, text, runs)) in NOW_VALID.iter().enumerate() {
        let spec = write_file(tmp.path(), &format!("ok-{i}.yaml"), text);
        let out = plan(&spec, &[]);
        assert_eq!(out.code, Some(0), "{what}: plan\n{}", out.describe());
        assert!(out.stderr.is_empty(), "{what}: plan\n{}", out.describe());
        let json = plan_json(&spec, &[]);
        assert_eq!(json["runs"], runs, "{what}: {json:#}");
        let out_dir = tmp.path().join(format!("out-{i}"));
        let out = run(&spec, &out_dir, &["--quiet"]);
        assert_eq!(out.code, Some(0), "{what}: run\n{}", out.describe());
        let (rows, meta) = part_info(&out_dir.join(WHOLE_PART));
        assert_eq!(rows, runs as i64, "{what}");
        assert_eq!(
            kv(&meta, "mpr_sweep.runs"),
            Some(format!("0..{runs}").as_str()),
            "{what}: {meta:?}"
        );
        assert_eq!(
            out_dir.join("traces").is_dir(),
            text.contains("traces"),
            "{what}: {:?}",
            files_under(&out_dir)
        );
        assert_no_hidden_files(&out_dir);
    }
}

#[test]
fn plan_json_names_the_method_and_lists_dt_values_of_an_axis() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(
        tmp.path(),
        "rk4.yaml",
        "simulation: {method: rk4, dt_ms: 0.02}\n",
    );
    let json = plan_json(&spec, &[]);
    assert_eq!(json["method"], "rk4", "{json:#}");
    assert_eq!(json["dt_ms"], 0.02, "{json:#}");
    assert_eq!(json["steps_per_run"], 5000, "{json:#}");
    for method in ["exp_euler", "euler", "heun"] {
        let spec = write_file(
            tmp.path(),
            &format!("{method}.yaml"),
            &format!("simulation: {{method: {method}}}\n"),
        );
        assert_eq!(plan_json(&spec, &[])["method"], method);
    }

    // dt_ms as the last axis: a list of its values, and an axis like any other.
    let spec = write_file(
        tmp.path(),
        "dt.yaml",
        "model: {eta: [-5, -4]}\nsimulation:\n  dt_ms: [0.01, 0.005, 0.02]\n  duration_ms: 1\n",
    );
    let json = plan_json(&spec, &[]);
    assert_eq!(
        json["dt_ms"],
        serde_json::json!([0.01, 0.005, 0.02]),
        "{json:#}"
    );
    assert_eq!(json["points"], 6, "{json:#}");
    assert_eq!(json["runs"], 6, "{json:#}");
    // Steps of the smallest dt: 1 ms / 0.005 ms.
    assert_eq!(json["steps_per_run"], 200, "{json:#}");
    let names: Vec<&serde_json::Value> = json["axes"]
        .as_array()
        .expect("axes is a list")
        .iter()
        .map(|a| &a["names"])
        .collect();
    assert_eq!(
        names,
        [&serde_json::json!(["eta"]), &serde_json::json!(["dt_ms"])],
        "{json:#}"
    );
    assert_eq!(json["axes"][1]["len"], 3, "{json:#}");
    // The text plan shows the axis too.
    let out = plan(&spec, &[]);
    out.expect_code(0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["dt_ms", "3"])),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------
// 3. plan output
// ---------------------------------------------------------------------------------------

#[test]
fn plan_text_shows_points_runs_and_steps() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "big.yaml", BIG);
    let out = plan(&spec, &[]);
    out.expect_code(0);
    let text = &out.stdout;
    assert!(
        text.contains("points: 18483  x  replicates: 4  =  runs: 73932"),
        "{text}"
    );
    assert!(text.contains("steps per run: 10000 "), "{text}");
    assert!(text.contains("100 ms at dt 0.01 ms"), "{text}");
    // Axes in spec order with their lengths.
    let axis_lines: Vec<Vec<&str>> = text
        .lines()
        .take_while(|l| !l.starts_with("points:"))
        .filter(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        axis_lines,
        [["eta", "101"], ["J", "61"], ["delta", "3"]],
        "{text}"
    );
}

#[test]
fn plan_json_has_counts_axes_and_shards() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "big.yaml", BIG);
    let json = plan_json(&spec, &[]);
    assert_eq!(json["runs"], 73932, "{json:#}");
    assert_eq!(json["points"], 18483, "{json:#}");
    assert_eq!(json["replicates"], 4, "{json:#}");
    assert_eq!(json["steps_per_run"], 10000, "{json:#}");
    assert_eq!(json["dt_ms"], 0.01, "{json:#}");
    assert_eq!(json["duration_ms"], 100.0, "{json:#}");
    assert_eq!(json["method"], "exp_euler", "{json:#}");
    let axes: Vec<(String, u64)> = json["axes"]
        .as_array()
        .expect("axes is a list")
        .iter()
        .map(|a| {
            let names: Vec<&str> = a["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            (names.join("+"), a["len"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        axes,
        [
            ("eta".to_string(), 101),
            ("J".to_string(), 61),
            ("delta".to_string(), 3)
        ]
    );

    let json = plan_json(&spec, &["--shards", "4"]);
    let runs = json["runs"].as_u64().unwrap();
    let shards: Vec<(u64, u64)> = json["shard_runs"]
        .as_array()
        .expect("shard_runs is a list")
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect();
    assert_eq!(shards.len(), 4, "{json:#}");
    assert_eq!(shards[0].0, 0);
    assert_eq!(shards[3].1, runs);
    for w in shards.windows(2) {
        assert_eq!(w[0].1, w[1].0, "shards must be contiguous: {shards:?}");
    }
    for (i, &(a, b)) in shards.iter().enumerate() {
        let i = i as u64;
        assert_eq!((a, b), (i * runs / 4, (i + 1) * runs / 4), "shard {i}");
    }
}

#[test]
fn plan_json_puts_a_zip_group_on_one_axis() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(
        tmp.path(),
        "zip.yaml",
        "model:\n  eta: [-6, -5, -4]\n  delta: [0.5, 1.0]\n  J: [10, 15, 20]\nsweep:\n  zip: [[eta, J]]\n  replicates: 3\n",
    );
    let json = plan_json(&spec, &[]);
    assert_eq!(json["points"], 6, "{json:#}");
    assert_eq!(json["runs"], 18, "{json:#}");
    assert_eq!(json["axes"][0]["names"], serde_json::json!(["eta", "J"]));
    assert_eq!(json["axes"][0]["len"], 3);
    assert_eq!(json["axes"][1]["names"], serde_json::json!(["delta"]));
    assert_eq!(json["axes"].as_array().unwrap().len(), 2, "{json:#}");
}

// ---------------------------------------------------------------------------------------
// 5. The empty spec
// ---------------------------------------------------------------------------------------

#[test]
fn empty_spec_is_one_default_run() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "empty.yaml", "");
    let out = plan(&spec, &[]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("points: 1  x  replicates: 1  =  runs: 1"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("axes: none"), "{}", out.describe());
    let json = plan_json(&spec, &[]);
    assert_eq!(json["runs"], 1);
    assert_eq!(json["steps_per_run"], 10000);
    assert_eq!(json["axes"], serde_json::json!([]));

    // It runs (100 ms at 0.01 ms: 10^4 steps) and its spec.yaml is the empty text.
    let out_dir = tmp.path().join("out");
    run(&spec, &out_dir, &["--quiet"]).expect_code(0);
    assert_eq!(fs::read(out_dir.join("spec.yaml")).unwrap(), b"");
    let (rows, meta) = part_info(&out_dir.join(WHOLE_PART));
    assert_eq!(rows, 1);
    assert_eq!(kv(&meta, "mpr_sweep.runs"), Some("0..1"), "{meta:?}");
}

// ---------------------------------------------------------------------------------------
// 4. run
// ---------------------------------------------------------------------------------------

#[test]
fn run_writes_spec_and_one_summary_part() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out_dir = tmp.path().join("out");
    let out = run(&spec, &out_dir, &[]);
    out.expect_code(0);
    assert_eq!(
        fs::read(out_dir.join("spec.yaml")).unwrap(),
        SMALL.as_bytes()
    );
    assert_eq!(
        files_under(&out_dir),
        [PathBuf::from("spec.yaml"), PathBuf::from(WHOLE_PART)],
        "no traces were asked for"
    );
    let (rows, meta) = part_info(&out_dir.join(WHOLE_PART));
    assert_eq!(rows, 4);
    assert_eq!(kv(&meta, "mpr_sweep.shard"), Some("0/1"), "{meta:?}");
    assert_eq!(kv(&meta, "mpr_sweep.runs"), Some("0..4"), "{meta:?}");
    assert_eq!(kv(&meta, "mpr_sweep.spec"), Some(SMALL), "{meta:?}");
    assert_no_hidden_files(&out_dir);
    // The final line reports the runs and the speed.
    let last = last_line(&out.stderr);
    assert!(
        last.contains("4 runs") && last.contains("run-steps/s"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn run_with_traces_writes_a_trace_part() {
    let tmp = TempDir::new().unwrap();
    let text = "model: {eta: [-5, -4]}\nsimulation: {duration_ms: 1}\noutput:\n  traces: {every_ms: 0.1, runs: all}\n";
    let spec = write_file(tmp.path(), "s.yaml", text);
    let out_dir = tmp.path().join("out");
    run(&spec, &out_dir, &["--quiet"]).expect_code(0);
    let (rows, _) = part_info(&out_dir.join("traces/part-00000-of-00001.parquet"));
    // 2 runs x (initial state + 10 rows at 0.1 ms over 1 ms).
    assert_eq!(rows, 2 * 11);
    assert_no_hidden_files(&out_dir);
}

#[test]
fn run_one_shard_writes_its_own_part() {
    let tmp = TempDir::new().unwrap();
    // 3 points x 2 replicates = 6 runs; shard 1 of 3 holds runs 2..4.
    let text =
        "model:\n  eta: [-6, -5, -4]\nsimulation: {duration_ms: 1}\nsweep: {replicates: 2}\n";
    let spec = write_file(tmp.path(), "s.yaml", text);
    let out_dir = tmp.path().join("out");
    let out = run(&spec, &out_dir, &["--shard", "1/3"]);
    out.expect_code(0);
    assert_eq!(
        summary_parts(&out_dir),
        ["part-00001-of-00003.parquet"],
        "{}",
        out.describe()
    );
    let (rows, meta) = part_info(&out_dir.join("summary/part-00001-of-00003.parquet"));
    assert_eq!(rows, 2);
    assert_eq!(kv(&meta, "mpr_sweep.shard"), Some("1/3"), "{meta:?}");
    assert_eq!(kv(&meta, "mpr_sweep.runs"), Some("2..4"), "{meta:?}");
    assert!(
        last_line(&out.stderr).contains("2 runs"),
        "{}",
        out.describe()
    );
    assert_no_hidden_files(&out_dir);
}

#[test]
fn rerun_is_refused_without_resume_and_skipped_with_it() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out_dir = tmp.path().join("out");
    let part = out_dir.join(WHOLE_PART);
    run(&spec, &out_dir, &["--quiet"]).expect_code(0);
    // Backdate the part so that any rewrite shows in its mtime.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&part)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let bytes = fs::read(&part).unwrap();

    let out = run(&spec, &out_dir, &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("--resume"), "{}", out.describe());
    assert_eq!(fs::read(&part).unwrap(), bytes);
    assert_eq!(fs::metadata(&part).unwrap().modified().unwrap(), old);

    let out = run(&spec, &out_dir, &["--resume"]);
    out.expect_code(0);
    assert!(out.stderr.contains("skipped"), "{}", out.describe());
    assert_eq!(fs::read(&part).unwrap(), bytes, "--resume rewrote the part");
    assert_eq!(
        fs::metadata(&part).unwrap().modified().unwrap(),
        old,
        "--resume touched the part"
    );
    assert_eq!(
        fs::read(out_dir.join("spec.yaml")).unwrap(),
        SMALL.as_bytes()
    );
    assert_no_hidden_files(&out_dir);
}

#[test]
fn another_spec_is_refused_without_overwrite_and_replaces_with_it() {
    let tmp = TempDir::new().unwrap();
    let first = write_file(tmp.path(), "a.yaml", SMALL);
    let other_text = "model:\n  eta: [-5, -3, -1]\nsimulation: {duration_ms: 1}\n";
    let other = write_file(tmp.path(), "b.yaml", other_text);
    let out_dir = tmp.path().join("out");
    let part = out_dir.join(WHOLE_PART);
    run(&first, &out_dir, &["--quiet"]).expect_code(0);
    let bytes = fs::read(&part).unwrap();

    for flags in [&[][..], &["--resume"][..]] {
        let out = run(&other, &out_dir, flags);
        out.expect_code(2);
        assert!(
            out.stderr.contains("--overwrite"),
            "{flags:?}\n{}",
            out.describe()
        );
        assert_eq!(
            fs::read(&part).unwrap(),
            bytes,
            "{flags:?} changed the part"
        );
        assert_eq!(
            fs::read(out_dir.join("spec.yaml")).unwrap(),
            SMALL.as_bytes()
        );
    }

    run(&other, &out_dir, &["--overwrite", "--quiet"]).expect_code(0);
    assert_eq!(
        fs::read(out_dir.join("spec.yaml")).unwrap(),
        other_text.as_bytes()
    );
    let (rows, meta) = part_info(&part);
    assert_eq!(rows, 3, "the part holds the new spec's 3 runs");
    assert_eq!(kv(&meta, "mpr_sweep.spec"), Some(other_text));
    assert_eq!(summary_parts(&out_dir), ["part-00000-of-00001.parquet"]);
    assert_no_hidden_files(&out_dir);
}

#[test]
fn out_pointing_at_a_regular_file_is_refused() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, "keep me").unwrap();
    let out = run(&spec, &file, &[]);
    assert_ne!(out.code, Some(0), "{}", out.describe());
    assert!(out.code.is_some(), "killed by a signal\n{}", out.describe());
    assert!(
        out.stderr.contains(&file.display().to_string()),
        "stderr must name {}\n{}",
        file.display(),
        out.describe()
    );
    assert_eq!(fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn quiet_run_prints_nothing() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out_dir = tmp.path().join("out");
    let out = run(&spec, &out_dir, &["--quiet"]);
    out.expect_code(0);
    assert_eq!(out.stderr, "", "{}", out.describe());
    assert_eq!(out.stdout, "", "{}", out.describe());
    assert!(out_dir.join(WHOLE_PART).is_file());
    assert_no_hidden_files(&out_dir);
}

/// YAML allows a byte order mark at the start of the stream (editors on Windows write
/// one); it is not part of the first key.
#[test]
fn spec_with_a_utf8_byte_order_mark_is_accepted() {
    let tmp = TempDir::new().unwrap();
    let text = "\u{feff}model:\n  eta: [-5, -4]\n";
    let spec = write_file(tmp.path(), "bom.yaml", text);
    let out = plan(&spec, &["--json"]);
    out.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["runs"], 2, "{json:#}");
}

#[test]
fn plot_command_draws_a_png_and_refuses_unknown_columns() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(
        tmp.path(),
        "p.yaml",
        "model: {eta: [-6, -5, -4], J: [10, 15]}\nsimulation: {duration_ms: 2}\n\
         output: {traces: {every_ms: 0.1, runs: all}}\n",
    );
    let out = tmp.path().join("res");
    let ok = mpr_sweep()
        .args([
            "run",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output();
    assert_eq!(ok.status.code(), Some(0));
    let png = tmp.path().join("map.png");
    let o = mpr_sweep()
        .args([
            "plot",
            out.to_str().unwrap(),
            "--x",
            "eta",
            "--y",
            "J",
            "--color",
            "r_hz_mean",
            "-o",
            png.to_str().unwrap(),
        ])
        .output();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let traces = tmp.path().join("traces.png");
    let o = mpr_sweep()
        .args([
            "plot",
            out.to_str().unwrap(),
            "--traces",
            "0,5",
            "-o",
            traces.to_str().unwrap(),
        ])
        .output();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(traces.exists());
    let o = mpr_sweep()
        .args([
            "plot",
            out.to_str().unwrap(),
            "--x",
            "eta",
            "--y",
            "J",
            "--color",
            "no_such_column",
            "-o",
            png.to_str().unwrap(),
        ])
        .output();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mpr-sweep: error: ") && err.contains("no_such_column"),
        "{err}"
    );
}

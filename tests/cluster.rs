//! The cluster side of the command line (DESIGN.md sections 4-6, issue 5): `run` inside a
//! Slurm array task, `sbatch` scripts (checked as text and executed by bash as Slurm
//! would, one array task at a time), `status` of complete, missing and corrupt result
//! directories, and clean interruption of `run` by SIGTERM and SIGINT.
//!
//! Every child process starts without the Slurm variables of the environment running the
//! tests; the tests that need them set them explicitly.

#![cfg(unix)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use common::run::{
    Outcome, bin, command_without_slurm, file_names_under, mpr_sweep, s, write_file,
};
use common::table::part_meta;

/// 2 x 3 points x 2 replicates = 12 runs of 100 steps.
const SMALL: &str = "\
name: cluster-small
model:
  eta: [-5, -4]
  J: [10, 12, 14]
simulation: {duration_ms: 1}
sweep: {replicates: 2}
";

/// As SMALL, with traces of every run.
const TRACED: &str = "\
name: cluster-traced
model:
  eta: [-5, -4]
  J: [10, 12, 14]
simulation: {duration_ms: 1}
output:
  traces: {every_ms: 0.1, runs: all}
";

/// 40,000 runs of 100,000 steps: minutes in a debug build, interrupted after a moment.
const SLOW: &str = "\
name: cluster-slow
model:
  eta: {linspace: [-6, -4, 200]}
  J: {linspace: [10, 15, 200]}
simulation: {duration_ms: 1000}
";

/// One run of 10^14 steps (months): only the kernel's poll inside the time loop stops it.
const ENDLESS: &str = "\
name: cluster-endless
simulation: {duration_ms: 1e12}
";

/// 64 runs of 10^9 steps with rk4 and OU noise: two lane batches of many minutes each,
/// one on each of two threads.
const LONG_RUNS: &str = "\
name: cluster-long-runs
model:
  eta: {linspace: [-6, -4, 64]}
noise:
  v: {ou: {sigma: 0.1, tau_ms: 10}}
simulation: {duration_ms: 1e7, method: rk4}
";

fn mpr(args: &[&str]) -> Outcome {
    mpr_sweep().args(args).outcome()
}

fn part(dir: &Path, kind: &str, i: u64, n: u64) -> PathBuf {
    dir.join(kind)
        .join(format!("part-{i:05}-of-{n:05}.parquet"))
}

fn status_json(dir: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["status", s(dir), "--json"];
    args.extend_from_slice(extra);
    let out = mpr(&args);
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}{}", out.stdout, out.stderr));
    (out.code, v)
}

// ---------------------------------------------------------------- run in an array task

fn array_env(id: u64) -> Vec<(&'static str, String)> {
    vec![
        ("SLURM_ARRAY_TASK_ID", id.to_string()),
        ("SLURM_ARRAY_TASK_MIN", "10".into()),
        ("SLURM_ARRAY_TASK_MAX", "22".into()),
        ("SLURM_ARRAY_TASK_STEP", "2".into()),
        ("SLURM_ARRAY_TASK_COUNT", "7".into()),
        ("SLURM_ARRAY_JOB_ID", "4242".into()),
        ("SLURM_JOB_ID", (5000 + id).to_string()),
        ("SLURM_CPUS_PER_TASK", "1".into()),
        ("SLURM_CPUS_ON_NODE", "2".into()),
    ]
}

#[test]
fn run_in_an_array_task_takes_its_shard_threads_and_job_from_slurm() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("out");
    // --array=10-22:2: task 12 is index 1 of 7.
    let mut cmd = mpr_sweep();
    cmd.args(["run", s(&spec), "--out", s(&out)]);
    for (k, v) in array_env(12) {
        cmd.env(k, v);
    }
    let o = cmd.outcome();
    o.expect_code(0);
    assert!(
        o.stderr.contains("Slurm array task 4242_12: shard 1/7"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("on 1 threads"), "{}", o.stderr);
    let (kv, rows) = part_meta(&part(&out, "summary", 1, 7));
    assert_eq!(kv["mpr_sweep.shard"], "1/7");
    assert_eq!(kv["mpr_sweep.runs"], "1..3");
    assert_eq!(kv["mpr_sweep.slurm_job"], "4242_12");
    assert_eq!(rows, 2);
    assert_eq!(
        file_names_under(&out),
        ["spec.yaml", "summary/part-00001-of-00007.parquet"]
    );

    // Without SLURM_CPUS_PER_TASK the node's CPUs count.
    let mut cmd = mpr_sweep();
    cmd.args(["run", s(&spec), "--out", s(&out)]);
    for (k, v) in array_env(22) {
        if k != "SLURM_CPUS_PER_TASK" {
            cmd.env(k, v);
        }
    }
    let o = cmd.outcome();
    o.expect_code(0);
    assert!(o.stderr.contains("shard 6/7"), "{}", o.stderr);
    assert!(o.stderr.contains("on 2 threads"), "{}", o.stderr);

    // --shard overrides the array task (whose garbled index is then not read for the
    // shard, but still named when it makes the job label).
    let mut cmd = mpr_sweep();
    cmd.args([
        "run",
        s(&spec),
        "--out",
        s(&out),
        "--shard",
        "3/7",
        "--threads",
        "1",
    ]);
    for (k, v) in array_env(14) {
        cmd.env(k, v);
    }
    cmd.env("SLURM_ARRAY_TASK_MIN", "zz");
    cmd.outcome().expect_code(0);
    let (kv, _) = part_meta(&part(&out, "summary", 3, 7));
    assert_eq!(kv["mpr_sweep.shard"], "3/7");
    assert_eq!(kv["mpr_sweep.slurm_job"], "4242_14");

    // A plain job (no array): the job id, the whole sweep.
    let plain = tmp.path().join("plain");
    let o = mpr_sweep()
        .args(["run", s(&spec), "--out", s(&plain)])
        .env("SLURM_JOB_ID", "777")
        .env("SLURM_CPUS_ON_NODE", "1")
        .outcome();
    o.expect_code(0);
    let (kv, _) = part_meta(&part(&plain, "summary", 0, 1));
    assert_eq!(kv["mpr_sweep.slurm_job"], "777");
    assert_eq!(kv["mpr_sweep.shard"], "0/1");
}

#[test]
fn outside_slurm_the_metadata_has_no_job() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("out");
    mpr(&["run", s(&spec), "--out", s(&out), "--quiet"]).expect_code(0);
    let (kv, rows) = part_meta(&part(&out, "summary", 0, 1));
    assert_eq!(rows, 12);
    assert!(!kv.contains_key("mpr_sweep.slurm_job"), "{kv:?}");
}

#[test]
fn garbled_or_inconsistent_slurm_variables_exit_2_naming_the_variable() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("SLURM_ARRAY_TASK_ID", "x")], "SLURM_ARRAY_TASK_ID"),
        (
            vec![("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "0")],
            "SLURM_ARRAY_TASK_STEP",
        ),
        (
            vec![
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_STEP", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
            "SLURM_ARRAY_TASK_ID",
        ),
        (
            vec![
                ("SLURM_ARRAY_TASK_ID", "8"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_STEP", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
            "SLURM_ARRAY_TASK_ID",
        ),
        // --array=1,3,4 is not a range: its tasks have no shard rule.
        (
            vec![
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "4"),
                ("SLURM_ARRAY_TASK_STEP", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_JOB_ID", "9"),
            ],
            "SLURM_ARRAY_TASK_COUNT",
        ),
        (vec![("SLURM_CPUS_PER_TASK", "four")], "SLURM_CPUS_PER_TASK"),
        (vec![("SLURM_CPUS_ON_NODE", "0")], "SLURM_CPUS_ON_NODE"),
        (vec![("SLURM_JOB_ID", "12.3")], "SLURM_JOB_ID"),
    ];
    for (vars, named) in cases {
        let out = tmp.path().join("never");
        let mut cmd = mpr_sweep();
        cmd.args(["run", s(&spec), "--out", s(&out)]);
        for (k, v) in &vars {
            cmd.env(k, v);
        }
        let o = cmd.outcome();
        o.expect_code(2);
        assert!(
            o.stderr.contains(named) && o.stderr.lines().count() == 1,
            "{vars:?}: {}",
            o.stderr
        );
        assert!(!out.exists(), "{vars:?}: wrote {out:?}");
    }
}

// ---------------------------------------------------------------- sbatch

fn sbatch(spec: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec!["sbatch", s(spec), "--out", s(out)];
    args.extend_from_slice(extra);
    mpr(&args)
}

#[test]
fn sbatch_prints_a_complete_commented_script() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("res");
    let o = sbatch(
        &spec,
        &out,
        &[
            "--shards",
            "4",
            "--cpus-per-task",
            "2",
            "--time",
            "01:30:00",
            "--partition",
            "short",
            "--max-running",
            "3",
            "--extra",
            "--mem=2G --account=lab",
            "--extra=--qos=low",
        ],
    );
    o.expect_code(0);
    let text = &o.stdout;
    let spec_abs = fs::canonicalize(&spec).unwrap();
    let exe = fs::canonicalize(bin()).unwrap();
    assert!(text.starts_with("#!/bin/bash\n"), "{text}");
    let sbatch_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("#SBATCH")).collect();
    assert_eq!(
        sbatch_lines,
        [
            "#SBATCH --job-name=mpr-cluster-small",
            "#SBATCH --array=0-3%3",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --time=01:30:00",
            "#SBATCH --partition=short",
            &format!("#SBATCH --output={}/logs/%A_%a.out", out.display()),
            "#SBATCH --mem=2G --account=lab",
            "#SBATCH --qos=low",
        ]
    );
    // #SBATCH lines come before the first command, after comments only.
    let lines: Vec<&str> = text.lines().collect();
    let first_command = lines
        .iter()
        .position(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap();
    let last_sbatch = lines
        .iter()
        .rposition(|l| l.starts_with("#SBATCH"))
        .unwrap();
    assert!(last_sbatch < first_command, "{text}");
    let run_line = text.lines().last().unwrap();
    assert_eq!(
        run_line,
        format!(
            "exec {} run {} --out {} --shard \"${{SLURM_ARRAY_TASK_ID}}/4\" --resume",
            exe.display(),
            spec_abs.display(),
            out.display()
        )
    );
    for needle in [
        &format!("created the log directory {}/logs", out.display()),
        "sbatch --dependency=afterok:",
        "sbatch --array=",
        "mpr-sweep status",
        "12 runs in 4 shards of 3 runs",
        "run-steps",
        "with --cpus-per-task 2",
        "Pick --shards",
        "set -euo pipefail",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    // The log directory must exist at submission: sbatch created it and says so.
    assert!(out.join("logs").is_dir());
    assert!(
        o.stderr
            .contains(&format!("created {}/logs", out.display())),
        "{}",
        o.stderr
    );
    // Tiny shards: the advice says so.
    assert!(text.contains("NOTE: each shard takes only"), "{text}");
    // sbatch claims the directory with the spec (so that status works at once) and the
    // empty log directory, nothing else (without --submit, no job.sh).
    let mut entries: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    entries.sort();
    assert_eq!(entries, ["logs", "spec.yaml"]);
    assert_eq!(
        std::fs::read_to_string(out.join("spec.yaml")).unwrap(),
        SMALL
    );
    assert_eq!(std::fs::read_dir(out.join("logs")).unwrap().count(), 0);
    // The script is valid bash.
    let script = write_file(tmp.path(), "job.sh", text);
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sbatch_packs_shards_when_they_exceed_max_array_size() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("res");
    // 12 shards, at most 5 array indices: 3 shards per task, tasks 0-3.
    let o = sbatch(
        &spec,
        &out,
        &[
            "--shards",
            "12",
            "--max-array-size",
            "5",
            "--job-name",
            "packed",
        ],
    );
    o.expect_code(0);
    let text = &o.stdout;
    assert!(text.contains("#SBATCH --array=0-3\n"), "{text}");
    assert!(text.contains("#SBATCH --job-name=packed\n"), "{text}");
    assert!(
        text.contains("each of the 4 array tasks runs 3 shards one after another"),
        "{text}"
    );
    assert!(text.contains("--per-task 3"), "{text}");
    assert!(text.contains("--shard \"$i/$shards\" --resume"), "{text}");

    // Run the script as Slurm would, task by task, then check with status.
    let script = write_file(tmp.path(), "job.sh", text);
    for task in 0..4 {
        let mut cmd = command_without_slurm("bash");
        let st = cmd
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_ARRAY_JOB_ID", "100")
            .env("SLURM_CPUS_PER_TASK", "1")
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "task {task}");
    }
    let (code, v) = status_json(&out, &["--per-task", "3"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["shards"], 12);
    // Shard 7 lost: task 2 reruns it.
    fs::remove_file(part(&out, "summary", 7, 12)).unwrap();
    let (code, v) = status_json(&out, &["--per-task", "3"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["array"], "2");
    assert_eq!(v["missing_shards"], serde_json::json!([7]));
}

#[test]
fn sbatch_script_runs_every_shard_as_array_tasks_and_resubmission_is_idempotent() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", TRACED);
    let out = tmp.path().join("res");
    let o = sbatch(&spec, &out, &["--shards", "3"]);
    o.expect_code(0);
    let script = write_file(tmp.path(), "job.sh", &o.stdout);
    let task = |id: u64| {
        let mut cmd = command_without_slurm("bash");
        cmd.arg(&script)
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_JOB_ID", "200")
            .env("SLURM_CPUS_PER_TASK", "1")
            .output()
            .unwrap()
    };
    for id in [0, 2] {
        assert!(task(id).status.success());
    }
    let o = mpr(&["status", s(&out)]);
    o.expect_code(1);
    assert!(o.stdout.contains("sbatch --array=1 job.sh"), "{}", o.stdout);
    let run1 = task(1);
    assert!(run1.status.success());
    mpr(&["status", s(&out)]).expect_code(0);
    // A second submission of everything skips the complete parts.
    let again = task(1);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already complete"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// A stand-in for Slurm's `sbatch` in `dir`: records its arguments, then prints `stdout`
/// and exits with `code`.
fn fake_sbatch(dir: &Path, stdout: &str, stderr: &str, code: i32) -> PathBuf {
    let bin = dir.join("fake-bin");
    fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$@\" > {}\necho '{stdout}'\necho '{stderr}' >&2\nexit {code}\n",
        dir.join("sbatch-args").display()
    );
    let path = write_file(&bin, "sbatch", &script);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn with_path(bin: &Path, args: &[&str]) -> Outcome {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    mpr_sweep().env("PATH", path).args(args).outcome()
}

#[test]
fn sbatch_submit_writes_job_sh_submits_it_and_status_names_it() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("res");
    let printed = sbatch(&spec, &tmp.path().join("other"), &["--shards", "3"]);
    printed.expect_code(0);
    let bin = fake_sbatch(tmp.path(), "4242;cluster", "", 0);
    let args = ["sbatch", s(&spec), "--out", s(&out), "--shards", "3"];
    let o = with_path(&bin, &[&args[..], &["--submit"]].concat());
    o.expect_code(0);
    // Only the job id on stdout, so that `jobid=$(mpr-sweep sbatch ... --submit)` works.
    assert_eq!(o.stdout, "4242\n");
    assert!(o.stderr.contains("as job 4242"), "{}", o.stderr);
    let job = out.join("job.sh");
    let sent = fs::read_to_string(tmp.path().join("sbatch-args")).unwrap();
    assert_eq!(sent.trim(), format!("--parsable {}", job.display()));
    // The submitted script is the printed one, but for its --out.
    let text = fs::read_to_string(&job).unwrap();
    assert_eq!(
        text,
        printed
            .stdout
            .replace(s(&tmp.path().join("other")), s(&out))
    );
    assert!(out.join("logs").is_dir());
    // Nothing ran yet: status lists every shard and resubmits with DIR/job.sh.
    let st = mpr(&["status", s(&out), "--shards", "3"]);
    st.expect_code(1);
    assert!(
        st.stdout
            .contains(&format!("sbatch --array=0-2 {}", job.display())),
        "{}",
        st.stdout
    );
    // Another spec's directory is refused before anything is written or submitted.
    let other = write_file(tmp.path(), "t.yaml", "model: {eta: [-5, -4]}\n");
    let o = with_path(
        &bin,
        &[
            "sbatch",
            s(&other),
            "--out",
            s(&out),
            "--shards",
            "2",
            "--submit",
        ],
    );
    o.expect_code(2);
    assert!(
        o.stderr.contains("holds results of another spec"),
        "{}",
        o.stderr
    );
    assert_eq!(fs::read_to_string(&job).unwrap(), text);
    // A refusal by sbatch is a failure while running: exit 1 with sbatch's words.
    let refusing = fake_sbatch(
        &tmp.path().join("refusing"),
        "",
        "sbatch: error: invalid partition specified: short",
        1,
    );
    let o = with_path(&refusing, &[&args[..], &["--submit"]].concat());
    o.expect_code(1);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    assert!(
        o.stderr.contains("sbatch refused it") && o.stderr.contains("invalid partition"),
        "{}",
        o.stderr
    );
}

#[test]
fn sbatch_refuses_bad_input_with_exit_2() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("res");
    let cases: &[(&[&str], &str)] = &[
        (&["--shards", "0"], "--shards"),
        (&[], "--shards"),
        (&["--shards", "13"], "only 12 runs"),
        (&["--shards", "2", "--time", "1:61:00"], "--time"),
        (&["--shards", "2", "--time", "soon"], "--time"),
        (&["--shards", "2", "--time", "0"], "--time"),
        (&["--shards", "2", "--cpus-per-task", "0"], "cpus-per-task"),
        (&["--shards", "2", "--max-running", "0"], "max-running"),
        (
            &["--shards", "2", "--max-array-size", "0"],
            "max-array-size",
        ),
        (&["--shards", "2", "--partition", "a b"], "--partition"),
        (&["--shards", "2", "--job-name", "x%y"], "--job-name"),
        (&["--shards", "2", "--extra", "mem=2G"], "--extra"),
    ];
    for (args, needle) in cases {
        let o = sbatch(&spec, &out, args);
        o.expect_code(2);
        assert!(o.stdout.is_empty(), "{args:?}: {}", o.stdout);
        assert!(o.stderr.contains(needle), "{args:?}: {}", o.stderr);
    }
    let o = sbatch(&tmp.path().join("missing.yaml"), &out, &["--shards", "2"]);
    o.expect_code(2);
    let bad = write_file(tmp.path(), "bad.yaml", "model: {delta: -1}\n");
    sbatch(&bad, &out, &["--shards", "2"]).expect_code(2);
    // A result directory whose path cannot go into #SBATCH --output.
    sbatch(&spec, &tmp.path().join("a b"), &["--shards", "2"]).expect_code(2);
    // Refused requests create nothing, not even the log directory.
    assert!(!out.exists() && !tmp.path().join("a b").exists());
    // Slurm's other time forms are accepted.
    for t in ["2-00:00:00", "90", "30:00", "1-12", "UNLIMITED"] {
        sbatch(&spec, &out, &["--shards", "2", "--time", t]).expect_code(0);
    }
}

#[test]
fn sbatch_warns_when_a_shard_cannot_finish_within_the_time_limit() {
    let tmp = TempDir::new().unwrap();
    // 1e12 run-steps: about 1.5 hours on one core, 45 minutes per shard of 2.
    let spec = write_file(
        tmp.path(),
        "big.yaml",
        "model:\n  eta: {linspace: [-6, -4, 1000]}\n  J: {linspace: [10, 15, 1000]}\nsimulation: {duration_ms: 10000}\n",
    );
    let out = tmp.path().join("res");
    let o = sbatch(&spec, &out, &["--shards", "2", "--time", "00:30:00"]);
    o.expect_code(0);
    assert!(o.stdout.contains("WARNING: a task may not finish within"));
    assert!(
        o.stderr.contains("warning: a task may not finish"),
        "{}",
        o.stderr
    );
    let o = sbatch(&spec, &out, &["--shards", "2", "--time", "04:00:00"]);
    o.expect_code(0);
    assert!(!o.stdout.contains("WARNING"), "{}", o.stdout);
    assert!(
        !o.stdout.contains("NOTE: each shard takes only"),
        "{}",
        o.stdout
    );
}

// ---------------------------------------------------------------- status

#[test]
fn status_reports_complete_missing_and_corrupt_parts_and_the_array_to_resubmit() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("res");
    for i in [0, 1, 2, 5, 6, 7, 9] {
        mpr(&[
            "run",
            s(&spec),
            "--out",
            s(&out),
            "--shard",
            &format!("{i}/10"),
            "--quiet",
        ])
        .expect_code(0);
    }
    // Garbage under a final name, and a part of another shard under shard 9's name.
    fs::write(part(&out, "summary", 6, 10), b"PAR1 this is not parquet").unwrap();
    fs::copy(part(&out, "summary", 0, 10), part(&out, "summary", 9, 10)).unwrap();
    // A temporary file left by a killed task.
    fs::write(
        out.join("summary/.part-00003-of-00010.parquet.tmp-4242"),
        b"x",
    )
    .unwrap();

    let o = mpr(&["status", s(&out)]);
    o.expect_code(1);
    let t = &o.stdout;
    for needle in [
        "12 runs in 10 shards",
        "complete: 5 of 10 shards (0-2,5,7)",
        "missing:  3 shard(s) (3-4,8)",
        "shard 3: runs 3..4 (a temporary file exists",
        "shard 4: runs 4..6",
        "corrupt:  2 shard(s) (6,9)",
        "summary/part-00006-of-00010.parquet: not Parquet",
        "summary/part-00009-of-00010.parquet: mpr_sweep.shard is \"0/10\", expected \"9/10\"",
        "summary/.part-00003-of-00010.parquet.tmp-4242 (1 bytes, pid 4242",
        "sbatch --array=3-4,6,8-9 job.sh",
    ] {
        assert!(t.contains(needle), "no {needle:?} in\n{t}");
    }
    // Corrupt parts need no deleting: `run --resume` rewrites them.
    assert!(!t.contains("rm -f"), "{t}");
    let (code, v) = status_json(&out, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(v["complete"], false);
    assert_eq!(v["array"], "3-4,6,8-9");
    assert_eq!(v["missing_shards"], serde_json::json!([3, 4, 8]));
    assert_eq!(v["corrupt_shards"], serde_json::json!([6, 9]));
    assert_eq!(v["complete_shards"], serde_json::json!([0, 1, 2, 5, 7]));
    assert_eq!(v["parts"][4]["runs"], serde_json::json!([4, 6]));
    assert_eq!(v["parts"][6]["summary"]["state"], "corrupt");
    assert_eq!(v["temporary_files"][0]["pid"], 4242);
    // Corrupt parts are rewritten by --resume: nothing to delete first.
    assert_eq!(v["remove"].as_array().unwrap().len(), 0);

    // Following the advice completes the directory.
    for f in v["remove"].as_array().unwrap() {
        fs::remove_file(f.as_str().unwrap()).unwrap();
    }
    for i in [3, 4, 6, 8, 9] {
        mpr(&[
            "run",
            s(&spec),
            "--out",
            s(&out),
            "--shard",
            &format!("{i}/10"),
            "--resume",
            "--quiet",
        ])
        .expect_code(0);
    }
    let o = mpr(&["status", s(&out)]);
    o.expect_code(0);
    assert!(
        o.stdout
            .contains("complete: 10 of 10 shards (0-9), 12 of 12 runs"),
        "{}",
        o.stdout
    );
    // Rerunning shard 3 removed the temporary file its killed writer (pid 4242) left.
    assert!(!o.stdout.contains("temporary files"), "{}", o.stdout);
}

#[test]
fn status_checks_trace_parts_spec_and_row_counts() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "t.yaml", TRACED);
    let out = tmp.path().join("res");
    for i in 0..3 {
        mpr(&[
            "run",
            s(&spec),
            "--out",
            s(&out),
            "--shard",
            &format!("{i}/3"),
            "--quiet",
        ])
        .expect_code(0);
    }
    mpr(&["status", s(&out)]).expect_code(0);
    // Traces of shard 1 lost: the shard is to redo, and --resume redoes it.
    fs::remove_file(part(&out, "traces", 1, 3)).unwrap();
    let o = mpr(&["status", s(&out)]);
    o.expect_code(1);
    assert!(
        o.stdout.contains("summary written, traces missing"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("--array=1 "), "{}", o.stdout);
    assert!(!o.stdout.contains("rm -f"), "{}", o.stdout);
    mpr(&[
        "run",
        s(&spec),
        "--out",
        s(&out),
        "--shard",
        "1/3",
        "--resume",
        "--quiet",
    ])
    .expect_code(0);
    mpr(&["status", s(&out)]).expect_code(0);

    // Parts of another spec with the same layout: corrupt (the spec hash differs).
    let other_spec = write_file(tmp.path(), "o.yaml", &TRACED.replace("-4]", "-3]"));
    let other = tmp.path().join("other");
    mpr(&[
        "run",
        s(&other_spec),
        "--out",
        s(&other),
        "--shard",
        "1/3",
        "--quiet",
    ])
    .expect_code(0);
    fs::copy(part(&other, "summary", 1, 3), part(&out, "summary", 2, 3)).unwrap();
    let o = mpr(&["status", s(&out)]);
    o.expect_code(1);
    assert!(
        o.stdout.contains("written for another spec"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("--array=2 "), "{}", o.stdout);

    // A summary part with the right metadata but a row missing: rewritten from shard 0.
    let p0 = part(&out, "summary", 0, 3);
    let (kv, rows) = part_meta(&p0);
    assert_eq!(rows, 2);
    let file = fs::File::open(&p0).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batch = reader.map(Result::unwrap).next().unwrap();
    let short = batch.slice(0, 1);
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(
            kv.iter()
                .filter(|(k, _)| k.starts_with("mpr_sweep."))
                .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.clone(), v.clone()))
                .collect(),
        ))
        .build();
    let tmp_part = tmp.path().join("short.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        fs::File::create(&tmp_part).unwrap(),
        short.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&short).unwrap();
    w.close().unwrap();
    fs::rename(&tmp_part, &p0).unwrap();
    let o = mpr(&["status", s(&out)]);
    o.expect_code(1);
    assert!(o.stdout.contains("1 rows, expected 2"), "{}", o.stdout);
    assert!(o.stdout.contains("--array=0,2 "), "{}", o.stdout);
}

#[test]
fn status_without_parts_needs_the_shard_count_and_refuses_mixed_layouts() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "s.yaml", SMALL);
    let out = tmp.path().join("res");
    fs::create_dir_all(&out).unwrap();
    // Not a result directory: exit 2.
    let o = mpr(&["status", s(&out)]);
    o.expect_code(2);
    assert!(
        o.stderr.contains("not an mpr-sweep result directory"),
        "{}",
        o.stderr
    );
    mpr(&["status", s(&tmp.path().join("nope"))]).expect_code(2);
    fs::write(out.join("spec.yaml"), "model: {delta: -1}\n").unwrap();
    mpr(&["status", s(&out)]).expect_code(2);

    // spec.yaml only: nothing written yet.
    fs::copy(&spec, out.join("spec.yaml")).unwrap();
    let o = mpr(&["status", s(&out)]);
    o.expect_code(1);
    assert!(o.stdout.contains("give --shards N"), "{}", o.stdout);
    let (code, v) = status_json(&out, &["--shards", "4"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["array"], "0-3");

    mpr(&[
        "run",
        s(&spec),
        "--out",
        s(&out),
        "--shard",
        "1/4",
        "--quiet",
    ])
    .expect_code(0);
    let (_, v) = status_json(&out, &[]);
    assert_eq!(v["shards"], 4);
    assert_eq!(v["array"], "0,2-3");
    // --shards must agree with the parts present.
    let o = mpr(&["status", s(&out), "--shards", "3"]);
    o.expect_code(2);
    assert!(o.stderr.contains("mixed shard counts"), "{}", o.stderr);
    // Parts of two layouts (a stray copy): refused.
    fs::write(part(&out, "summary", 0, 2), b"x").unwrap();
    let o = mpr(&["status", s(&out)]);
    o.expect_code(2);
    assert!(o.stderr.contains("mixed shard counts"), "{}", o.stderr);
}

// ---------------------------------------------------------------- interruption

/// Starts `run` of `spec` on two threads and waits until it writes its temporary part (so
/// the signal handler is in place).
fn start_run(tmp: &Path, spec: &str) -> (Child, PathBuf) {
    let spec = write_file(tmp, "slow.yaml", spec);
    let out = tmp.join("out");
    let child = mpr_sweep()
        .args(["run", s(&spec), "--out", s(&out), "--threads", "2"])
        .spawn(Stdio::null(), Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = file_names_under(&out)
            .iter()
            .any(|f| f.starts_with("summary/.part-"));
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, out)
}

/// Sends `signal` to a running `run` of `spec` (inside its lane batches by then) and checks
/// that it stops within 2 s with exit status `code`, its message, and nothing left but the
/// spec.
fn interrupt(spec: &str, signal: i32, code: i32, name: &str) {
    let tmp = TempDir::new().unwrap();
    let (mut child, out) = start_run(tmp.path(), spec);
    std::thread::sleep(Duration::from_millis(700));
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let deadline = sent + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name}: still running 60 s after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped_in = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(code), "{name}: {status:?}\n{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "mpr-sweep: error: interrupted by {name}: shard 0/1 stopped"
        )) && last.contains("no part written"),
        "{name}: {stderr}"
    );
    assert!(
        stopped_in < Duration::from_secs(2),
        "{name}: took {stopped_in:?}"
    );
    // No final-named part, no temporary file: only the spec.
    assert_eq!(file_names_under(&out), ["spec.yaml"], "{name}");
    // status sees a missing shard.
    let (code, v) = status_json(&out, &["--shards", "1"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["array"], "0");
    assert_eq!(v["temporary_files"], serde_json::json!([]));
}

#[test]
fn sigterm_stops_a_run_cleanly_with_exit_143() {
    interrupt(SLOW, libc::SIGTERM, 143, "SIGTERM");
}

#[test]
fn sigint_stops_a_run_cleanly_with_exit_130() {
    interrupt(SLOW, libc::SIGINT, 130, "SIGINT");
}

#[test]
fn sigterm_stops_a_single_endless_run_within_2_s() {
    interrupt(ENDLESS, libc::SIGTERM, 143, "SIGTERM");
}

#[test]
fn sigint_stops_a_single_endless_run_within_2_s() {
    interrupt(ENDLESS, libc::SIGINT, 130, "SIGINT");
}

#[test]
fn sigterm_stops_long_runs_on_two_threads_within_2_s() {
    interrupt(LONG_RUNS, libc::SIGTERM, 143, "SIGTERM");
}

#[test]
fn sigint_stops_long_runs_on_two_threads_within_2_s() {
    interrupt(LONG_RUNS, libc::SIGINT, 130, "SIGINT");
}

/// A packed script's task signalled as Slurm does (SIGTERM to every process of the task):
/// the shell waits for the interrupted shard, stops the loop, and exits 143 with nothing
/// partial left.
#[test]
fn a_packed_task_stops_cleanly_on_sigterm_to_its_process_group() {
    use std::os::unix::process::CommandExt;
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "slow.yaml", SLOW);
    let out = tmp.path().join("res");
    let o = sbatch(&spec, &out, &["--shards", "2", "--max-array-size", "1"]);
    o.expect_code(0);
    let script = write_file(tmp.path(), "job.sh", &o.stdout);
    let mut cmd = command_without_slurm("bash");
    let mut child = cmd
        .arg(&script)
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_ARRAY_JOB_ID", "300")
        .env("SLURM_CPUS_PER_TASK", "2")
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !file_names_under(&out)
        .iter()
        .any(|f| f.starts_with("summary/.part-00000-of-00002"))
    {
        assert!(Instant::now() < deadline, "the task did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the process group of our own child.
    assert_eq!(
        unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) },
        0
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM: shard 0/2"),
        "{stderr}"
    );
    // Shard 1 was not started, and nothing of shard 0 is left.
    assert!(!stderr.contains("shard 1/2"), "{stderr}");
    assert_eq!(file_names_under(&out), ["spec.yaml"]);
}

//! Crash safety (issue 7): killed runs, full disks and diverging runs lose nothing.
//!
//! - `sigkill_then_resume_reproduces_the_uninterrupted_sweep`: a `mpr-sweep run` of a few
//!   seconds (several blocks, `--threads 2`) is killed with SIGKILL at random moments, then
//!   `run --resume` is repeated until it completes (the first resume is itself killed half
//!   of the time). Summary and traces must then decode to exactly the rows of an
//!   uninterrupted run (every value compared by its bits), and at no moment may a final
//!   name hold a partial part. Temporary files of killed processes (`.part-….tmp-PID`)
//!   cannot be removed by the process that dies; whether `--resume` leaves them behind is
//!   printed as a FINDING, not failed on.
//! - `a_full_disk_fails_cleanly` (root only: mounts a 256 KiB tmpfs): a sweep whose summary
//!   or traces outgrow the disk, and a disk too full for `spec.yaml`, exit 1 with one line
//!   naming the path and the OS's "No space left on device", leaving no final-named part
//!   and no temporary file. Without root or `mount` it prints `SKIPPED: <reason>` and
//!   passes, unless `MPR_SWEEP_REQUIRE_TMPFS=1`.
//! - `diverging_lanes_do_not_disturb_healthy_ones`: lane batches of 32 runs that mix runs
//!   which blow up (huge `init.v`) with healthy ones, under white noise. Every run's summary
//!   and trace must be bitwise identical to the same run id run alone (`--shard i/N` with
//!   N = the number of runs puts one run in each shard, with the same run id and random
//!   stream); the blown-up runs are flagged `diverged` with `diverged_at_ms`.
//!
//! Seeds of the random kill delays: `MPR_SWEEP_CRASH_SEED` (default from the clock, printed).

mod common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tempfile::TempDir;

use common::run::{Mpr, describe, files_under, mpr_sweep, write_file};
use common::settings::seed_from_env;
use common::table::{Table, assert_tables_bitwise_equal, is_hidden};

const PART: &str = "part-00000-of-00001.parquet";

fn run_args(spec: &Path, out: &Path, extra: &[&str]) -> Mpr {
    let mut cmd = mpr_sweep();
    cmd.arg("run").arg(spec).arg("--out").arg(out).args(extra);
    cmd
}

#[track_caller]
fn run_ok(spec: &Path, out: &Path, extra: &[&str]) {
    let o = run_args(spec, out, extra).output();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
}

/// Final-named Parquet parts under `dir` (relative paths).
fn final_parts(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| !is_hidden(p) && p.extension().is_some_and(|e| e == "parquet"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// (a) SIGKILL, then --resume
// ---------------------------------------------------------------------------------------

/// 43 x 16 points x 2 replicates = 1,376 runs of 200,000 steps (2.8e8 run-steps: 2-3 s on
/// two cores in the test profile). Blocks hold 2^26 run-steps but at least 8 lane batches
/// per thread: 512 runs here, so three blocks (512 + 512 + 352 runs). The initial rate is
/// drawn from each run's random stream.
const KILL_SPEC: &str = "\
name: crash-kill
model:
  eta: {linspace: [-8, -2, 43]}
  J: {linspace: [5, 25, 16]}
init:
  r_hz: {uniform: [0, 200]}
  v: -2.0
simulation: {dt_ms: 0.01, duration_ms: 2000, transient_ms: 1500}
sweep: {seed: 77, replicates: 2}
output:
  traces: {every_ms: 1, runs: {every: 5}}
";

const KILL_TRIALS: usize = 5;

/// Starts a run, kills it with SIGKILL after `delay` (unless it ended first); returns
/// whether it was killed, and its exit status otherwise.
fn run_and_kill(spec: &Path, out: &Path, extra: &[&str], delay: Duration) -> (bool, Option<i32>) {
    let mut child = run_args(spec, out, extra).spawn(Stdio::null(), Stdio::null());
    let deadline = Instant::now() + delay;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (false, status.code());
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2).min(deadline - Instant::now()));
    }
    // Child::kill sends SIGKILL on Unix.
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    (true, None)
}

/// After a kill, anything under a final name must be complete: decodable and identical to
/// the uninterrupted run's part.
fn check_final_parts(dir: &Path, reference: &Path, when: &str) {
    for p in final_parts(dir) {
        let got = Table::try_read(&dir.join(&p))
            .unwrap_or_else(|e| panic!("{when}: a final-named part is partial: {e}"));
        let want = Table::read(&reference.join(&p));
        assert_tables_bitwise_equal(&got, &want, &format!("{when}: {}", p.display()));
    }
    let stray: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|p| {
            !is_hidden(p)
                && *p != Path::new("spec.yaml")
                && *p != Path::new("summary").join(PART)
                && *p != Path::new("traces").join(PART)
        })
        .collect();
    assert!(stray.is_empty(), "{when}: unexpected files {stray:?}");
}

#[test]
fn sigkill_then_resume_reproduces_the_uninterrupted_sweep() {
    let seed = seed_from_env("MPR_SWEEP_CRASH_SEED");
    println!("crash: seed {seed} (MPR_SWEEP_CRASH_SEED={seed} reproduces the kill delays)");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "kill.yaml", KILL_SPEC);
    let args = ["--threads", "2", "--quiet"];

    let reference = tmp.path().join("reference");
    let start = Instant::now();
    run_ok(&spec, &reference, &args);
    let full = start.elapsed();
    let want_summary = Table::read_dir(&reference, "summary");
    let want_traces = Table::read_dir(&reference, "traces");
    assert_eq!(want_summary.rows, 1376);
    println!(
        "crash: uninterrupted run {full:?}, {} summary rows, {} trace rows",
        want_summary.rows, want_traces.rows
    );

    let mut leftovers = Vec::new();
    let mut killed_total = 0;
    for trial in 0..KILL_TRIALS {
        let dir = tmp.path().join(format!("trial-{trial}"));
        // Random moments over the whole run, the start and the final commit included.
        let delay = full.mul_f64(rng.random_range(0.0..1.1));
        let (killed, code) = run_and_kill(&spec, &dir, &args, delay);
        killed_total += killed as usize;
        if !killed {
            assert_eq!(code, Some(0), "trial {trial}: the run failed by itself");
        }
        let when = format!("trial {trial}, after SIGKILL at {delay:?}");
        check_final_parts(&dir, &reference, &when);
        let mut log = vec![format!(
            "kill at {delay:?}: {}",
            if killed { "killed" } else { "had finished" }
        )];

        // Resume until complete; the first resume is killed too, half of the time.
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts <= 5, "trial {trial}: no complete resume: {log:?}");
            let mut resume = vec!["--resume"];
            resume.extend_from_slice(&args);
            if attempts == 1 && rng.random_bool(0.5) {
                let delay = full.mul_f64(rng.random_range(0.0..1.1));
                let (killed, code) = run_and_kill(&spec, &dir, &resume, delay);
                killed_total += killed as usize;
                log.push(format!(
                    "resume killed at {delay:?}: {}",
                    if killed { "killed" } else { "had finished" }
                ));
                if !killed {
                    assert_eq!(code, Some(0), "trial {trial}: resume failed by itself");
                }
                check_final_parts(&dir, &reference, &format!("{when}, resume killed"));
                continue;
            }
            let o = run_args(&spec, &dir, &resume).output();
            assert_eq!(o.status.code(), Some(0), "trial {trial}: {}", describe(&o));
            log.push("resume completed".into());
            break;
        }
        let what = format!("trial {trial} ({})", log.join(", "));
        assert_tables_bitwise_equal(&Table::read_dir(&dir, "summary"), &want_summary, &what);
        assert_tables_bitwise_equal(&Table::read_dir(&dir, "traces"), &want_traces, &what);
        check_final_parts(&dir, &reference, &what);
        let hidden: Vec<PathBuf> = files_under(&dir)
            .into_iter()
            .filter(|p| is_hidden(p))
            .collect();
        let bytes: u64 = hidden
            .iter()
            .map(|p| fs::metadata(dir.join(p)).map_or(0, |m| m.len()))
            .sum();
        println!("crash: {what}: identical; temporary files left: {hidden:?} ({bytes} bytes)");
        if !hidden.is_empty() {
            leftovers.push((trial, hidden.len(), bytes));
        }
    }
    println!("crash: {killed_total} processes killed in {KILL_TRIALS} trials");
    if leftovers.is_empty() {
        println!("crash: no temporary files were left behind");
    } else {
        println!(
            "FINDING: `run --resume` leaves the temporary files of killed runs behind \
             (hidden, so readers ignore them, but they take disk space): \
             (trial, files, bytes) = {leftovers:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// (b) A full disk
// ---------------------------------------------------------------------------------------

/// Unmounts the tmpfs when dropped, also when the test fails.
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Result<Mount, String> {
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if o.status.success() {
            Ok(Mount {
                path: path.to_path_buf(),
            })
        } else {
            Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// 10,000 runs of 100 steps: a summary of about a megabyte, compressed (rk4: its step is
/// stable at every point, so the error is the only line on stderr).
const FULL_SUMMARY_SPEC: &str = "\
model:
  eta: {linspace: [-10, 0, 100]}
  J: {linspace: [0, 30, 100]}
init: {r_hz: {uniform: [0, 200]}, v: -2}
simulation: {dt_ms: 0.01, duration_ms: 1, method: rk4}
";

/// 8 noisy runs traced at every step: 80,008 rows of noise, megabytes compressed (heun:
/// stable at every point, no warning before the error).
const FULL_TRACES_SPEC: &str = "\
model:
  eta: {linspace: [-10, 0, 8]}
init: {r_hz: {uniform: [0, 200]}, v: -2}
noise: {v: {white: {sigma: 0.5}}}
simulation: {dt_ms: 0.01, duration_ms: 100, method: heun}
output:
  traces: {runs: all}
";

/// Checks one run that must fail for lack of space; returns its message.
fn check_disk_full(spec: &Path, out: &Path, what: &str) -> String {
    let o = run_args(spec, out, &["--threads", "2", "--quiet"]).output();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{what}: {}", describe(&o));
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: {}",
        describe(&o)
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "{what}: one line\n{}",
        describe(&o)
    );
    assert!(
        stderr.starts_with("mpr-sweep: error: "),
        "{what}: {}",
        describe(&o)
    );
    assert!(
        stderr.contains(&out.display().to_string()),
        "{what}: the message must name the path\n{}",
        describe(&o)
    );
    assert!(
        stderr.contains("No space left on device"),
        "{what}: the message must give the OS's reason\n{}",
        describe(&o)
    );
    let files = files_under(out);
    let parts = final_parts(out);
    assert!(
        parts.is_empty(),
        "{what}: final-named parts left: {parts:?}"
    );
    let hidden: Vec<_> = files.iter().filter(|p| is_hidden(p)).collect();
    assert!(
        hidden.is_empty(),
        "{what}: temporary files left: {hidden:?}"
    );
    stderr.trim_end().to_string()
}

#[test]
fn a_full_disk_fails_cleanly() {
    let required = std::env::var("MPR_SWEEP_REQUIRE_TMPFS").is_ok_and(|v| v == "1");
    let skip = |reason: String| {
        if required {
            panic!("MPR_SWEEP_REQUIRE_TMPFS=1 but the test cannot run: {reason}");
        }
        println!("SKIPPED: {reason}");
    };
    if !is_root() {
        return skip("not root: mounting a small tmpfs needs root".into());
    }
    let tmp = TempDir::new().unwrap();
    let specs = tmp.path().join("specs");
    fs::create_dir(&specs).unwrap();
    let mnt = tmp.path().join("disk");
    fs::create_dir(&mnt).unwrap();
    // Declared after `tmp`, so it is dropped (unmounted) first.
    let _mount = match Mount::tmpfs(&mnt, "256k") {
        Ok(m) => m,
        Err(reason) => return skip(reason),
    };

    let mut messages = Vec::new();
    let spec = write_file(&specs, "summary.yaml", FULL_SUMMARY_SPEC);
    let out = mnt.join("summary-too-big");
    messages.push(check_disk_full(&spec, &out, "summary outgrows the disk"));
    fs::remove_dir_all(&out).unwrap();

    let spec = write_file(&specs, "traces.yaml", FULL_TRACES_SPEC);
    let out = mnt.join("traces-too-big");
    messages.push(check_disk_full(&spec, &out, "traces outgrow the disk"));
    fs::remove_dir_all(&out).unwrap();

    // A disk already full: even spec.yaml cannot be written.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = File::create(&filler).unwrap();
        let chunk = vec![0x5a_u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    let spec = write_file(&specs, "small.yaml", "simulation: {duration_ms: 1}\n");
    let out = mnt.join("no-room-for-spec");
    messages.push(check_disk_full(&spec, &out, "no room for spec.yaml"));
    assert!(
        !out.join("spec.yaml").exists(),
        "spec.yaml was written on a full disk"
    );
    for m in &messages {
        println!("disk full: {m}");
        if let Some(body) = m.strip_prefix("mpr-sweep: error: ") {
            let reason = "No space left on device";
            if body.matches(reason).count() > 1 {
                println!(
                    "FINDING: the message repeats itself ({} times \"{reason}\")",
                    body.matches(reason).count()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (c) Diverging runs next to healthy ones
// ---------------------------------------------------------------------------------------

/// 4 eta x 8 init.v x 4 replicates = 128 runs. A lane batch of 32 is one eta: the 8 v values
/// x 4 replicates, so half of every batch blows up (v = 5e5 .. 1e200) and half does not,
/// interleaved run by run, under white noise on v and drawn initial rates.
const DIVERGE_SPEC: &str = "\
name: crash-diverge
model:
  eta: [-5.0, -4.0, -3.0, -6.0]
init:
  r_hz: {uniform: [0, 200]}
  v: [-2.0, 1.0e6, -1.0, 3.0e12, -1.5, 1.0e200, 0.0, 5.0e5]
noise:
  v: {white: {sigma: 0.5}}
simulation: {dt_ms: 0.01, duration_ms: 20, transient_ms: 5}
sweep: {seed: 99, replicates: 4}
output:
  traces: {every_ms: 0.1, runs: all}
";

#[test]
fn diverging_lanes_do_not_disturb_healthy_ones() {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), "diverge.yaml", DIVERGE_SPEC);
    let together = tmp.path().join("together");
    run_ok(&spec, &together, &["--threads", "2", "--quiet"]);
    let summary = Table::read_dir(&together, "summary");
    let traces = Table::read_dir(&together, "traces");
    let runs = summary.rows;
    assert_eq!(runs, 128);

    // The same runs one by one: shard i of 128 is exactly run i, alone in its lane batch.
    let alone = tmp.path().join("alone");
    for i in 0..runs {
        run_ok(
            &spec,
            &alone,
            &[
                "--shard",
                &format!("{i}/{runs}"),
                "--threads",
                "1",
                "--quiet",
            ],
        );
    }
    let alone_summary = Table::read_dir(&alone, "summary");
    let alone_traces = Table::read_dir(&alone, "traces");
    assert_tables_bitwise_equal(&summary, &alone_summary, "summary, batched vs alone");
    assert_tables_bitwise_equal(&traces, &alone_traces, "traces, batched vs alone");

    // Which runs blew up, and how they are reported.
    let mut healthy = 0;
    let mut diverged = 0;
    for r in 0..runs {
        let v0 = summary.f64_at("init_v", r).unwrap();
        let blew_up = summary.bools("diverged")[r];
        let at = summary.f64_at("diverged_at_ms", r);
        let mean = summary.f64_at("r_hz_mean", r);
        if v0.abs() >= 1e5 {
            diverged += 1;
            assert!(blew_up, "run {r} (init_v {v0}) should diverge");
            let at = at.expect("diverged_at_ms is set");
            assert!(at > 0.0 && at <= 20.0, "run {r}: diverged_at_ms {at}");
            assert_eq!(mean, None, "run {r}: statistics of a diverged run are null");
        } else {
            healthy += 1;
            assert!(!blew_up, "run {r} (init_v {v0}) should stay finite");
            assert_eq!(at, None, "run {r}: diverged_at_ms of a healthy run");
            for col in ["r_hz_mean", "r_hz_std", "r_hz_final", "v_mean", "v_final"] {
                let x = summary.f64_at(col, r);
                assert!(x.is_some_and(f64::is_finite), "run {r}: {col} = {x:?}");
            }
        }
    }
    assert_eq!((healthy, diverged), (64, 64));
}

// ---------------------------------------------------------------------------------------
// Extreme but valid numbers
// ---------------------------------------------------------------------------------------

/// What is inconsistent in a sweep's rows: a finished run has finite statistics with
/// min <= mean <= max and std >= 0; a diverged run has null statistics and a positive
/// `diverged_at_ms`; initial values are finite; trace rows are finite (a diverged run's
/// trace stops before its first non-finite state).
fn inconsistencies(summary: &Table, traces: Option<&Table>) -> Vec<String> {
    let mut wrong = Vec::new();
    let (ids, diverged_col) = (summary.u64s("run_id"), summary.bools("diverged"));
    for r in 0..summary.rows {
        let id = ids[r];
        for col in ["init_r_hz", "init_v"] {
            let x = summary.f64_at(col, r);
            if !x.is_some_and(f64::is_finite) {
                wrong.push(format!("run {id:?}: {col} = {x:?}"));
            }
        }
        let diverged = diverged_col[r];
        let at = summary.f64_at("diverged_at_ms", r);
        for var in ["r_hz", "v"] {
            let get = |s: &str| summary.f64_at(&format!("{var}_{s}"), r);
            let stats = ["mean", "std", "min", "max", "final"].map(get);
            if diverged {
                if stats.iter().any(Option::is_some)
                    || !at.is_some_and(|t| t > 0.0 && t.is_finite())
                {
                    wrong.push(format!(
                        "run {id:?}: diverged at {at:?} with {var} statistics {stats:?}"
                    ));
                }
            } else {
                let [mean, std, min, max, last] = stats.map(|x| x.unwrap_or(f64::NAN));
                let slack = 1e-12 * max.abs().max(min.abs());
                let ok = [mean, std, min, max, last].iter().all(|x| x.is_finite())
                    && std >= 0.0
                    && min - slack <= mean
                    && mean <= max + slack
                    && at.is_none();
                if !ok {
                    wrong.push(format!(
                        "run {id:?}: not diverged but {var} mean {mean}, std {std}, min {min}, max {max}, final {last}, diverged_at_ms {at:?}"
                    ));
                }
            }
        }
    }
    if let Some(t) = traces {
        for (r, id) in t.u64s("run_id").into_iter().enumerate() {
            for col in ["t_ms", "r_hz", "v"] {
                let x = t.f64_at(col, r);
                if !x.is_some_and(f64::is_finite) {
                    wrong.push(format!("trace of run {id}: {col} = {x:?}"));
                }
            }
        }
    }
    wrong.truncate(20);
    wrong
}

/// Runs `text` and returns the inconsistencies of its rows (or panics if it does not run).
fn run_and_check(tmp: &Path, name: &str, text: &str) -> Vec<String> {
    let spec = write_file(tmp, &format!("{name}.yaml"), text);
    let out = tmp.join(name);
    let o = run_args(&spec, &out, &["--threads", "2", "--quiet"]).output();
    assert_eq!(o.status.code(), Some(0), "{name}: {}", describe(&o));
    let summary = Table::read_dir(&out, "summary");
    let traces = out
        .join("traces")
        .exists()
        .then(|| Table::read_dir(&out, "traces"));
    inconsistencies(&summary, traces.as_ref())
        .into_iter()
        .map(|w| format!("{name}: {w}"))
        .collect()
}

/// Valid specs at the edges of f64: every run either finishes with consistent statistics
/// or is flagged as diverged; nothing panics or hangs.
#[test]
fn extreme_parameters_finish_or_diverge_consistently() {
    let tmp = TempDir::new().unwrap();
    let tail = "simulation: {dt_ms: 0.01, duration_ms: 0.5}\nsweep: {replicates: 4, seed: 3}\noutput: {traces: {runs: all}}\n";
    let cases = [
        ("tiny-tau", "model: {tau_ms: 1e-300}\n"),
        ("huge-tau", "model: {tau_ms: 1e300}\n"),
        (
            "huge-model",
            "model: {eta: 1e300, J: 1e300, delta: 1e300}\n",
        ),
        (
            "negative-huge-model",
            "model: {eta: -1e308, J: -1e308, delta: 0}\n",
        ),
        (
            "subnormal-model",
            "model: {delta: 5e-324, eta: -5e-324, J: 5e-324}\n",
        ),
        ("huge-init", "init: {r_hz: 1e308, v: -1e308}\n"),
        (
            "huge-white-noise",
            "noise: {v: {white: {sigma: 1e300}}, r_hz: {white: {sigma: 1e300}}}\n",
        ),
        (
            "huge-ou-noise",
            "noise: {v: {ou: {sigma: 1e300, tau_ms: 5e-324}}}\nsimulation: {method: rk4}\n",
        ),
        (
            "huge-sine",
            "input: {v: {sine: {amplitude: 1e308, freq_hz: 1e308, phase: 1e308, offset: -1e308}}}\n",
        ),
        ("huge-inputs", "input: {r_hz: 1e308, v: -1e308}\n"),
        (
            "huge-pulse",
            "input: {v: {pulse: {start_ms: -1e308, stop_ms: 1e308, amplitude: 1e308}}}\n",
        ),
        (
            "tiny-tau-huge-delta",
            "model: {tau_ms: 5e-324, delta: 1e308}\n",
        ),
        (
            "wide-axes",
            "model: {eta: {linspace: [-1e300, 1e300, 8]}, J: {geomspace: [1e-300, 1e300, 4]}, delta: [0, 1e-300, 1e300]}\n",
        ),
        (
            "every-method-blows-up",
            "model: {eta: 1e6}\ninit: {v: 1e150}\nsimulation: {method: heun}\n",
        ),
    ];
    let mut wrong = Vec::new();
    for (name, head) in cases {
        // A later `simulation:` would be a duplicate key: merge the method into the tail.
        let text = match head.split_once("simulation: {method: ") {
            Some((before, method)) => format!(
                "{before}{}",
                tail.replace(
                    "simulation: {",
                    &format!(
                        "simulation: {{method: {}, ",
                        method.trim_end().trim_end_matches('}')
                    )
                )
            ),
            None => format!("{head}{tail}"),
        };
        wrong.extend(run_and_check(tmp.path(), name, &text));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs `text` (named `name`): a refusal must be a spec error whose message contains `key`
/// and must leave no final-named part; a run must give consistent summary and trace rows.
fn check_refused_or_consistent(name: &str, text: &str, key: &str) {
    let tmp = TempDir::new().unwrap();
    let spec = write_file(tmp.path(), &format!("{name}.yaml"), text);
    let out = tmp.path().join(name);
    let o = run_args(&spec, &out, &["--quiet"]).output();
    if o.status.code() == Some(2) {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(key), "{}", describe(&o));
        assert!(final_parts(&out).is_empty());
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let summary = Table::read_dir(&out, "summary");
    let traces = Table::read_dir(&out, "traces");
    let wrong = inconsistencies(&summary, Some(&traces));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_run_shorter_than_one_step_is_refused_or_summarised_consistently() {
    let text = "simulation: {dt_ms: 0.01, duration_ms: 1e-12}\ninit: {r_hz: 5, v: -2}\noutput: {traces: {runs: all}}\n";
    // Refusing it is a fix too: then as a spec error naming the duration.
    check_refused_or_consistent("short", text, "simulation.duration_ms");
}

#[test]
fn drawn_initial_values_are_finite_or_refused() {
    let text = "init: {r_hz: {uniform: [-1e308, 1e308]}, v: -2}\nsimulation: {duration_ms: 0.05}\nsweep: {replicates: 8}\noutput: {traces: {runs: all}}\n";
    check_refused_or_consistent("wide", text, "init.");
}

#[test]
fn rates_too_large_for_hz_count_as_diverged() {
    let tmp = TempDir::new().unwrap();
    let text = "model: {eta: 1e308, J: 1e308, delta: 1e308}\ninit: {r_hz: 1, v: 0}\nsimulation: {dt_ms: 0.01, duration_ms: 0.05}\noutput: {traces: {runs: all}}\n";
    let wrong = run_and_check(tmp.path(), "hz-overflow", text);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

//! A real Slurm cluster (issue 5): `tests/slurm/cluster.sh` starts a one-node cluster
//! (munged, slurmctld, slurmd on 127.0.0.1, two CPUs) in a temporary directory; the test
//! submits scripts made by `mpr-sweep sbatch`, checks `mpr-sweep status`, compares the
//! parts with an unsharded run bit for bit, cancels an array task mid-run, resubmits
//! exactly what `status` lists, and chains a job with `--dependency=afterok`.
//!
//! Without `sbatch` on PATH, without root, or when the cluster cannot start, the test
//! prints `SKIPPED: <reason>` and passes; with `MPR_SWEEP_REQUIRE_SLURM=1` (set by .ci/run,
//! which installs Slurm) it fails instead. The cluster is stopped at the end, also when
//! the test fails.

#![cfg(unix)]

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::run::{bin, command_without_slurm, describe, mpr_sweep, s};
use common::table::{Table, assert_tables_bitwise_equal, part_meta};

/// 4 shards of 3 x 4 x 2 = 24 runs, quick.
const QUICK: &str = "\
name: slurm-quick
model:
  eta: [-6, -5, -4]
  J: [8, 10, 12, 14]
noise:
  v: {white: {sigma: 0.05}}
init:
  r_hz: {uniform: [0, 50]}
simulation: {duration_ms: 20, transient_ms: 5}
sweep: {seed: 7, replicates: 2}
";

/// 4 shards of about 5 s each in a debug build (10,240 runs x 100,000 steps).
const SLOW: &str = "\
name: slurm-slow
model:
  eta: {linspace: [-6, -4, 80]}
  J: {linspace: [10, 15, 128]}
simulation: {duration_ms: 1000}
";

/// 2 shards of about 4 s each in a debug build (4,096 runs x 100,000 steps).
const MEDIUM: &str = "\
name: slurm-medium
model:
  eta: {linspace: [-6, -4, 64]}
  J: {linspace: [10, 15, 64]}
simulation: {duration_ms: 1000}
";

const SHARDS: u64 = 4;

fn say(text: &str) {
    // Straight to the process's stderr: the test harness captures only print! macros.
    let _ = writeln!(std::io::stderr(), "slurm test: {text}");
}

fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/cluster.sh")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The test cluster; stopped when dropped.
struct Cluster {
    state: PathBuf,
    port: u16,
    conf: PathBuf,
}

impl Cluster {
    fn script(&self, action: &str) -> Output {
        command_without_slurm("bash")
            .arg(cluster_script())
            .arg(action)
            .env("MPR_SWEEP_SLURM_DIR", &self.state)
            .env("MPR_SWEEP_SLURM_PORT", self.port.to_string())
            .env("MPR_SWEEP_SLURM_TIMEOUT", "60")
            .output()
            .expect("bash runs")
    }

    fn start(state: &Path) -> Result<Cluster, String> {
        let port = free_port_pair().ok_or("no two free TCP ports on 127.0.0.1")?;
        let cluster = Cluster {
            state: state.to_path_buf(),
            port,
            conf: state.join("slurm.conf"),
        };
        let out = cluster.script("start");
        if !out.status.success() {
            let logs = cluster.logs();
            drop(cluster);
            return Err(format!(
                "tests/slurm/cluster.sh start failed:\n{}\n{logs}",
                describe(&out)
            ));
        }
        Ok(cluster)
    }

    /// A Slurm client command of this cluster.
    fn slurm(&self, program: &str) -> Command {
        let mut cmd = command_without_slurm(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    #[track_caller]
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.slurm(program).args(args).output().expect("runs");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}",
            describe(&out),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sbatch --parsable ARGS` → the job id.
    #[track_caller]
    fn submit(&self, args: &[&str]) -> u64 {
        let mut all = vec!["--parsable"];
        all.extend_from_slice(args);
        let out = self.run("sbatch", &all);
        let id = out.trim().split(';').next().unwrap_or_default();
        id.parse()
            .unwrap_or_else(|_| panic!("sbatch printed {out:?}, not a job id"))
    }

    /// Job ids (`123_4` for array tasks) still in the queue for `job`.
    fn queued(&self, job: &str) -> Vec<(String, String)> {
        let out = self
            .slurm("squeue")
            .args(["--noheader", "--array", "--format=%i %T", "--jobs", job])
            .output()
            .expect("squeue runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (id, state) = l.trim().split_once(' ')?;
                Some((id.to_string(), state.to_string()))
            })
            .collect()
    }

    #[track_caller]
    fn wait_done(&self, job: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let q = self.queued(&job.to_string());
            if q.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "job {job} not finished after {timeout:?}: {q:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The daemons' log tails, for failure messages.
    fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["slurmctld.log", "slurmd.log", "munged.out"] {
            let p = self.state.join("log").join(name);
            if let Ok(t) = fs::read_to_string(&p) {
                let lines: Vec<&str> = t.lines().collect();
                let tail = &lines[lines.len().saturating_sub(15)..];
                s += &format!("--- {}\n{}\n", p.display(), tail.join("\n"));
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = self.script("stop");
        if !out.status.success() {
            say(&format!("cluster.sh stop failed: {}", describe(&out)));
        }
    }
}

fn free_port_pair() -> Option<u16> {
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let p = l.local_addr().ok()?.port();
        if p < 65535 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return Some(p);
        }
    }
    None
}

fn mpr(args: &[&str]) -> Output {
    mpr_sweep().args(args).output()
}

fn status_json(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let out = mpr(&["status", s(dir), "--json"]);
    let v =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)));
    (out.status.code(), v)
}

/// Writes the sbatch script of `spec` for `dir` (which creates the log directory).
fn script(
    work: &Path,
    spec: &Path,
    dir: &Path,
    name: &str,
    shards: u64,
    extra: &[&str],
) -> PathBuf {
    let shards = shards.to_string();
    let mut args = vec![
        "sbatch",
        s(spec),
        "--out",
        s(dir),
        "--shards",
        &shards,
        "--cpus-per-task",
        "1",
        "--time",
        "00:10:00",
        "--job-name",
        name,
    ];
    args.extend_from_slice(extra);
    let out = mpr(&args);
    assert!(out.status.success(), "{}", describe(&out));
    // sbatch created the log directory that Slurm needs (and does not create itself).
    assert!(dir.join("logs").is_dir(), "{}", describe(&out));
    let path = work.join(format!("{name}.sh"));
    fs::write(&path, &out.stdout).unwrap();
    path
}

fn meta(path: &Path, key: &str) -> Option<String> {
    part_meta(path).0.remove(key)
}

#[test]
fn slurm_array_job_end_to_end() {
    let require = std::env::var("MPR_SWEEP_REQUIRE_SLURM").is_ok_and(|v| v == "1");
    let skip = |why: &str| {
        if require {
            panic!("MPR_SWEEP_REQUIRE_SLURM=1, but {why}");
        }
        say(&format!("SKIPPED: {why}"));
        println!("SKIPPED: {why}");
    };
    for program in [
        "sbatch",
        "squeue",
        "scancel",
        "sinfo",
        "slurmctld",
        "slurmd",
        "munged",
    ] {
        if !on_path(program) {
            return skip(&format!(
                "{program} is not on PATH (apt-get install slurmctld slurmd slurm-client munge)"
            ));
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("the test cluster runs slurmd, which needs root");
    }
    let started = Instant::now();
    // munged (as user munge) must reach its socket: a world-traversable directory.
    let work = tempfile::Builder::new()
        .prefix("mpr-slurm-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let work = work.path();
    let cluster = match Cluster::start(&work.join("slurm")) {
        Ok(c) => c,
        Err(why) => return skip(&format!("the Slurm test cluster did not start: {why}")),
    };
    say(&format!(
        "cluster up on port {} in {:.1} s",
        cluster.port,
        started.elapsed().as_secs_f64()
    ));

    // 1. A quick sweep in 4 array tasks submitted by `sbatch --submit` alone (no mkdir, no
    //    script file by hand), and an analysis job chained with afterok.
    let spec = work.join("quick.yaml");
    fs::write(&spec, QUICK).unwrap();
    let dir = work.join("quick");
    let shards = SHARDS.to_string();
    let submitted = mpr_sweep()
        .env("SLURM_CONF", &cluster.conf)
        .args(["sbatch", s(&spec), "--out", s(&dir), "--shards", &shards])
        .args(["--cpus-per-task", "1", "--time", "00:10:00"])
        .args(["--job-name", "mpr-quick", "--submit"])
        .output();
    assert!(submitted.status.success(), "{}", describe(&submitted));
    let job: u64 = String::from_utf8_lossy(&submitted.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "sbatch --submit printed no job id: {}",
                describe(&submitted)
            )
        });
    assert!(dir.join("job.sh").is_file() && dir.join("logs").is_dir());
    let analysis_out = work.join("analysis.txt");
    let analysis = cluster.submit(&[
        &format!("--dependency=afterok:{job}"),
        "--job-name=mpr-analysis",
        &format!("--output={}", s(&work.join("analysis.log"))),
        "--wrap",
        &format!("{} status {} > {}", s(&bin()), s(&dir), s(&analysis_out)),
    ]);
    cluster.wait_done(job, Duration::from_secs(180));
    cluster.wait_done(analysis, Duration::from_secs(60));
    say(&format!(
        "quick array {job} done at {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let out = mpr(&["status", s(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = fs::read_to_string(&analysis_out).unwrap_or_default();
    assert!(
        report.contains("complete: 4 of 4 shards"),
        "the afterok job saw: {report:?}"
    );
    for i in 0..SHARDS {
        let log = dir.join("logs").join(format!("{job}_{i}.out"));
        let log_text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("{log:?}: {e}"));
        assert!(
            log_text.contains(&format!("(shard {i}/{SHARDS},")),
            "{log_text}"
        );
        let part = dir
            .join("summary")
            .join(format!("part-{i:05}-of-{SHARDS:05}.parquet"));
        assert_eq!(
            meta(&part, "mpr_sweep.slurm_job"),
            Some(format!("{job}_{i}"))
        );
        assert_eq!(
            meta(&part, "mpr_sweep.shard"),
            Some(format!("{i}/{SHARDS}"))
        );
    }
    // The parts together equal an unsharded run, bit for bit.
    let whole = work.join("whole");
    let out = mpr(&["run", s(&spec), "--out", s(&whole), "--quiet"]);
    assert!(out.status.success(), "{}", describe(&out));
    let sharded = Table::concat(
        (0..SHARDS)
            .map(|i| {
                Table::read(
                    &dir.join("summary")
                        .join(format!("part-{i:05}-of-{SHARDS:05}.parquet")),
                )
            })
            .collect(),
    );
    let unsharded = Table::read(&whole.join("summary/part-00000-of-00001.parquet"));
    assert_eq!(sharded.rows, 24);
    assert_tables_bitwise_equal(&sharded, &unsharded, "sharded and unsharded summaries");

    // 2. A slow sweep; one array task is cancelled mid-run.
    let spec = work.join("slow.yaml");
    fs::write(&spec, SLOW).unwrap();
    let dir = work.join("slow");
    let job_sh = script(work, &spec, &dir, "mpr-slow", SHARDS, &[]);
    let job = cluster.submit(&[s(&job_sh)]);
    let victim = format!("{job}_1");
    cancel_mid_run(&cluster, job, &victim, &dir, 1, 4);
    say(&format!(
        "cancelled {victim} at {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    cluster.wait_done(job, Duration::from_secs(300));
    let victim_part = dir.join("summary/part-00001-of-00004.parquet");
    assert!(
        !victim_part.exists(),
        "task {victim} finished before it was cancelled: make SLOW slower"
    );
    let log = fs::read_to_string(dir.join("logs").join(format!("{victim}.out"))).unwrap();
    say(&format!("log of the cancelled task: {}", log.trim()));
    let (code, v) = status_json(&dir);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["array"], "1", "{v:#}");
    assert_eq!(v["missing_shards"], serde_json::json!([1]));
    assert_eq!(v["corrupt_shards"], serde_json::json!([]));
    let out = mpr(&["status", s(&dir)]);
    let status_text = String::from_utf8_lossy(&out.stdout);
    assert!(
        status_text.contains("sbatch --array=1 job.sh"),
        "{status_text}"
    );
    // SIGTERM stopped it cleanly: no temporary file left behind.
    assert_eq!(
        v["temporary_files"],
        serde_json::json!([]),
        "log of the cancelled task:\n{log}"
    );
    assert!(log.contains("interrupted by SIGTERM"), "{log}");

    // Resubmit exactly what status lists.
    let array = v["array"].as_str().unwrap().to_string();
    let again = cluster.submit(&[&format!("--array={array}"), s(&job_sh)]);
    cluster.wait_done(again, Duration::from_secs(180));
    let out = mpr(&["status", s(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let part_job = meta(&victim_part, "mpr_sweep.slurm_job");
    assert_eq!(part_job, Some(format!("{again}_1")));
    // The other parts are those of the first submission (--resume skipped nothing twice).
    for i in [0, 2, 3] {
        let p = dir
            .join("summary")
            .join(format!("part-{i:05}-of-00004.parquet"));
        assert_eq!(meta(&p, "mpr_sweep.slurm_job"), Some(format!("{job}_{i}")));
    }
    say(&format!(
        "cancel and resubmission done at {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // 3. A packed script (one array task runs both shards) cancelled mid-run: its shell
    //    waits for the interrupted shard, nothing partial is left, and status maps the two
    //    unfinished shards to array task 0.
    let spec = work.join("medium.yaml");
    fs::write(&spec, MEDIUM).unwrap();
    let dir = work.join("packed");
    let job_sh = script(
        work,
        &spec,
        &dir,
        "mpr-packed",
        2,
        &["--max-array-size", "1"],
    );
    let script_text = fs::read_to_string(&job_sh).unwrap();
    assert!(script_text.contains("#SBATCH --array=0\n"), "{script_text}");
    let job = cluster.submit(&[s(&job_sh)]);
    let victim = format!("{job}_0");
    cancel_mid_run(&cluster, job, &victim, &dir, 0, 2);
    cluster.wait_done(job, Duration::from_secs(120));
    let log = fs::read_to_string(dir.join("logs").join(format!("{victim}.out"))).unwrap();
    // No part exists yet: the shard count comes from --shards.
    let out = mpr(&[
        "status",
        s(&dir),
        "--shards",
        "2",
        "--per-task",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(
        v["missing_shards"],
        serde_json::json!([0, 1]),
        "{v:#}\n{log}"
    );
    assert_eq!(v["array"], "0");
    assert_eq!(v["temporary_files"], serde_json::json!([]), "{log}");
    assert!(log.contains("interrupted by SIGTERM"), "{log}");
    let again = cluster.submit(&["--array=0", s(&job_sh)]);
    cluster.wait_done(again, Duration::from_secs(180));
    let out = mpr(&["status", s(&dir), "--per-task", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    say(&format!(
        "passed in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

/// Waits until array task `victim` runs and writes its temporary part of shard `shard`,
/// lets it work half a second, and cancels it with `scancel`.
fn cancel_mid_run(cluster: &Cluster, job: u64, victim: &str, dir: &Path, shard: u64, n: u64) {
    let temp = format!(".part-{shard:05}-of-{n:05}.parquet.tmp-");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = cluster
            .queued(victim)
            .iter()
            .any(|(id, state)| id == victim && state == "RUNNING");
        let writing = fs::read_dir(dir.join("summary")).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&temp))
        });
        if running && writing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task {victim} never ran: {:?}\n{}",
            cluster.queued(&job.to_string()),
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    cluster.run("scancel", &[victim]);
}

//! Running `mpr-sweep` (and the scripts it writes) from the tests.
//!
//! Every child starts without the Slurm variables of the environment running the tests (a
//! test run inside a Slurm job must not pick up the job's shard or CPUs); the tests that
//! need them set them explicitly. The library's own list, `SLURM_VARS`, names every
//! variable the tool reads.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mpr_sweep::cluster::SLURM_VARS;

/// The `mpr-sweep` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mpr-sweep"))
}

/// `mpr-sweep` without the Slurm variables the tool reads, and without `RUST_BACKTRACE`
/// (so that a panic prints its usual hint, which some tests look for).
pub fn mpr_sweep() -> Mpr {
    let mut cmd = Command::new(bin());
    for var in SLURM_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("RUST_BACKTRACE");
    Mpr { cmd, timeout: None }
}

/// `program` (a shell running a generated script, a Slurm client) without any `SLURM_*`,
/// `SBATCH_*` or `SQUEUE_*` variable of the environment running the tests: besides the
/// variables `mpr-sweep` reads, Slurm's own commands take their options from these.
pub fn command_without_slurm(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("SLURM_") || k.starts_with("SBATCH_") || k.starts_with("SQUEUE_") {
            cmd.env_remove(&*k);
        }
    }
    cmd
}

/// One `mpr-sweep` command line: arguments, environment and a time limit, then run to
/// completion ([`Mpr::output`], [`Mpr::outcome`]) or started ([`Mpr::spawn`]).
pub struct Mpr {
    cmd: Command,
    timeout: Option<Duration>,
}

impl Mpr {
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// Kills the command if it has not finished after `limit` (for [`Mpr::output`] and
    /// [`Mpr::outcome`]; catches hangs).
    pub fn timeout(&mut self, limit: Duration) -> &mut Self {
        self.timeout = Some(limit);
        self
    }

    /// Runs the command to completion and returns what it did.
    pub fn output(&mut self) -> Output {
        let program = self.cmd.get_program().to_owned();
        let mut cmd = Command::new(&program);
        cmd.args(self.cmd.get_args());
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut cmd = assert_cmd::Command::from_std(cmd);
        if let Some(limit) = self.timeout {
            cmd.timeout(limit);
        }
        cmd.output().expect("mpr-sweep starts")
    }

    /// Runs the command to completion; its output as text.
    pub fn outcome(&mut self) -> Outcome {
        Outcome::from(self.output())
    }

    /// Starts the command with the given stdout and stderr and returns at once (for tests
    /// that signal or kill it).
    pub fn spawn(&mut self, stdout: Stdio, stderr: Stdio) -> Child {
        self.cmd
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("mpr-sweep starts")
    }
}

/// What a finished command did.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Outcome {
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
        }
    }
}

impl Outcome {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{}", self.describe());
        self
    }
}

/// Exit status, stdout and stderr of a finished command, for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `text` to `dir/name` (a spec, a script) and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// The path as `&str`, for argument lists (the tests' temporary paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every file under `dir`, recursively (hidden ones included), relative to `dir`, sorted;
/// none when `dir` does not exist. Directories that cannot be read (or vanish while a run
/// renames its files) are passed over.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// [`files_under`] as text (`summary/part-00000-of-00001.parquet`).
pub fn file_names_under(dir: &Path) -> Vec<String> {
    files_under(dir)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

//! Running on a Slurm cluster: the array-task environment, the sbatch script of
//! `mpr-sweep sbatch`, and the result-directory check of `mpr-sweep status`.
//!
//! Nothing here reads the process environment by itself: the Slurm functions take a
//! lookup function ([`process_env`] in the binary, a map in tests), so that results never
//! depend on the Slurm variables of whatever process runs the tests.

use std::fmt::Write as _;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::Error;
use crate::integrate::Isa;
use crate::output::{Layout, check_part, spec_sha256};
use crate::plan::{Plan, Shard};
use crate::spec::{NoiseKind, Spec};

/// Slurm's default `MaxArraySize`: array indices must be below it.
pub const DEFAULT_MAX_ARRAY_SIZE: u64 = 1001;

/// Shards shorter than this spend a large share of their time in Slurm's scheduling and
/// start-up; `sbatch` advises fewer shards below it.
pub const MIN_SHARD_SECONDS: f64 = 300.0;

/// Looks up one environment variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`Env`]; a value that is not UTF-8 comes back with
/// replacement characters, which then fails to parse with an error naming the variable.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var_os(key).map(|v| v.to_string_lossy().into_owned())
}

/// A Slurm variable with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Slurm environment: {var}{}: {message}", value.as_ref().map(|v| format!("={v:?}")).unwrap_or_default())]
pub struct SlurmEnvError {
    pub var: &'static str,
    pub value: Option<String>,
    pub message: String,
}

impl From<SlurmEnvError> for Error {
    fn from(e: SlurmEnvError) -> Error {
        Error::Usage(e.to_string())
    }
}

const TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
const TASK_MIN: &str = "SLURM_ARRAY_TASK_MIN";
const TASK_MAX: &str = "SLURM_ARRAY_TASK_MAX";
const TASK_STEP: &str = "SLURM_ARRAY_TASK_STEP";
const TASK_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
const ARRAY_JOB_ID: &str = "SLURM_ARRAY_JOB_ID";
const JOB_ID: &str = "SLURM_JOB_ID";
const CPUS_PER_TASK: &str = "SLURM_CPUS_PER_TASK";
const CPUS_ON_NODE: &str = "SLURM_CPUS_ON_NODE";

/// Every variable this module reads (tests remove them from child processes).
pub const SLURM_VARS: [&str; 9] = [
    TASK_ID,
    TASK_MIN,
    TASK_MAX,
    TASK_STEP,
    TASK_COUNT,
    ARRAY_JOB_ID,
    JOB_ID,
    CPUS_PER_TASK,
    CPUS_ON_NODE,
];

fn bad(var: &'static str, value: &str, message: impl Into<String>) -> SlurmEnvError {
    SlurmEnvError {
        var,
        value: Some(value.to_string()),
        message: message.into(),
    }
}

/// A variable's value as an unsigned integer; `None` when unset.
fn number(env: Env, var: &'static str) -> Result<Option<u64>, SlurmEnvError> {
    match env(var) {
        None => Ok(None),
        Some(v) => {
            let t = v.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(var, &v, "not a non-negative integer"));
            }
            t.parse()
                .map(Some)
                .map_err(|_| bad(var, &v, "out of range"))
        }
    }
}

fn required(env: Env, var: &'static str) -> Result<u64, SlurmEnvError> {
    number(env, var)?.ok_or_else(|| SlurmEnvError {
        var,
        value: None,
        message: format!("not set, but {TASK_ID} is: cannot derive the shard of this array task (pass --shard I/N)"),
    })
}

/// The array-task variables of a Slurm job array task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayTask {
    pub task_id: u64,
    pub min: u64,
    pub step: u64,
    pub count: u64,
}

impl ArrayTask {
    /// Reads the array-task variables; `None` outside a job array.
    pub fn from_env(env: Env) -> Result<Option<ArrayTask>, SlurmEnvError> {
        let Some(task_id) = number(env, TASK_ID)? else {
            return Ok(None);
        };
        let min = required(env, TASK_MIN)?;
        let step = required(env, TASK_STEP)?;
        let count = required(env, TASK_COUNT)?;
        let max = number(env, TASK_MAX)?;
        let text = |v: u64| v.to_string();
        if step == 0 {
            return Err(bad(TASK_STEP, &text(step), "must be at least 1"));
        }
        if count == 0 {
            return Err(bad(TASK_COUNT, &text(count), "must be at least 1"));
        }
        if task_id < min {
            return Err(bad(
                TASK_ID,
                &text(task_id),
                format!("below {TASK_MIN}={min}"),
            ));
        }
        if (task_id - min) % step != 0 {
            return Err(bad(
                TASK_ID,
                &text(task_id),
                format!("not on the array's grid {TASK_MIN}={min} + k * {TASK_STEP}={step}"),
            ));
        }
        if (task_id - min) / step >= count {
            return Err(bad(
                TASK_ID,
                &text(task_id),
                format!(
                    "index {} of an array of {TASK_COUNT}={count} tasks",
                    (task_id - min) / step
                ),
            ));
        }
        if let Some(max) = max {
            // An array like --array=1,3,4 has MIN=1, MAX=4, STEP=1 and COUNT=3: its
            // tasks are not MIN + k*STEP, so the rule does not apply.
            let regular = min
                .checked_add((count - 1).saturating_mul(step))
                .is_some_and(|last| last == max);
            if !regular {
                return Err(bad(
                    TASK_COUNT,
                    &text(count),
                    format!(
                        "the array ({TASK_MIN}={min}, {TASK_MAX}={max}, {TASK_STEP}={step}) is not an evenly spaced range of {count} tasks, so a task's shard cannot be derived from its index; pass --shard I/N (the script of `mpr-sweep sbatch` does)"
                    ),
                ));
            }
        }
        Ok(Some(ArrayTask {
            task_id,
            min,
            step,
            count,
        }))
    }

    /// Shard `(ID - MIN) / STEP` of `COUNT`.
    pub fn shard(&self) -> Shard {
        Shard {
            index: (self.task_id - self.min) / self.step,
            count: self.count,
        }
    }
}

/// The shard of this process when it is a Slurm array task, else `None`.
pub fn array_shard(env: Env) -> Result<Option<Shard>, SlurmEnvError> {
    Ok(ArrayTask::from_env(env)?.map(|t| t.shard()))
}

/// CPUs Slurm allocated: `SLURM_CPUS_PER_TASK` (set when the job asked for `-c`), else
/// `SLURM_CPUS_ON_NODE`; `None` outside Slurm.
pub fn slurm_cpus(env: Env) -> Result<Option<usize>, SlurmEnvError> {
    for var in [CPUS_PER_TASK, CPUS_ON_NODE] {
        if let Some(n) = number(env, var)? {
            if n == 0 {
                return Err(bad(var, "0", "must be at least 1"));
            }
            return Ok(Some(n as usize));
        }
    }
    Ok(None)
}

/// The Slurm job of this process for the metadata: `ARRAYJOBID_TASKID` in an array task
/// (the ids `squeue` and `sacct` show), `JOBID` in a plain job, `None` outside Slurm.
pub fn job_label(env: Env) -> Result<Option<String>, SlurmEnvError> {
    if let Some(task) = number(env, TASK_ID)? {
        let job = match number(env, ARRAY_JOB_ID)? {
            Some(j) => j,
            None => required_job(env)?,
        };
        return Ok(Some(format!("{job}_{task}")));
    }
    Ok(number(env, JOB_ID)?.map(|j| j.to_string()))
}

fn required_job(env: Env) -> Result<u64, SlurmEnvError> {
    number(env, JOB_ID)?.ok_or_else(|| SlurmEnvError {
        var: ARRAY_JOB_ID,
        value: None,
        message: format!("not set, and neither is {JOB_ID}, but {TASK_ID} is"),
    })
}

/// `3,7-9`: sorted, distinct indices compressed to the list syntax of `sbatch --array`.
pub fn array_list(indices: &[u64]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j == i {
            let _ = write!(out, "{}", sorted[i]);
        } else {
            let _ = write!(out, "{}-{}", sorted[i], sorted[j]);
        }
        i = j + 1;
    }
    out
}

/// A Slurm time limit (`--time`) in seconds; `None` for `UNLIMITED`/`INFINITE`.
/// Forms: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
pub fn parse_time_limit(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    let err = || {
        format!(
            "--time {text:?}: not a Slurm time limit (HH:MM:SS, D-HH:MM:SS, MM, MM:SS, D-HH or D-HH:MM)"
        )
    };
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
        return Ok(None);
    }
    let field = |s: &str| -> Result<u64, String> {
        if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        s.parse().map_err(|_| err())
    };
    let (days, rest) = match t.split_once('-') {
        Some((d, rest)) => (Some(field(d)?), rest),
        None => (None, t),
    };
    let parts: Vec<u64> = rest.split(':').map(field).collect::<Result<_, _>>()?;
    let below = |v: u64, limit: u64| if v < limit { Ok(v) } else { Err(err()) };
    let seconds = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + below(*s, 60)?,
        (None, [h, m, s]) => h * 3600 + below(*m, 60)? * 60 + below(*s, 60)?,
        (Some(d), [h]) => d * 86400 + below(*h, 24)? * 3600,
        (Some(d), [h, m]) => d * 86400 + below(*h, 24)? * 3600 + below(*m, 60)? * 60,
        (Some(d), [h, m, s]) => {
            d * 86400 + below(*h, 24)? * 3600 + below(*m, 60)? * 60 + below(*s, 60)?
        }
        _ => return Err(err()),
    };
    if seconds == 0 {
        return Err(format!(
            "--time {text:?}: must be positive (use UNLIMITED for no limit)"
        ));
    }
    Ok(Some(seconds))
}

/// Steps integrated by `runs` runs of the sweep, summed (each dt value gets an equal share
/// of the runs, exact for a product grid).
pub fn run_steps(spec: &Spec, runs: u64) -> f64 {
    let dts = spec.dt_values();
    let mean_steps = dts
        .iter()
        .map(|&dt| spec.timing(dt).steps as f64)
        .sum::<f64>()
        / dts.len() as f64;
    runs as f64 * mean_steps
}

/// Estimated cost of one run-step on one core of the release build, in ns, for `plan`
/// and `sbatch`. Measured on the 2-core Zen 4 development machine (W1, exp_euler, 16,384
/// runs x 10,000 steps, one thread, whole process): 2.7 ns deterministic, 5.6 ns with
/// white noise on v, 8.3 ns with white noise on v and OU noise on r (portable path: 5.2,
/// 11.8, 19.0). A debug build is several times slower.
pub fn ns_per_run_step(spec: &Spec, isa: Isa) -> f64 {
    let (base, per_noise) = match isa {
        Isa::Avx2Fma => (2.7, 2.8),
        Isa::Portable => (5.2, 6.9),
    };
    let noisy = spec.noise.iter().filter(|n| **n != NoiseKind::None).count();
    base + per_noise * noisy as f64
}

/// A duration for estimates: `0.3 s`, `42 s`, then `H:MM:SS`.
pub fn duration(seconds: f64) -> String {
    if seconds < 0.01 {
        "<0.01 s".into()
    } else if seconds < 0.1 {
        format!("{seconds:.2} s")
    } else if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else {
        clock(seconds)
    }
}

/// Writes `text` as comment lines of at most 90 columns: `#` and `indent` spaces, and two
/// more on continuation lines.
fn comment(w: &mut String, indent: usize, text: &str) {
    let first = format!("#{}", " ".repeat(indent));
    let mut line = first.clone();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > 90 {
            let _ = writeln!(w, "{line}");
            line = format!("{first}  ");
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    let _ = writeln!(w, "{line}");
}

/// `H:MM:SS`, or `D-HH:MM:SS` from a day on.
pub fn clock(seconds: f64) -> String {
    let s = seconds.clamp(0.0, 1e12).round() as u64;
    if s >= 86400 {
        format!(
            "{}-{:02}:{:02}:{:02}",
            s / 86400,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60
        )
    } else {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

/// What `mpr-sweep sbatch` was asked for.
#[derive(Debug, Clone)]
pub struct SbatchOptions {
    /// The `mpr-sweep` binary the job runs (absolute).
    pub exe: PathBuf,
    /// The spec file (absolute).
    pub spec_path: PathBuf,
    /// The result directory (absolute).
    pub out: PathBuf,
    pub shards: u64,
    pub cpus_per_task: u64,
    /// As given, validated with [`parse_time_limit`].
    pub time: Option<String>,
    pub partition: Option<String>,
    pub max_running: Option<u64>,
    pub max_array_size: u64,
    pub job_name: Option<String>,
    /// Further `#SBATCH` lines, verbatim.
    pub extra: Vec<String>,
}

/// A generated script and the notes for the terminal.
#[derive(Debug, Clone)]
pub struct SbatchScript {
    pub text: String,
    /// Instructions and warnings for stderr (the log directory, sizing problems).
    pub notes: Vec<String>,
    /// Shards run by each array task (1 unless `shards > max_array_size`).
    pub per_task: u64,
    /// Array tasks.
    pub tasks: u64,
}

/// Single-quotes `s` for the shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// A value written into an `#SBATCH` line: one word, no characters Slurm or the shell
/// would reinterpret.
fn sbatch_word(what: &str, value: &str) -> Result<(), Error> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "'\"\\%$`#".contains(c))
    {
        return Err(usage(format!(
            "{what} {value:?}: must be one word without spaces, quotes, backslashes or any of % $ ` #"
        )));
    }
    Ok(())
}

fn job_name_from(spec: &Spec, spec_path: &Path) -> String {
    let base = spec.name.clone().unwrap_or_else(|| {
        spec_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into())
    });
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("mpr-{clean}")
}

/// The sbatch script of a sweep: a job array whose task `t` runs shard `t` of `shards`
/// (or shards `t*k .. t*k+k-1` when the shards outnumber `max_array_size`).
pub fn sbatch_script(spec: &Spec, opts: &SbatchOptions) -> Result<SbatchScript, Error> {
    let plan = Plan::new(spec)?;
    let n = opts.shards;
    if n == 0 {
        return Err(usage("--shards must be at least 1"));
    }
    if n > plan.runs {
        return Err(usage(format!(
            "--shards {n}: the sweep has only {} runs; use at most --shards {}",
            plan.runs, plan.runs
        )));
    }
    if opts.cpus_per_task == 0 {
        return Err(usage("--cpus-per-task must be at least 1"));
    }
    if opts.max_running == Some(0) {
        return Err(usage("--max-running must be at least 1"));
    }
    if opts.max_array_size < 1 {
        return Err(usage("--max-array-size must be at least 1"));
    }
    let limit = match &opts.time {
        Some(t) => {
            sbatch_word("--time", t)?;
            parse_time_limit(t).map_err(usage)?
        }
        None => None,
    };
    if let Some(p) = &opts.partition {
        sbatch_word("--partition", p)?;
    }
    let job_name = match &opts.job_name {
        Some(j) => {
            sbatch_word("--job-name", j)?;
            j.clone()
        }
        None => job_name_from(spec, &opts.spec_path),
    };
    for e in &opts.extra {
        if !e.trim_start().starts_with('-') || e.contains(['\n', '\r']) {
            return Err(usage(format!(
                "--extra {e:?}: must be sbatch options on one line, such as \"--mem=4G --account=lab\""
            )));
        }
    }
    let out_text = opts.out.to_string_lossy();
    sbatch_word("--out", &out_text).map_err(|_| {
        usage(format!(
            "--out {out_text:?}: the log path in #SBATCH --output cannot hold spaces, quotes, backslashes or % $ ` #: choose another result directory"
        ))
    })?;
    let logs = opts.out.join("logs");
    let exe = opts.exe.to_string_lossy();
    let spec_path = opts.spec_path.to_string_lossy();

    // Packing: array indices stay below MaxArraySize.
    let per_task = n.div_ceil(opts.max_array_size);
    let tasks = n.div_ceil(per_task);
    let mut array = format!("0-{}", tasks - 1);
    if tasks == 1 {
        array = "0".into();
    }
    if let Some(k) = opts.max_running {
        let _ = write!(array, "%{k}");
    }

    // Sizing.
    let isa = Isa::Avx2Fma;
    let ns = ns_per_run_step(spec, isa);
    let total = run_steps(spec, plan.runs);
    let one_core = total * ns * 1e-9;
    let c = opts.cpus_per_task as f64;
    let shard_s = one_core / n as f64 / c;
    let task_s = shard_s * per_task as f64;
    let (min_runs, max_runs) = {
        let q = plan.runs / n;
        (q, if plan.runs % n == 0 { q } else { q + 1 })
    };
    let runs_text = if min_runs == max_runs {
        format!("{min_runs}")
    } else {
        format!("{min_runs}-{max_runs}")
    };
    let logs_q = shell_quote(&logs.to_string_lossy());
    let mut advice = Vec::new();
    let mut notes = vec![format!(
        "mpr-sweep: create the log directory before submitting: mkdir -p {logs_q}"
    )];
    let best_n = ((one_core / c / MIN_SHARD_SECONDS).floor() as u64).clamp(1, plan.runs);
    if shard_s < MIN_SHARD_SECONDS && n > 1 {
        let msg = format!(
            "each shard takes only ~{} with {} CPU(s): Slurm's scheduling and start-up (seconds to minutes per task) would dominate. Aim for shards of several minutes at least{}.",
            duration(shard_s),
            opts.cpus_per_task,
            if best_n < n {
                format!(
                    ", e.g. --shards {best_n} (~{} each)",
                    duration(one_core / c / best_n as f64)
                )
            } else {
                String::new()
            }
        );
        notes.push(format!("mpr-sweep: note: {msg}"));
        advice.push(format!("NOTE: {msg}"));
    }
    if let Some(limit) = limit
        && task_s > 0.5 * limit as f64
    {
        let need =
            ((one_core / c / (0.5 * limit as f64) * per_task as f64).ceil() as u64).max(n + 1);
        let msg = format!(
            "a task may not finish within --time {} (estimated ~{} per task; keep it under half the limit): use --shards {need} or more, more --cpus-per-task, or a longer --time.",
            opts.time.as_deref().unwrap_or_default().trim(),
            duration(task_s)
        );
        notes.push(format!("mpr-sweep: warning: {msg}"));
        advice.push(format!("WARNING: {msg}"));
    }
    if opts.time.is_none() {
        advice.push(
            "No --time given: the partition's default limit applies; a limit close to a task's time (with a margin) usually starts sooner.".into(),
        );
    }

    let mut s = String::new();
    let w = &mut s;
    let name = spec.name.as_deref().unwrap_or("(unnamed)");
    let _ = writeln!(w, "#!/bin/bash");
    let _ = writeln!(
        w,
        "# Slurm job array of the mpr-sweep sweep {name:?}, written by mpr-sweep {}.",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        w,
        "#   spec:    {spec_path} (sha256 {})",
        &spec_sha256(&spec.text)[..12]
    );
    let _ = writeln!(w, "#   results: {out_text}");
    comment(
        w,
        3,
        &format!(
            "{} runs in {n} shards of {runs_text} runs (shard i holds runs [floor(i*{}/{n}), floor((i+1)*{}/{n}))); array task i runs shard i.",
            plan.runs, plan.runs, plan.runs
        ),
    );
    if per_task > 1 {
        comment(
            w,
            3,
            &format!(
                "{n} shards exceed --max-array-size {} (the cluster's MaxArraySize: `scontrol show config | grep MaxArraySize`), so each of the {tasks} array tasks runs {per_task} shards one after another: task t runs shards t*{per_task} .. t*{per_task}+{}.",
                opts.max_array_size,
                per_task - 1
            ),
        );
    }
    let _ = writeln!(w, "#");
    let _ = writeln!(
        w,
        "# 1. Create the log directory first: sbatch does not, and a task whose log file cannot"
    );
    let _ = writeln!(w, "#    be opened fails without a trace:");
    let _ = writeln!(w, "#      mkdir -p {logs_q}");
    let _ = writeln!(w, "# 2. Submit this script (saved as job.sh):");
    let _ = writeln!(w, "#      sbatch job.sh");
    let _ = writeln!(
        w,
        "# 3. When the array has finished, list complete, missing and corrupt parts:"
    );
    let per_task_flag = if per_task > 1 {
        format!(" --per-task {per_task}")
    } else {
        String::new()
    };
    let _ = writeln!(
        w,
        "#      mpr-sweep status {}{per_task_flag}",
        shell_quote(&out_text)
    );
    let _ = writeln!(
        w,
        "# 4. Resubmit exactly the array tasks it lists (complete parts are skipped), e.g.:"
    );
    let _ = writeln!(w, "#      sbatch --array=3,7-9 job.sh");
    let _ = writeln!(
        w,
        "# 5. Chain an analysis that starts only when every task succeeded:"
    );
    let _ = writeln!(w, "#      sbatch --dependency=afterok:<jobid> analysis.sh");
    let _ = writeln!(w, "#");
    comment(
        w,
        1,
        &format!(
            "Sizing, estimated at {ns} ns per run-step per core (release build on an AVX2+FMA CPU; slower without AVX2; each task's log ends with the measured run-steps/s):"
        ),
    );
    let _ = writeln!(
        w,
        "#   the sweep: {total:.3e} run-steps, ~{} on one core",
        duration(one_core)
    );
    let _ = writeln!(
        w,
        "#   a shard:   {:.3e} run-steps, ~{} with --cpus-per-task {}",
        total / n as f64,
        duration(shard_s),
        opts.cpus_per_task,
    );
    if per_task > 1 {
        let _ = writeln!(w, "#   a task:    {per_task} shards, ~{}", duration(task_s));
    }
    comment(
        w,
        1,
        &format!(
            "Pick --shards so that a shard takes several minutes at least (Slurm spends seconds to minutes scheduling and starting every task) and well under --time (a task stopped at its limit loses that shard's work until it is resubmitted). Shards of about {} with {} CPU(s): --shards {best_n}.",
            duration(MIN_SHARD_SECONDS),
            opts.cpus_per_task
        ),
    );
    for a in &advice {
        comment(w, 1, a);
    }
    let _ = writeln!(w, "#");
    let _ = writeln!(w, "#SBATCH --job-name={job_name}");
    let _ = writeln!(w, "#SBATCH --array={array}");
    let _ = writeln!(w, "#SBATCH --cpus-per-task={}", opts.cpus_per_task);
    if let Some(t) = &opts.time {
        let _ = writeln!(w, "#SBATCH --time={}", t.trim());
    }
    if let Some(p) = &opts.partition {
        let _ = writeln!(w, "#SBATCH --partition={p}");
    }
    let _ = writeln!(w, "#SBATCH --output={}/%A_%a.out", logs.to_string_lossy());
    for e in &opts.extra {
        let _ = writeln!(w, "#SBATCH {}", e.trim());
    }
    let _ = writeln!(w);
    comment(
        w,
        1,
        "mpr-sweep runs SLURM_CPUS_PER_TASK threads. The shard comes from the array index, not from SLURM_ARRAY_TASK_MIN/STEP/COUNT, so that any --array list resubmits the same shards. --resume skips parts that are complete. On SIGTERM (time limit, preemption, scancel) a shard stops cleanly, leaves no partial part and exits with status 143.",
    );
    let _ = writeln!(w, "set -euo pipefail");
    let run = |shard: &str| {
        format!(
            "{} run {} --out {} --shard {shard} --resume",
            shell_quote(&exe),
            shell_quote(&spec_path),
            shell_quote(&out_text)
        )
    };
    if per_task == 1 {
        let _ = writeln!(
            w,
            "exec {}",
            run(&format!("\"${{SLURM_ARRAY_TASK_ID}}/{n}\""))
        );
    } else {
        let _ = writeln!(w, "shards={n}");
        let _ = writeln!(w, "per_task={per_task}");
        let _ = writeln!(w, "first=$((SLURM_ARRAY_TASK_ID * per_task))");
        comment(
            w,
            1,
            "Slurm signals every process of the task: mpr-sweep stops its shard cleanly while this shell, whose trap waits for the running command, outlives it (when the shell ends, Slurm kills what is left), then stops the loop.",
        );
        let _ = writeln!(w, "stopped=0");
        let _ = writeln!(w, "trap 'stopped=1' TERM INT");
        let _ = writeln!(
            w,
            "for ((i = first; i < first + per_task && i < shards; i++)); do"
        );
        let _ = writeln!(w, "    ((stopped)) && exit 143");
        let _ = writeln!(w, "    {} || exit $?", run("\"$i/$shards\""));
        let _ = writeln!(w, "done");
    }
    Ok(SbatchScript {
        text: s,
        notes,
        per_task,
        tasks,
    })
}

/// The state of one part file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartState {
    Complete,
    Missing,
    /// A final-named file that does not read back as this shard's part; the reason.
    Corrupt(String),
}

/// One shard of a result directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    pub index: u64,
    pub runs: Range<u64>,
    pub summary: PartState,
    /// `None` when the spec asks for no traces.
    pub traces: Option<PartState>,
}

impl ShardStatus {
    pub fn is_complete(&self) -> bool {
        self.summary == PartState::Complete
            && self
                .traces
                .as_ref()
                .is_none_or(|t| *t == PartState::Complete)
    }

    pub fn is_corrupt(&self) -> bool {
        matches!(self.summary, PartState::Corrupt(_))
            || matches!(self.traces, Some(PartState::Corrupt(_)))
    }
}

/// A temporary file of a part being written (by a running task, or left by a killed one).
#[derive(Debug, Clone, PartialEq)]
pub struct TempFile {
    pub path: PathBuf,
    pub pid: Option<u32>,
    pub bytes: u64,
    /// Seconds since its last modification.
    pub age_s: Option<f64>,
}

/// What `mpr-sweep status` found in a result directory.
#[derive(Debug, Clone)]
pub struct DirStatus {
    pub dir: PathBuf,
    pub name: Option<String>,
    pub spec_sha256: String,
    pub runs: u64,
    pub traces: bool,
    /// `None` when nothing was written yet and no `--shards` was given.
    pub shards: Option<u64>,
    pub per_task: u64,
    pub parts: Vec<ShardStatus>,
    pub temp_files: Vec<TempFile>,
    /// Files in summary/ or traces/ named like parts but not of this layout.
    pub unexpected: Vec<PathBuf>,
}

/// `part-00003-of-00016.parquet` → shard 3 of 16.
pub fn parse_part_name(name: &str) -> Option<Shard> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (i, n) = rest.split_once("-of-")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(i) || !digits(n) {
        return None;
    }
    Some(Shard {
        index: i.parse().ok()?,
        count: n.parse().ok()?,
    })
}

/// `.part-00003-of-00016.parquet.tmp-4242` (see `output::PartFile`) → the PID.
pub fn parse_temp_name(name: &str) -> Option<(Option<Shard>, Option<u32>)> {
    let rest = name.strip_prefix('.')?;
    let (final_name, pid) = rest.rsplit_once(".tmp-")?;
    Some((parse_part_name(final_name), pid.parse().ok()))
}

/// Checks a result directory: which parts are complete, missing or corrupt.
/// `shards` gives N when no part exists yet; `per_task` maps shards to array tasks of a
/// packed script (see [`sbatch_script`]).
pub fn dir_status(dir: &Path, shards: Option<u64>, per_task: u64) -> Result<DirStatus, Error> {
    let layout = Layout::new(dir);
    let not_dir = |why: String| {
        usage(format!(
            "{}: not an mpr-sweep result directory ({why})",
            dir.display()
        ))
    };
    if !dir.is_dir() {
        return Err(not_dir("no such directory".into()));
    }
    let text = match fs::read(layout.spec()) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| not_dir("spec.yaml is not UTF-8".into()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_dir("no spec.yaml".into()));
        }
        Err(e) => return Err(not_dir(format!("cannot read spec.yaml: {e}"))),
    };
    let spec = crate::spec::parse(&text).map_err(|e| not_dir(format!("spec.yaml: {e}")))?;
    let plan = Plan::new(&spec)?;
    if shards == Some(0) {
        return Err(usage("--shards must be at least 1"));
    }
    if per_task == 0 {
        return Err(usage("--per-task must be at least 1"));
    }
    let sha = spec_sha256(&spec.text);
    let traces = spec.traces.is_some();
    let mut sub_dirs = vec![(layout.summary_dir(), true)];
    if traces {
        sub_dirs.push((layout.traces_dir(), false));
    }

    // Part names, temporary files, and the shard counts present.
    let mut counts: Vec<(u64, PathBuf)> = Vec::new();
    let mut temp_files = Vec::new();
    let now = SystemTime::now();
    let mut scan = |d: &Path, counts: &mut Vec<(u64, PathBuf)>| -> Result<(), Error> {
        let entries = match fs::read_dir(d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(not_dir(format!("cannot read {}: {e}", d.display()))),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(shard) = parse_part_name(&name) {
                counts.push((shard.count, entry.path()));
            } else if let Some((_, pid)) = parse_temp_name(&name) {
                let meta = entry.metadata().ok();
                temp_files.push(TempFile {
                    path: entry.path(),
                    pid,
                    bytes: meta.as_ref().map_or(0, |m| m.len()),
                    age_s: meta
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| now.duration_since(t).ok())
                        .map(|d| d.as_secs_f64()),
                });
            }
        }
        Ok(())
    };
    for (d, _) in &sub_dirs {
        scan(d, &mut counts)?;
    }
    // The spec's own temporary file (`.spec.yaml.tmp-PID`).
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(".spec.yaml.tmp-") {
                temp_files.push(TempFile {
                    path: entry.path(),
                    pid: pid.parse().ok(),
                    bytes: entry.metadata().map_or(0, |m| m.len()),
                    age_s: None,
                });
            }
        }
    }
    temp_files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut present: Vec<u64> = counts.iter().map(|(n, _)| *n).collect();
    present.sort_unstable();
    present.dedup();
    let n = match (shards, present.as_slice()) {
        (Some(n), []) => Some(n),
        (Some(n), [m]) if *m == n => Some(n),
        (None, []) => None,
        (None, [m]) => Some(*m),
        (given, found) => {
            let listed: Vec<String> = found
                .iter()
                .map(|m| {
                    let k = counts.iter().filter(|(c, _)| c == m).count();
                    format!("{k} part file(s) of {m} shards")
                })
                .collect();
            return Err(usage(format!(
                "{}: mixed shard counts: {}{}; a result directory holds one --shard I/N layout (remove the stray parts, or rerun with --overwrite)",
                dir.display(),
                listed.join(", "),
                given.map_or(String::new(), |g| format!(", but --shards {g} was given"))
            )));
        }
    };
    let mut unexpected = Vec::new();
    let mut parts = Vec::new();
    if let Some(n) = n {
        for (count, path) in &counts {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if *count == n && parse_part_name(&name).is_some_and(|s| s.index >= n) {
                unexpected.push(path.clone());
            }
        }
        unexpected.sort();
        for index in 0..n {
            let shard = Shard { index, count: n };
            let runs = plan.shard_range(shard);
            let state = |path: PathBuf, summary: bool| {
                if !path.exists() {
                    PartState::Missing
                } else {
                    match check_part(&path, &sha, shard, &runs, summary) {
                        Ok(()) => PartState::Complete,
                        Err(why) => PartState::Corrupt(why),
                    }
                }
            };
            parts.push(ShardStatus {
                index,
                runs: runs.clone(),
                summary: state(layout.summary_part(shard), true),
                traces: traces.then(|| state(layout.traces_part(shard), false)),
            });
        }
    }
    Ok(DirStatus {
        dir: dir.to_path_buf(),
        name: spec.name.clone(),
        spec_sha256: sha,
        runs: plan.runs,
        traces,
        shards: n,
        per_task,
        parts,
        temp_files,
        unexpected,
    })
}

impl DirStatus {
    /// Every shard's parts are complete (and nothing stray sits beside them).
    pub fn is_complete(&self) -> bool {
        self.shards.is_some()
            && self.parts.iter().all(ShardStatus::is_complete)
            && self.unexpected.is_empty()
    }

    /// Shards that are missing or corrupt.
    pub fn todo(&self) -> Vec<u64> {
        self.parts
            .iter()
            .filter(|p| !p.is_complete())
            .map(|p| p.index)
            .collect()
    }

    /// The `--array=` list that reruns exactly the shards to do (their array tasks).
    pub fn array(&self) -> String {
        let tasks: Vec<u64> = self.todo().iter().map(|i| i / self.per_task).collect();
        array_list(&tasks)
    }

    /// Files to delete before resubmitting: `run --resume` skips a shard whose summary part
    /// exists, so a corrupt part, and the summary of a shard whose traces are missing or
    /// corrupt, must go first.
    /// Files to delete before resubmitting: parts of another shard count, which readers
    /// would count twice. (Corrupt parts need no deleting: `run --resume` checks a part
    /// before skipping it and rewrites one that does not read back.)
    pub fn to_remove(&self) -> Vec<PathBuf> {
        self.unexpected.clone()
    }

    fn relative<'a>(&self, p: &'a Path) -> std::borrow::Cow<'a, str> {
        match p.strip_prefix(&self.dir) {
            Ok(r) => r.to_string_lossy(),
            Err(_) => p.to_string_lossy(),
        }
    }

    /// The report of `mpr-sweep status`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        let n = self.shards;
        let _ = writeln!(
            w,
            "{}: sweep {}, {} runs{}, spec sha256 {}",
            self.dir.display(),
            self.name
                .as_deref()
                .map_or("(unnamed)".to_string(), |n| format!("{n:?}")),
            self.runs,
            n.map_or(String::new(), |n| format!(" in {n} shards")),
            &self.spec_sha256[..12]
        );
        let Some(n) = n else {
            let _ = writeln!(
                w,
                "no parts written yet: give --shards N to list the array tasks to submit"
            );
            self.write_temps(w);
            return s;
        };
        let complete: Vec<&ShardStatus> = self.parts.iter().filter(|p| p.is_complete()).collect();
        let done_runs: u64 = complete.iter().map(|p| p.runs.end - p.runs.start).sum();
        let idx = |ps: &[&ShardStatus]| array_list(&ps.iter().map(|p| p.index).collect::<Vec<_>>());
        let _ = writeln!(
            w,
            "complete: {} of {n} shards{}, {done_runs} of {} runs",
            complete.len(),
            if complete.is_empty() {
                String::new()
            } else {
                format!(" ({})", idx(&complete))
            },
            self.runs
        );
        let missing: Vec<&ShardStatus> = self
            .parts
            .iter()
            .filter(|p| !p.is_complete() && !p.is_corrupt())
            .collect();
        let corrupt: Vec<&ShardStatus> = self.parts.iter().filter(|p| p.is_corrupt()).collect();
        let _ = writeln!(
            w,
            "missing:  {} shard(s){}",
            missing.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(" ({})", idx(&missing))
            }
        );
        for p in missing.iter().take(50) {
            let what = match (&p.summary, &p.traces) {
                (PartState::Complete, Some(PartState::Missing)) => {
                    " (summary written, traces missing)"
                }
                (PartState::Missing, Some(PartState::Complete)) => {
                    " (traces written, summary missing)"
                }
                _ => "",
            };
            let writing = if self.temp_files.iter().any(|t| {
                t.path
                    .file_name()
                    .and_then(|n| parse_temp_name(&n.to_string_lossy()))
                    .is_some_and(|(s, _)| s.is_some_and(|s| s.index == p.index))
            }) {
                " (a temporary file exists: a task may be writing it)"
            } else {
                ""
            };
            let _ = writeln!(
                w,
                "  shard {}: runs {}..{}{what}{writing}",
                p.index, p.runs.start, p.runs.end
            );
        }
        if missing.len() > 50 {
            let _ = writeln!(w, "  ... and {} more", missing.len() - 50);
        }
        let _ = writeln!(
            w,
            "corrupt:  {} shard(s){}",
            corrupt.len(),
            if corrupt.is_empty() {
                String::new()
            } else {
                format!(" ({})", idx(&corrupt))
            }
        );
        for p in &corrupt {
            let shard = Shard {
                index: p.index,
                count: n,
            };
            let layout = Layout::new(&self.dir);
            for (state, path) in [
                (Some(&p.summary), layout.summary_part(shard)),
                (p.traces.as_ref(), layout.traces_part(shard)),
            ] {
                if let Some(PartState::Corrupt(why)) = state {
                    let _ = writeln!(
                        w,
                        "  shard {}: runs {}..{}: {}: {why}",
                        p.index,
                        p.runs.start,
                        p.runs.end,
                        self.relative(&path)
                    );
                }
            }
        }
        for u in &self.unexpected {
            let _ = writeln!(
                w,
                "unexpected: {} (not a shard of {n}: readers would count its runs twice)",
                self.relative(u)
            );
        }
        self.write_temps(w);
        if !self.todo().is_empty() || !self.unexpected.is_empty() {
            let remove = self.to_remove();
            if !remove.is_empty() {
                let files: Vec<String> = remove
                    .iter()
                    .map(|p| shell_quote(&p.to_string_lossy()))
                    .collect();
                let _ = writeln!(
                    w,
                    "remove these first (parts of another shard count):\n  rm -f {}",
                    files.join(" ")
                );
            }
            if !self.todo().is_empty() {
                let _ = writeln!(
                    w,
                    "resubmit the missing and corrupt shards{}:\n  sbatch --array={} job.sh",
                    if self.per_task > 1 {
                        format!(" (array tasks of {} shards each)", self.per_task)
                    } else {
                        String::new()
                    },
                    self.array()
                );
            }
        }
        s
    }

    fn write_temps(&self, w: &mut String) {
        if self.temp_files.is_empty() {
            return;
        }
        let _ = writeln!(
            w,
            "temporary files: {} (a running task's part in progress, or left by a killed task: delete them when no task runs)",
            self.temp_files.len()
        );
        for t in &self.temp_files {
            let _ = writeln!(
                w,
                "  {} ({} bytes{}{})",
                self.relative(&t.path),
                t.bytes,
                t.pid.map_or(String::new(), |p| format!(", pid {p}")),
                t.age_s
                    .map_or(String::new(), |a| format!(", modified {} ago", clock(a)))
            );
        }
    }

    /// The report as JSON.
    pub fn json(&self) -> serde_json::Value {
        let state = |s: &PartState| match s {
            PartState::Complete => serde_json::json!({"state": "complete"}),
            PartState::Missing => serde_json::json!({"state": "missing"}),
            PartState::Corrupt(why) => serde_json::json!({"state": "corrupt", "reason": why}),
        };
        let indices = |f: &dyn Fn(&ShardStatus) -> bool| -> Vec<u64> {
            self.parts
                .iter()
                .filter(|p| f(p))
                .map(|p| p.index)
                .collect()
        };
        serde_json::json!({
            "dir": self.dir,
            "name": self.name,
            "spec_sha256": self.spec_sha256,
            "runs": self.runs,
            "traces": self.traces,
            "shards": self.shards,
            "per_task": self.per_task,
            "complete": self.is_complete(),
            "complete_shards": indices(&|p| p.is_complete()),
            "missing_shards": indices(&|p| !p.is_complete() && !p.is_corrupt()),
            "corrupt_shards": indices(&|p| p.is_corrupt()),
            "array": self.array(),
            "remove": self.to_remove(),
            "unexpected": self.unexpected,
            "temporary_files": self.temp_files.iter().map(|t| serde_json::json!({
                "path": t.path, "pid": t.pid, "bytes": t.bytes, "age_s": t.age_s,
            })).collect::<Vec<_>>(),
            "parts": self.parts.iter().map(|p| serde_json::json!({
                "shard": p.index,
                "runs": [p.runs.start, p.runs.end],
                "complete": p.is_complete(),
                "summary": state(&p.summary),
                "traces": p.traces.as_ref().map(state),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn array(id: u64) -> Vec<(&'static str, String)> {
        vec![
            (TASK_ID, id.to_string()),
            (TASK_MIN, "10".into()),
            (TASK_MAX, "22".into()),
            (TASK_STEP, "2".into()),
            (TASK_COUNT, "7".into()),
            (ARRAY_JOB_ID, "4242".into()),
            (JOB_ID, (5000 + id).to_string()),
        ]
    }

    #[test]
    fn array_10_22_step_2_gives_shards_0_to_6_of_7() {
        for (k, id) in (10..=22).step_by(2).enumerate() {
            let vars = array(id);
            let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let env = env_of(&pairs);
            assert_eq!(
                array_shard(&env).unwrap(),
                Some(Shard {
                    index: k as u64,
                    count: 7
                })
            );
            assert_eq!(job_label(&env).unwrap(), Some(format!("4242_{id}")));
        }
    }

    #[test]
    fn outside_slurm_nothing_is_derived() {
        let env = env_of(&[]);
        assert_eq!(array_shard(&env).unwrap(), None);
        assert_eq!(slurm_cpus(&env).unwrap(), None);
        assert_eq!(job_label(&env).unwrap(), None);
        let env = env_of(&[(JOB_ID, "77"), (CPUS_ON_NODE, "8")]);
        assert_eq!(array_shard(&env).unwrap(), None);
        assert_eq!(job_label(&env).unwrap(), Some("77".into()));
        assert_eq!(slurm_cpus(&env).unwrap(), Some(8));
        let env = env_of(&[(CPUS_PER_TASK, "3"), (CPUS_ON_NODE, "8")]);
        assert_eq!(slurm_cpus(&env).unwrap(), Some(3));
    }

    #[test]
    fn garbled_or_inconsistent_variables_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(TASK_ID, "x1")], TASK_ID),
            (&[(TASK_ID, "3")], TASK_MIN),
            (
                &[(TASK_ID, "3"), (TASK_MIN, "0"), (TASK_STEP, "1")],
                TASK_COUNT,
            ),
            (
                &[
                    (TASK_ID, "3"),
                    (TASK_MIN, "0"),
                    (TASK_STEP, "0"),
                    (TASK_COUNT, "4"),
                ],
                TASK_STEP,
            ),
            (
                &[
                    (TASK_ID, "4"),
                    (TASK_MIN, "0"),
                    (TASK_STEP, "1"),
                    (TASK_COUNT, "4"),
                ],
                TASK_ID,
            ),
            (
                &[
                    (TASK_ID, "3"),
                    (TASK_MIN, "0"),
                    (TASK_STEP, "2"),
                    (TASK_COUNT, "4"),
                ],
                TASK_ID,
            ),
            (
                &[
                    (TASK_ID, "1"),
                    (TASK_MIN, "2"),
                    (TASK_STEP, "1"),
                    (TASK_COUNT, "4"),
                ],
                TASK_ID,
            ),
            // --array=1,3,4: MIN=1 MAX=4 STEP=1 COUNT=3.
            (
                &[
                    (TASK_ID, "3"),
                    (TASK_MIN, "1"),
                    (TASK_MAX, "4"),
                    (TASK_STEP, "1"),
                    (TASK_COUNT, "3"),
                ],
                TASK_COUNT,
            ),
            (&[(TASK_ID, "-1")], TASK_ID),
            (&[(TASK_ID, "")], TASK_ID),
        ];
        for (vars, named) in cases {
            let env = env_of(vars);
            let err = array_shard(&env).unwrap_err();
            assert_eq!(err.var, *named, "{vars:?}: {err}");
            assert!(err.to_string().contains(named), "{err}");
        }
        for (var, value) in [
            (CPUS_PER_TASK, "two"),
            (CPUS_PER_TASK, "0"),
            (CPUS_ON_NODE, "4x"),
        ] {
            let env = env_of(&[(var, value)]);
            let err = slurm_cpus(&env).unwrap_err();
            assert_eq!(err.var, var);
        }
        let env = env_of(&[(JOB_ID, "12a")]);
        assert_eq!(job_label(&env).unwrap_err().var, JOB_ID);
        let env = env_of(&[(TASK_ID, "1")]);
        assert_eq!(job_label(&env).unwrap_err().var, ARRAY_JOB_ID);
    }

    #[test]
    fn regular_arrays_of_any_origin_and_single_tasks() {
        let env = env_of(&[
            (TASK_ID, "5"),
            (TASK_MIN, "5"),
            (TASK_MAX, "5"),
            (TASK_STEP, "1"),
            (TASK_COUNT, "1"),
        ]);
        assert_eq!(array_shard(&env).unwrap(), Some(Shard::WHOLE));
        // Without SLURM_ARRAY_TASK_MAX (older Slurm) the rule still applies.
        let env = env_of(&[
            (TASK_ID, "9"),
            (TASK_MIN, "3"),
            (TASK_STEP, "3"),
            (TASK_COUNT, "3"),
        ]);
        assert_eq!(
            array_shard(&env).unwrap(),
            Some(Shard { index: 2, count: 3 })
        );
    }

    #[test]
    fn array_lists_compress_to_ranges() {
        assert_eq!(array_list(&[]), "");
        assert_eq!(array_list(&[3]), "3");
        assert_eq!(array_list(&[3, 7, 8, 9]), "3,7-9");
        assert_eq!(array_list(&[9, 8, 7, 3, 3]), "3,7-9");
        assert_eq!(array_list(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_list(&[0, 2, 4]), "0,2,4");
        assert_eq!(array_list(&[1, 2, 4, 5, 1000]), "1-2,4-5,1000");
    }

    #[test]
    fn time_limits_in_slurm_forms() {
        let ok = |t: &str| parse_time_limit(t).unwrap();
        assert_eq!(ok("01:30:00"), Some(5400));
        assert_eq!(ok("1:30:00"), Some(5400));
        assert_eq!(ok("100:00:00"), Some(360000));
        assert_eq!(ok("2-00:00:00"), Some(172800));
        assert_eq!(ok("2-3"), Some(2 * 86400 + 3 * 3600));
        assert_eq!(ok("2-3:30"), Some(2 * 86400 + 3 * 3600 + 1800));
        assert_eq!(ok("90"), Some(5400));
        assert_eq!(ok("90:30"), Some(5430));
        assert_eq!(ok("UNLIMITED"), None);
        for bad in [
            "", "1:60:00", "1:00:60", "a", "1:2:3:4", "1-24", "-1", "1h", "0", "00:00:00", "1--2",
        ] {
            assert!(parse_time_limit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn part_and_temporary_names() {
        assert_eq!(
            parse_part_name("part-00003-of-00016.parquet"),
            Some(Shard {
                index: 3,
                count: 16
            })
        );
        assert_eq!(
            parse_part_name("part-123456-of-200000.parquet"),
            Some(Shard {
                index: 123456,
                count: 200000
            })
        );
        assert_eq!(parse_part_name("part-1-of-.parquet"), None);
        assert_eq!(parse_part_name("x.parquet"), None);
        assert_eq!(
            parse_temp_name(".part-00001-of-00004.parquet.tmp-4242"),
            Some((Some(Shard { index: 1, count: 4 }), Some(4242)))
        );
        assert_eq!(parse_temp_name("part-00001-of-00004.parquet"), None);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/a/b-c.yaml"), "/a/b-c.yaml");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

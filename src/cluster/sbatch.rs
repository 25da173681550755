//! The script of `mpr-sweep sbatch`: one array task per shard (or several shards per task
//! past the cluster's `MaxArraySize`), sized from the plan's time estimate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::ClusterError;
use crate::integrate::Isa;
use crate::output::{Layout, OutputError, io_err, spec_sha256};
use crate::plan::Plan;
use crate::plan::estimate::{duration, ns_per_run_step, run_steps};
use crate::spec::Spec;

/// Slurm's default `MaxArraySize`: array indices must be below it.
pub const DEFAULT_MAX_ARRAY_SIZE: u64 = 1001;

/// Shards shorter than this spend a large share of their time in Slurm's scheduling and
/// start-up; `sbatch` advises fewer shards below it.
pub const MIN_SHARD_SECONDS: f64 = 300.0;

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
/// What `mpr-sweep sbatch` was asked for.
#[derive(Debug, Clone)]
pub struct SbatchOptions {
    /// The `mpr-sweep` binary the job runs (absolute).
    pub exe: PathBuf,
    /// The spec file (absolute).
    pub spec_path: PathBuf,
    /// The result directory (absolute).
    pub out: PathBuf,
    /// Number of shards N the sweep is split into, >= 1.
    pub shards: u64,
    /// `--cpus-per-task` of each array task (its worker threads), >= 1.
    pub cpus_per_task: u64,
    /// As given, validated with [`parse_time_limit`].
    pub time: Option<String>,
    /// `--partition`; the cluster's default when `None`.
    pub partition: Option<String>,
    /// Most array tasks running at once (the `%k` of `--array`), >= 1; no limit when `None`.
    pub max_running: Option<u64>,
    /// The cluster's MaxArraySize, >= 1: more shards than this are packed several per task.
    pub max_array_size: u64,
    /// `--job-name`; derived from the spec's name or file name when `None`.
    pub job_name: Option<String>,
    /// Further `#SBATCH` lines, verbatim.
    pub extra: Vec<String>,
}

/// A generated script and the notes for the terminal.
#[derive(Debug, Clone)]
pub struct SbatchScript {
    /// The batch script, ready for `sbatch`.
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

fn usage(message: impl Into<String>) -> ClusterError {
    ClusterError::Option(message.into())
}

/// A value written into an `#SBATCH` line: one word, no characters Slurm or the shell
/// would reinterpret.
fn sbatch_word(what: &str, value: &str) -> Result<(), ClusterError> {
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
pub fn sbatch_script(spec: &Spec, opts: &SbatchOptions) -> Result<SbatchScript, ClusterError> {
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

    // Sizing, at the AVX2 path's speed: the nodes that run the tasks may lack AVX-512, and
    // a time limit had better err long.
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
    let mut notes = Vec::new();
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
        "# 1. `mpr-sweep sbatch` created the log directory {logs_q} (sbatch does not,"
    );
    let _ = writeln!(
        w,
        "#    and a task whose log file cannot be opened fails without a trace)."
    );
    let _ = writeln!(
        w,
        "# 2. Submit this script (saved as job.sh; `mpr-sweep sbatch --submit` does both):"
    );
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

/// Creates the result directory and its `logs/` (Slurm opens each task's log there and
/// does not create it). Returns whether `logs/` had to be created.
pub fn create_log_dir(out: &Path) -> Result<bool, OutputError> {
    let logs = Layout::new(out).logs_dir();
    let existed = logs.is_dir();
    std::fs::create_dir_all(&logs).map_err(io_err(&logs))?;
    Ok(!existed)
}

/// Submits `script` with `sbatch --parsable` and returns the job id Slurm prints.
pub fn submit(script: &Path) -> Result<String, ClusterError> {
    let failed = |why: String| ClusterError::Submit {
        script: script.to_path_buf(),
        why,
    };
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| failed(format!("cannot run sbatch: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let said = stderr.trim();
        return Err(failed(format!(
            "sbatch refused it ({}){}",
            out.status,
            if said.is_empty() {
                String::new()
            } else {
                format!(": {}", said.replace('\n', " "))
            }
        )));
    }
    // --parsable prints `jobid` or `jobid;cluster`.
    let id = stdout.trim().split(';').next().unwrap_or_default();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(failed(format!(
            "sbatch printed no job id (stdout {:?})",
            stdout.trim()
        )));
    }
    Ok(id.to_string())
}

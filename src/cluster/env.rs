//! The environment of a Slurm array task: which shard it runs, how many CPUs it has, its
//! job label. Garbled or inconsistent variables are refused naming the variable.

use crate::plan::Shard;

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
    /// The variable's name, e.g. `SLURM_ARRAY_TASK_ID`.
    pub var: &'static str,
    /// Its value; `None` when it is not set.
    pub value: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

pub(super) const TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
pub(super) const TASK_MIN: &str = "SLURM_ARRAY_TASK_MIN";
pub(super) const TASK_MAX: &str = "SLURM_ARRAY_TASK_MAX";
pub(super) const TASK_STEP: &str = "SLURM_ARRAY_TASK_STEP";
pub(super) const TASK_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
pub(super) const ARRAY_JOB_ID: &str = "SLURM_ARRAY_JOB_ID";
pub(super) const JOB_ID: &str = "SLURM_JOB_ID";
pub(super) const CPUS_PER_TASK: &str = "SLURM_CPUS_PER_TASK";
pub(super) const CPUS_ON_NODE: &str = "SLURM_CPUS_ON_NODE";

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
    /// `SLURM_ARRAY_TASK_ID`: this task's index.
    pub task_id: u64,
    /// `SLURM_ARRAY_TASK_MIN`: the array's lowest index.
    pub min: u64,
    /// `SLURM_ARRAY_TASK_STEP`: the spacing of the array's indices, >= 1.
    pub step: u64,
    /// `SLURM_ARRAY_TASK_COUNT`: the number of tasks in the array.
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

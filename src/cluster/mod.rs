//! Running on a Slurm cluster: the array-task environment ([`env`](mod@env)), the script of
//! `mpr-sweep sbatch` ([`sbatch`]), and the result-directory check of `mpr-sweep status`
//! ([`status`]).
//!
//! Nothing here reads the process environment by itself: the Slurm functions take a
//! lookup function ([`process_env`] in the binary, a map in tests), so that results never
//! depend on the Slurm variables of whatever process runs the tests.

pub mod env;
pub mod sbatch;
pub mod status;
#[cfg(test)]
mod tests;

pub use env::{
    ArrayTask, Env, SLURM_VARS, SlurmEnvError, array_shard, job_label, process_env, slurm_cpus,
};
pub use sbatch::{
    DEFAULT_MAX_ARRAY_SIZE, MIN_SHARD_SECONDS, SbatchOptions, SbatchScript, array_list,
    create_log_dir, parse_time_limit, sbatch_script, shell_quote, submit,
};
pub use status::{
    DirStatus, PartState, ShardStatus, TempFile, dir_status, parse_part_name, parse_temp_name,
};

use crate::plan::PlanError;

/// Why a cluster command cannot do what was asked: the user's input (exit status 2:
/// Slurm's variables, `sbatch` options, a directory that `status` cannot check), or a
/// submission that Slurm refused (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A Slurm variable with a value that cannot be used.
    #[error(transparent)]
    Env(#[from] SlurmEnvError),
    /// An option of `sbatch` or `status` out of range or unusable in a script.
    #[error("{0}")]
    Option(String),
    /// `status` was pointed at something that is not a result directory.
    #[error("{}: not an mpr-sweep result directory ({why})", dir.display())]
    NotResultDir {
        /// The directory given.
        dir: std::path::PathBuf,
        /// What is missing or unreadable.
        why: String,
    },
    /// `status` cannot read the network files of a result directory's spec, which its
    /// parts are checked against.
    #[error("{}: cannot check the parts without the network files of its spec.yaml: {why}", dir.display())]
    NetworkFiles {
        /// The directory given.
        dir: std::path::PathBuf,
        /// The spec's error: the key and the file.
        why: String,
    },
    /// The sweep cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// `sbatch --submit`: Slurm's `sbatch` could not be run or refused the script.
    #[error("{}: {why}", script.display())]
    Submit {
        /// The script that was submitted.
        script: std::path::PathBuf,
        /// sbatch's exit status and message.
        why: String,
    },
}

impl ClusterError {
    /// Whether the request is at fault (exit 2), not the cluster (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, ClusterError::Submit { .. })
    }
}

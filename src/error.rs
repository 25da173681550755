//! The library's error tree. Each subsystem has its own error type, a `#[from]` variant
//! here; the exit status of the command line is decided by the variant
//! ([`Error::exit_code`]), so a subsystem error cannot reach the user with the wrong status.

use std::path::PathBuf;

use crate::cluster::{ClusterError, SlurmEnvError};
use crate::output::{DirError, OutputError};
use crate::plan::{PlanError, Shard};
use crate::plot::PlotError;
use crate::spec::SpecError;

/// Every error the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec file cannot be read, is invalid, or describes a sweep that cannot be
    /// planned; the message starts with the file's path.
    #[error("{}: {problem}", file.display())]
    SpecFile {
        /// The spec file as given on the command line.
        file: PathBuf,
        /// What is wrong with it.
        #[source]
        problem: SpecFileProblem,
    },
    /// A spec given as text is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The sweep cannot be planned (too large, bad shard, trace size).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The command line does not parse (clap's message, on one line).
    #[error("{0}")]
    CommandLine(String),
    /// `--isa` names a path this CPU cannot run.
    #[error("--isa {isa}: this CPU lacks {features}")]
    IsaUnavailable {
        /// The path asked for.
        isa: &'static str,
        /// The CPU features it needs.
        features: &'static str,
    },
    /// The output directory does not fit the request (another spec's results, an existing
    /// part without `--resume`, a file in its place).
    #[error(transparent)]
    Dir(#[from] DirError),
    /// Slurm's environment, `sbatch` options or a result directory for `status`.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// `plot` cannot draw what was asked, or could not read or write.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Writing results failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The worker threads could not be started.
    #[error("cannot start {threads} threads: {why}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// Why the pool could not be built.
        why: String,
    },
    /// A failure of the machine outside the output directory (the working directory,
    /// the binary's own path).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// SIGINT or SIGTERM stopped the run before its part was complete; nothing of the
    /// shard was kept.
    #[error(
        "interrupted by {}: shard {shard} stopped, no part written (temporary files removed); rerun with --resume",
        signal_name(*signal)
    )]
    Interrupted {
        /// The signal number.
        signal: i32,
        /// The shard that was running.
        shard: Shard,
    },
}

impl From<SlurmEnvError> for Error {
    /// A garbled Slurm variable is a cluster error (exit 2), wherever it is read.
    fn from(e: SlurmEnvError) -> Error {
        Error::Cluster(e.into())
    }
}

/// Why a spec file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileProblem {
    /// The file cannot be read.
    #[error("cannot read spec: {0}")]
    Read(#[source] std::io::Error),
    /// The file is larger than any sweep description.
    #[error("the spec is larger than {} MiB", crate::spec::MAX_SPEC_BYTES >> 20)]
    TooLarge,
    /// The file is not UTF-8.
    #[error("the spec is not UTF-8 text")]
    NotUtf8,
    /// The spec is invalid.
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// The spec is valid but its sweep cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl Error {
    /// 2 for bad input (spec, command line, output directory, cluster options), 1 for
    /// failures while running, 128 + the signal number for an interrupted run (130 for
    /// SIGINT, 143 for SIGTERM, as a shell reports).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::SpecFile { .. }
            | Error::Spec(_)
            | Error::Plan(_)
            | Error::CommandLine(_)
            | Error::IsaUnavailable { .. }
            | Error::Dir(_) => 2,
            Error::Cluster(e) if e.is_usage() => 2,
            Error::Plot(e) if e.is_usage() => 2,
            Error::Cluster(_)
            | Error::Plot(_)
            | Error::Output(_)
            | Error::Threads { .. }
            | Error::Io { .. } => 1,
            Error::Interrupted { signal, .. } => 128 + signal,
        }
    }
}

/// `SIGINT`, `SIGTERM`, or `signal N`.
pub fn signal_name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Mark;

    /// One error of every variant, with the exit status that docs/failure-modes.md gives
    /// it. The match below has no wildcard: a new variant does not compile until it has an
    /// example here.
    fn examples() -> Vec<(Error, i32)> {
        let io = || std::io::Error::other("disk full");
        let spec_error = || SpecError::new("model.eta", Some(Mark { line: 2, col: 8 }), "NaN");
        let shard = Shard { index: 1, count: 4 };
        let all = vec![
            (
                Error::SpecFile {
                    file: "s.yaml".into(),
                    problem: SpecFileProblem::Invalid(spec_error()),
                },
                2,
            ),
            (Error::Spec(spec_error()), 2),
            (Error::Plan(PlanError::BadShard("3/3".into())), 2),
            (Error::CommandLine("unexpected argument".into()), 2),
            (
                Error::IsaUnavailable {
                    isa: "avx2",
                    features: "AVX2+FMA",
                },
                2,
            ),
            (Error::Dir(DirError::NotADirectory { dir: "out".into() }), 2),
            (
                Error::Dir(DirError::OtherNetworkData {
                    part: "out/summary/part-00000-of-00001.parquet".into(),
                    found: "0123456789ab".into(),
                    expected: "ba9876543210".into(),
                }),
                2,
            ),
            (
                Error::Cluster(ClusterError::Env(SlurmEnvError {
                    var: "SLURM_ARRAY_TASK_ID",
                    value: Some("x".into()),
                    message: "not a number".into(),
                })),
                2,
            ),
            (
                Error::Cluster(ClusterError::Submit {
                    script: "out/job.sh".into(),
                    why: "sbatch refused it".into(),
                }),
                1,
            ),
            (Error::Plot(PlotError::BadTraces("empty".into())), 2),
            (
                Error::Plot(PlotError::Render {
                    path: "map.png".into(),
                    why: "font".into(),
                }),
                1,
            ),
            (
                Error::Output(OutputError::Io {
                    path: "out/summary".into(),
                    source: io(),
                }),
                1,
            ),
            (
                Error::Threads {
                    threads: 4,
                    why: "no memory".into(),
                },
                1,
            ),
            (
                Error::Io {
                    what: "cannot locate the binary".into(),
                    source: io(),
                },
                1,
            ),
            (Error::Interrupted { signal: 2, shard }, 130),
            (Error::Interrupted { signal: 15, shard }, 143),
        ];
        for (e, _) in &all {
            match e {
                Error::SpecFile { .. }
                | Error::Spec(_)
                | Error::Plan(_)
                | Error::CommandLine(_)
                | Error::IsaUnavailable { .. }
                | Error::Dir(_)
                | Error::Cluster(_)
                | Error::Plot(_)
                | Error::Output(_)
                | Error::Threads { .. }
                | Error::Io { .. }
                | Error::Interrupted { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_variant_has_its_documented_exit_status() {
        for (e, status) in examples() {
            assert_eq!(e.exit_code(), status, "{e:?}");
        }
    }

    #[test]
    fn messages_name_the_file_and_the_signal() {
        let e = Error::SpecFile {
            file: "sweep.yaml".into(),
            problem: SpecFileProblem::TooLarge,
        };
        assert_eq!(e.to_string(), "sweep.yaml: the spec is larger than 64 MiB");
        let e = Error::Interrupted {
            signal: 15,
            shard: Shard { index: 1, count: 4 },
        };
        assert!(
            e.to_string()
                .starts_with("interrupted by SIGTERM: shard 1/4"),
            "{e}"
        );
    }
}

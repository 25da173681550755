//! # mpr_sweep
//!
//! Large parameter sweeps of the Montbrió–Pazó–Roxin neural mass model, written to Parquet.
//!
//! Data flows one way: [`spec`] (YAML → validated spec) → [`plan`] (lazy run id →
//! parameters) → [`simulate`] (lane batches through the [`integrate`] kernel) →
//! [`stats`] → [`output`] (Parquet parts), orchestrated by [`run`].

// Lane loops index several arrays by the lane number on purpose: that form is what LLVM
// vectorises most reliably.
#![allow(clippy::needless_range_loop)]

pub mod axis;
pub mod cluster;
pub mod diagnose;
pub mod integrate;
pub mod model;
pub mod noise;
pub mod output;
pub mod plan;
pub mod plot;
pub mod progress;
pub mod run;
pub mod simulate;
pub mod spec;
pub mod stats;
pub mod yaml;

/// Every error the library reports, with the exit status the command line gives it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is invalid.
    #[error("{0}")]
    Spec(#[from] spec::SpecError),
    /// The sweep cannot be planned (too large, bad shard).
    #[error("{0}")]
    Plan(#[from] plan::PlanError),
    /// The command line or the output directory does not fit the request.
    #[error("{0}")]
    Usage(String),
    /// Writing results failed.
    #[error("{0}")]
    Output(#[from] output::OutputError),
    /// SIGINT or SIGTERM stopped the run before its part was complete; nothing of the
    /// shard was kept.
    #[error(
        "interrupted by {}: shard {shard} stopped, no part written (temporary files removed); rerun with --resume",
        run::signal_name(*signal)
    )]
    Interrupted { signal: i32, shard: plan::Shard },
}

impl Error {
    /// 2 for bad input (spec, usage), 1 for failures while running, 128 + the signal
    /// number for an interrupted run (130 for SIGINT, 143 for SIGTERM, as a shell reports).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec(_) | Error::Plan(_) | Error::Usage(_) => 2,
            Error::Output(_) => 1,
            Error::Interrupted { signal, .. } => 128 + signal,
        }
    }
}

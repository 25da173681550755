//! # mpr_sweep
//!
//! Large parameter sweeps of the Montbrió–Pazó–Roxin neural mass model, written to Parquet.
//!
//! Data flows one way, one folder per stage:
//! - [`spec`]: YAML text → validated [`spec::Spec`] (the YAML reader, axes, errors that
//!   name the key and position);
//! - [`plan`]: lazy run id → parameters, shards, and the [`run::PlanReport`] that
//!   `mpr-sweep plan` prints;
//! - [`model`]: the equations, analytic fixed points, units, the integration methods and
//!   the stability of their one-step maps;
//! - [`network`]: whole-brain networks (connectome, region files);
//! - [`diagnose`]: the step-size check of a whole sweep that `plan` and `run` report;
//! - [`integrate`]: the SIMD lane kernel, generic over the scheme and the instruction set,
//!   with its statistics and random streams;
//! - [`simulate`]: lane batches of runs from the plan through the kernel, into rows;
//! - [`output`]: Arrow schemas, metadata and atomic Parquet parts;
//! - [`run`]: the orchestration of a sweep (thread pool, blocks, progress, signals);
//! - [`cluster`]: Slurm (the environment of array tasks, `sbatch` scripts, `status`);
//! - [`plot`]: heatmaps and traces from a result directory, to PNG;
//! - [`cli`]: the command line, shared by the binary and the Python package's command;
//! - [`error`]: the error tree and the exit status of each error.

#![warn(missing_docs)]
// Lane loops index several arrays by the lane number on purpose: that form is what LLVM
// vectorises most reliably.
#![allow(clippy::needless_range_loop)]

pub mod cli;
pub mod cluster;
pub mod diagnose;
pub mod error;
pub mod integrate;
pub mod model;
pub mod network;
pub mod output;
pub mod plan;
pub mod plot;
pub mod run;
pub mod simulate;
pub mod spec;

pub use error::Error;

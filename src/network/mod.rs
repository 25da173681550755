//! Whole-brain networks: one MPR node per brain region, coupled through a structural
//! connectome.
//!
//! This folder reads and validates what a network is made of:
//! - [`files`]: matrices, vectors and region names from `.npy`, `.csv` and
//!   whitespace-separated text files (TVB's `weights.txt`, `tract_lengths.txt`,
//!   `centres.txt`), with errors that name the file and the place;
//! - [`Connectome`]: a validated weights matrix (and optional tract lengths) as the edges
//!   into each node, and [`delay_steps`], the whole-step delay of an edge.

pub mod files;

mod connectome;

pub use connectome::*;

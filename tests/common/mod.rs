//! Helpers shared by the integration tests: each test file declares `mod common;` and uses
//! what it needs, so an item unused by one test file is not dead code of the suite.
//!
//! - [`run`]: starting the `mpr-sweep` binary without the Slurm variables of the
//!   environment running the tests, what a finished command did, and the files it wrote.
//! - [`table`]: Parquet parts read back whole, every float kept by its bits.
//! - [`settings`]: whole numbers and seeds from environment variables.
//! - [`sim`]: running a spec through the library in-process (parse, plan, simulate).
//! - [`closed_forms`]: the fixed points and saddle-node curves of the model's closed forms.
//! - [`linalg`]: small dense linear algebra and the Lyapunov equations of linear noise.

#![allow(dead_code)]

pub mod closed_forms;
pub mod linalg;
pub mod run;
pub mod settings;
pub mod sim;
pub mod table;

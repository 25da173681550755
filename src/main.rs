//! `mpr-sweep`: the command line of [`mpr_sweep::cli`], exiting with the status the
//! error's type gives (0 success, 2 bad spec or usage, 1 failure while running, 128 + N
//! after signal N).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(mpr_sweep::cli::main(std::env::args_os(), None))
}

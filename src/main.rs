//! `mpr-sweep`: parse the command line, run the subcommand, and exit with the status the
//! error's type gives (0 success, 2 bad spec or usage, 1 failure while running, 128 + N
//! after signal N).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::parse().and_then(cli::run) {
        Ok(code) => code,
        Err(e) => {
            // Our error messages already carry their causes: print each once.
            eprintln!("mpr-sweep: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

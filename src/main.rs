//! `mpr-sweep`: parse the command line, call the library, map errors to exit statuses
//! (0 success, 2 bad spec or usage, 1 failure while running).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::main() {
        Ok(code) => code,
        Err(e) => {
            // Our error messages already carry their causes: print each once.
            eprintln!("mpr-sweep: error: {e}");
            let code = e
                .downcast_ref::<mpr_sweep::Error>()
                .map_or(1, mpr_sweep::Error::exit_code);
            ExitCode::from(code as u8)
        }
    }
}

//! The `facesync` binary: parse the command line, set up logging, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

use facesync::cli::{Cli, EXIT_ERROR};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = facesync::logging::init(&cli.global) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(facesync::cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

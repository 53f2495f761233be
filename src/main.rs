//! The `facesync` binary: parse the command line, set up logging, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

use facesync::cli::{Cli, EXIT_ERROR};

fn main() -> ExitCode {
    return_freed_memory();
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

/// Makes glibc's malloc give freed memory back to the system once 128 KiB are free at the top
/// of a heap. Its default threshold grows with every large block freed, so after the plan of a
/// large roster let go of its tables, about 35 MB stayed in the process unused (README,
/// Performance, Scale). The admin's own setting (`GLIBC_TUNABLES=glibc.malloc.trim_threshold`
/// or `MALLOC_TRIM_THRESHOLD_`) is left alone.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_freed_memory() {
    let set_by_admin = std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc.trim_threshold"));
    if !set_by_admin {
        // SAFETY: mallopt only changes malloc's tuning parameters, under malloc's own lock; it
        // is called before any other thread starts.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory() {}

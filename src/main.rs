//! The `facesync` binary: parse the command line, set up logging, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use facesync::cli::{Cli, EXIT_ERROR, GlobalArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli.global) {
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

/// Logs to stderr (plain or JSON), and to `--log-file` when given. `RUST_LOG` overrides the
/// level; the default is info (warn with `--quiet`).
fn init_logging(global: &GlobalArgs) -> Result<(), String> {
    let level = if global.quiet {
        "facesync=warn"
    } else {
        "facesync=info"
    };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = if global.json_log {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(facesync::progress::Stderr)
            .with_filter(filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(facesync::progress::Stderr)
            .with_target(false)
            .without_time()
            .with_filter(filter())
            .boxed()
    };
    let file = match &global.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false);
            Some(if global.json_log {
                layer.json().with_filter(filter()).boxed()
            } else {
                layer.with_filter(filter()).boxed()
            })
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

//! The command line: clap definitions, and `run`, which dispatches to one function per command
//! and maps the outcome to the documented exit codes. `main` only parses, sets up logging and
//! calls [`run`].

mod demo;
mod init;
mod plan;
mod status;
pub mod table;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit code: everything delivered, unchanged, or (for `plan`) fit to send.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run could not work at all (bad config, unreadable roster, DB error, auth).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: some people failed or are invalid; the report lists them.
pub const EXIT_SOME_FAILED: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "facesync",
    version,
    about = "Enroll employees' face photos into Feishu ACS and VziCloud FRS in bulk, and keep them in sync",
    long_about = "Reads an HR roster (CSV or XLSX) and a folder of photos, checks and normalizes \
                  every photo, and uploads what is new or changed to each configured cloud, \
                  recording every person's state in SQLite.\n\n\
                  Exit codes: 0 all fine; 2 some people failed or are invalid (see the report); \
                  1 the run could not work at all.",
    after_help = "Start with `facesync demo` (no credentials, no network), then `facesync init`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole job on the bundled fixtures, with a state DB in a temporary folder
    #[command(after_help = "Example:\n  facesync demo")]
    Demo,

    /// Write a commented config.toml to start from
    #[command(after_help = "Example:\n  facesync init /etc/facesync\n  facesync init --force")]
    Init(InitArgs),

    /// Match, check and decide what `sync` would do, per person and target (no network)
    #[command(after_help = "Examples:\n  facesync plan -c config.toml\n  \
                            facesync plan -c config.toml --format json > plan.jsonl\n  \
                            facesync plan -c config.toml --preview preview/\n\n\
                            Exit codes: 0 nothing is invalid; 2 some people are invalid; \
                            1 the plan could not be made.")]
    Plan(PlanArgs),

    /// Counts per target and state, and the last runs, from the state DB
    #[command(after_help = "Examples:\n  facesync status -c config.toml\n  \
                            facesync status -c config.toml --format json")]
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write config.toml into
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite an existing config.toml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output: a table for people, or one JSON object per line per person and target
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Plan only for this target (repeatable); default: every enabled target
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Write each normalized photo that would be uploaded as DIR/<target>/<id>.<ext>
    #[arg(long, value_name = "DIR")]
    pub preview: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs a parsed command line; the value is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Demo => demo::run().await,
        Command::Init(args) => init::run(&args),
        Command::Plan(args) => plan::run(&args).await,
        Command::Status(args) => status::run(&args).await,
    }
}

/// Loads the config, printing its warnings to stderr.
fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    let config = crate::config::Config::load(path)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

/// Checks `--target` names against the config.
fn check_targets(config: &crate::config::Config, wanted: &[String]) -> anyhow::Result<()> {
    let enabled = config.enabled_targets();
    for t in wanted {
        if !enabled.contains(&t.as_str()) {
            anyhow::bail!(
                "--target {t}: not an enabled target in {}; enabled: {}",
                config.file.display(),
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            );
        }
    }
    Ok(())
}

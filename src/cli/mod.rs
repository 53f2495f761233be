//! The command line: clap definitions, and `run`, which dispatches to one function per command
//! and maps the outcome to the documented exit codes. `main` only parses, sets up logging and
//! calls [`run`].

mod completions;
#[cfg(feature = "emulator")]
mod demo;
mod doctor;
#[cfg(feature = "emulator")]
mod emulate;
mod fetch;
mod init;
mod plan;
mod report;
mod status;
mod sync;
pub mod table;
mod verify;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[cfg(feature = "emulator")]
pub use emulate::EmulateArgs;
pub use sync::render_summary;

use crate::outcome::Outcome;

/// Exit code: everything delivered, unchanged, or (for `plan`) fit to send.
pub const EXIT_OK: u8 = Outcome::Clean.exit_code();
/// Exit code: the run could not work at all (bad config, unreadable roster, DB error, auth).
pub const EXIT_ERROR: u8 = Outcome::Failed.exit_code();
/// Exit code: some people failed or are invalid; the report lists them.
pub const EXIT_SOME_FAILED: u8 = Outcome::NeedsAttention.exit_code();

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
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes: how it logs and shows progress.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Log lines as JSON objects (for log collectors); RUST_LOG sets the level as usual
    #[arg(long, global = true)]
    pub json_log: bool,
    /// Also append the log to this file
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// No progress bars or progress lines; only warnings, errors and the summary
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole job on the bundled fixtures, with a state DB in a temporary folder
    #[command(after_help = "Example:\n  facesync demo")]
    #[cfg(feature = "emulator")]
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

    /// Upload what is new, changed or failed, to every enabled target
    #[command(after_help = "Examples:\n  facesync sync -c config.toml\n  \
                            facesync sync -c config.toml --target vzicloud --limit 100\n  \
                            facesync sync -c config.toml --only-failed\n  \
                            facesync sync -c config.toml --max-duration 2h\n  \
                            facesync sync -c config.toml --prune\n\n\
                            Exit codes: 0 everything delivered or unchanged; 2 some people \
                            failed, are invalid or were not sent (see `facesync report`); \
                            1 the run or a target could not work at all, or --prune refused.")]
    Sync(SyncArgs),

    /// Compare the roster and the state DB with what each target holds, and print the drift
    #[command(after_help = "Examples:\n  facesync verify -c config.toml\n  \
                            facesync verify -c config.toml --target vzicloud --format json\n\n\
                            Drift: `missing_remotely` (delivered according to the state DB, but \
                            the target holds no face for the user) and `not_in_roster` (the \
                            target holds a face for a user no roster row maps to: a leaver; \
                            `sync --prune` removes them from VziCloud, Feishu's must be removed \
                            in its admin console). Nothing is changed at the targets.\n\n\
                            Exit codes: 0 no drift; 2 drift found; 1 a target could not be read.")]
    Verify(VerifyArgs),

    /// Will tonight's run work? Checks the config, roster, photos, state DB and every target
    /// (reachable, credentials, permissions, room, clock) without changing anything
    #[command(after_help = "Examples:\n  facesync doctor -c config.toml\n  \
                            facesync doctor -c config.toml --target vzicloud --format json\n\n\
                            Each check is ok, warning or failed, with what to do. Nothing is \
                            uploaded, created or deleted anywhere.\n\n\
                            Exit codes: 0 all ok; 2 warnings only; 1 a check failed.")]
    Doctor(DoctorArgs),

    /// Every person's outcome per target, as CSV, JSON or a self-contained HTML page
    #[command(
        after_help = "Examples:\n  facesync report -c config.toml --format html -o report.html\n  \
                            facesync report -c config.toml --format csv -o report.csv\n  \
                            facesync report -c config.toml --format json | jq '.[] | select(.state != \"delivered\")'"
    )]
    Report(ReportArgs),

    /// Download every roster person's face from Feishu into a folder (backup, audit)
    #[command(
        after_help = "Examples:\n  facesync fetch -c config.toml --out backup/\n  \
                            facesync fetch -c config.toml --out crops/ --cropped --force\n\n\
                            Files are named <id>.<ext> (the extension from the bytes). A file \
                            already there is kept unless --force, so an interrupted fetch resumes. \
                            Faces come from the one enabled target with a download API (Feishu); \
                            with several, name one with --target."
    )]
    Fetch(FetchArgs),

    /// Counts per target and state, and the last runs, from the state DB; or one person's
    /// audit trail (`--person`)
    #[command(after_help = "Examples:\n  facesync status -c config.toml\n  \
                            facesync status -c config.toml --format json\n  \
                            facesync status -c config.toml --person E1001")]
    Status(StatusArgs),

    /// Run the Feishu + VziCloud + Hikvision terminal emulator as a server, to try a config or a
    /// client against
    #[cfg(feature = "emulator")]
    Emulate(Box<EmulateArgs>),

    /// Print the shell completion script for bash, zsh, fish, powershell or elvish
    #[command(after_help = "Examples:\n  \
                            facesync completions bash > /etc/bash_completion.d/facesync\n  \
                            facesync completions zsh > \"${fpath[1]}/_facesync\"\n  \
                            facesync completions fish > ~/.config/fish/completions/facesync.fish\n  \
                            facesync completions powershell >> $PROFILE\n\n\
                            The Debian package installs the bash, zsh and fish scripts.")]
    Completions(CompletionsArgs),

    /// Print the man page (roff) of facesync, or of one of its commands, made from these same
    /// definitions
    #[command(
        after_help = "Examples:\n  facesync man | man -l -\n  facesync man sync > facesync-sync.1"
    )]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (`facesync-<command>(1)`); default: facesync(1)
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
pub struct SyncArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Sync only this target (repeatable); default: every enabled target
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Take only people whose last attempt failed, including permanent failures
    #[arg(long, conflicts_with = "force")]
    pub only_failed: bool,
    /// Send every valid person again, even when the target already holds the photo; with
    /// --prune, also remove leavers beyond prune_max_share
    #[arg(long)]
    pub force: bool,
    /// Upload at most N people this run
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Stop taking new work after this long (such as 90m or 2h); requests in flight finish
    #[arg(long, value_name = "DURATION")]
    pub max_duration: Option<humantime::Duration>,
    /// Do not send anything: print the plan (the same as `facesync plan`)
    #[arg(long)]
    pub dry_run: bool,
    /// After the uploads, delete from VziCloud the group's users who are no longer in the
    /// roster; refused when more than prune_max_share of the group would go, unless --force
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output: a table, or one JSON document
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Check only this target (repeatable); default: every enabled target
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output: a table, one line per check, or a JSON array of {check, target, status,
    /// detail, advice}
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Check only this target (repeatable); default: every enabled target
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output format
    #[arg(long, value_enum)]
    pub format: ReportFormat,
    /// Write to this file instead of standard output
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Folder to write the faces into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Download Feishu's face crop instead of the stored photo
    #[arg(long)]
    pub cropped: bool,
    /// Download again faces already in the folder
    #[arg(long)]
    pub force: bool,
    /// The target to download from, when more than one enabled target can
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// List every request about this person (by roster id), oldest first: uploads, removals,
    /// checks and downloads, at every target, with how each ended
    #[arg(long, value_name = "ID")]
    pub person: Option<String>,
    /// How many of the last sync runs the trend lists (per run and target: delivered,
    /// unchanged, failed, invalid, and the run's duration); at most 30
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=30))]
    pub runs: u16,
}

/// Runs a parsed command line; the value is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        #[cfg(feature = "emulator")]
        Command::Demo => demo::run(&cli.global).await,
        Command::Init(args) => init::run(&args),
        Command::Plan(args) => plan::run(&args).await,
        Command::Status(args) => status::run(&args).await,
        Command::Sync(args) => sync::run(&args, &cli.global).await,
        Command::Verify(args) => verify::run(&args, &cli.global).await,
        Command::Report(args) => report::run(&args).await,
        Command::Doctor(args) => doctor::run(&args).await,
        Command::Fetch(args) => fetch::run(&args, &cli.global).await,
        #[cfg(feature = "emulator")]
        Command::Emulate(args) => emulate::run(&args).await,
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => completions::man(&args),
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

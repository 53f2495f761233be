//! `facesync completions SHELL` and `facesync man [COMMAND]`: the shell completion script and
//! the roff man pages, generated from the clap definitions (so they always match the binary's
//! commands and options) and printed to standard output. The Debian package installs them
//! (committed under `dist/`, held current by `tests/dist.rs`).

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::{Cli, CompletionsArgs, EXIT_OK, ManArgs};

/// The binary's name in scripts and in the man pages.
const BIN: &str = "facesync";

pub(super) fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), BIN, &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(EXIT_OK)
}

pub(super) fn man(args: &ManArgs) -> anyhow::Result<u8> {
    let mut cli = Cli::command();
    // Names the subcommands `facesync-<command>` and their usage `facesync <command>`.
    cli.build();
    let page = match &args.command {
        None => cli,
        Some(name) => cli.find_subcommand(name).cloned().with_context(|| {
            let names: Vec<&str> = cli
                .get_subcommands()
                .map(clap::Command::get_name)
                .filter(|n| *n != "help")
                .collect();
            format!(
                "no command `{name}`; the commands are: {}",
                names.join(", ")
            )
        })?,
    };
    let title = page
        .get_display_name()
        .unwrap_or(page.get_name())
        .to_uppercase();
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .title(title)
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands")
        .render(&mut out)?;
    std::io::stdout().lock().write_all(&out)?;
    Ok(EXIT_OK)
}

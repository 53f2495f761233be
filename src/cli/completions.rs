//! `facesync completions SHELL` and `facesync man`: the shell completion script and the roff
//! man page, both generated from the clap definitions (so they always match the binary's
//! commands and options) and printed to standard output. The Debian package installs both.

use std::io::Write as _;

use clap::CommandFactory as _;

use super::{Cli, CompletionsArgs, EXIT_OK};

/// The binary's name in scripts and in the man page.
const BIN: &str = "facesync";

pub(super) fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), BIN, &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(EXIT_OK)
}

pub(super) fn man() -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .title("FACESYNC")
        .render(&mut out)?;
    std::io::stdout().lock().write_all(&out)?;
    Ok(EXIT_OK)
}

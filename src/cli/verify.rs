//! `facesync verify`: the drift between the roster, the state DB and what each target holds.

use std::io::Write;

use super::table::Table;
use super::{Format, GlobalArgs, VerifyArgs, check_targets, load_config};
use crate::verify::{self, VerifyReport};

pub(super) async fn run(args: &VerifyArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    check_targets(&config, &args.targets)?;
    let report = verify::verify(&config, &args.targets, super::sync::shutdown_signal()).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Table => render(&report, &mut out)?,
    }
    Ok(report.exit_code())
}

/// The drift as a table, a line per target, and what the exit code means.
fn render(report: &VerifyReport, out: &mut impl Write) -> std::io::Result<()> {
    let mut t = Table::new(["TARGET", "DRIFT", "USER", "ID", "NAME", "DETAIL"]);
    for check in &report.targets {
        for d in &check.drift {
            t.row([
                check.target.as_str(),
                d.kind.as_str(),
                d.user_id.as_str(),
                d.person_id.as_deref().unwrap_or("-"),
                d.name.as_deref().unwrap_or("-"),
                d.detail.as_str(),
            ]);
        }
    }
    if !t.is_empty() {
        t.write_to(out)?;
        writeln!(out)?;
    }
    drop(t);
    for check in &report.targets {
        match &check.error {
            Some(why) => writeln!(out, "{}: NOT CHECKED: {why}", check.target)?,
            None => {
                let count = |k| check.drift.iter().filter(|d| d.kind == k).count();
                writeln!(
                    out,
                    "{}: {} users listed, {} with a face; {} missing remotely, {} not in the roster",
                    check.target,
                    check.listed,
                    check.with_face,
                    count(verify::DriftKind::MissingRemotely),
                    count(verify::DriftKind::NotInRoster),
                )?;
            }
        }
    }
    out.write_all(match report.exit_code() {
        0 => b"exit code 0: no drift\n",
        2 => b"exit code 2: drift found (above)\n",
        _ => b"exit code 1: a target could not be checked (see NOT CHECKED above)\n",
    })
}

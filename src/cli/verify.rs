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
        Format::Table => write!(out, "{}", render(&report))?,
    }
    Ok(report.exit_code())
}

/// The drift as a table, a line per target, and what the exit code means.
fn render(report: &VerifyReport) -> String {
    let mut t = Table::new(["TARGET", "DRIFT", "USER", "ID", "NAME", "DETAIL"]);
    for check in &report.targets {
        for d in &check.drift {
            t.row([
                check.target.clone(),
                d.kind.as_str().to_string(),
                d.user_id.clone(),
                d.person_id.clone().unwrap_or_else(|| "-".into()),
                d.name.clone().unwrap_or_else(|| "-".into()),
                d.detail.clone(),
            ]);
        }
    }
    let mut out = String::new();
    if !t.is_empty() {
        out.push_str(&t.render());
        out.push('\n');
    }
    for check in &report.targets {
        match &check.error {
            Some(why) => out.push_str(&format!("{}: NOT CHECKED: {why}\n", check.target)),
            None => {
                let count = |k| check.drift.iter().filter(|d| d.kind == k).count();
                out.push_str(&format!(
                    "{}: {} users listed, {} with a face; {} missing remotely, {} not in the roster\n",
                    check.target,
                    check.listed,
                    check.with_face,
                    count(verify::DriftKind::MissingRemotely),
                    count(verify::DriftKind::NotInRoster),
                ));
            }
        }
    }
    out.push_str(match report.exit_code() {
        0 => "exit code 0: no drift\n",
        2 => "exit code 2: drift found (above)\n",
        _ => "exit code 1: a target could not be checked (see NOT CHECKED above)\n",
    });
    out
}

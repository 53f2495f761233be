//! `facesync doctor`: the checks of [`crate::doctor`], as a table (one line each) or a JSON
//! array.

use std::io::Write;

use super::table::Table;
use super::{DoctorArgs, Format};
use crate::doctor::{self, Report};

pub(super) async fn run(args: &DoctorArgs) -> anyhow::Result<u8> {
    let report = doctor::run(&args.config.config, &args.targets).await;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Table => write!(out, "{}", render(&report))?,
    }
    Ok(report.outcome().exit_code())
}

/// One line per check, then what the exit code means.
fn render(report: &Report) -> String {
    let mut t = Table::new(["STATUS", "CHECK", "TARGET", "DETAIL", "WHAT TO DO"]);
    for c in &report.checks {
        t.row([
            c.status.as_str().to_uppercase(),
            c.check.clone(),
            c.target.clone().unwrap_or_else(|| "-".into()),
            c.detail.clone(),
            if c.advice.is_empty() {
                "-".into()
            } else {
                c.advice.clone()
            },
        ]);
    }
    let mut out = t.render();
    out.push('\n');
    out.push_str(match report.outcome().exit_code() {
        0 => "exit code 0: everything tonight's run needs is in place\n",
        2 => "exit code 2: tonight's run works, but see the warnings above\n",
        _ => "exit code 1: tonight's run would fail (see FAILED above)\n",
    });
    out
}

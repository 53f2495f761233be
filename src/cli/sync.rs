//! `facesync sync`: deliver what is new, changed or failed, to every enabled target.

use super::table::Table;
use super::{Format, GlobalArgs, SyncArgs, check_targets, load_config, plan};
use crate::deliver::{self, Summary, SyncOptions};
use crate::outcome::Outcome;
use crate::plan::PlanOptions;

pub(super) async fn run(args: &SyncArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    check_targets(&config, &args.targets)?;
    let plan_options = PlanOptions {
        force: args.force,
        only_failed: args.only_failed,
        targets: args.targets.clone(),
        ..PlanOptions::default()
    };
    if args.dry_run {
        let plan = plan::plan_and_record(&config, &plan_options).await?;
        plan::print(&plan, Format::Table, &mut std::io::stdout().lock())?;
        return Ok(plan::exit_code(&plan));
    }
    let options = SyncOptions {
        plan: plan_options,
        limit: args.limit,
        max_duration: args.max_duration.map(Into::into),
        progress: crate::progress::Handle::for_stderr(
            global.quiet,
            std::time::Duration::from_secs(10),
        ),
        prune: args.prune,
        prune_force: args.prune && args.force,
    };
    let summary = deliver::run(&config, &options, shutdown_signal()).await?;
    print!("{}", render_summary(&summary));
    Ok(summary.exit_code())
}

/// Ctrl-C, or SIGTERM (systemd stopping the service).
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The terminal summary of a sync: a table per target and what the exit code means.
pub fn render_summary(summary: &Summary) -> String {
    let mut t = Table::new([
        "TARGET",
        "DELIVERED",
        "UNCHANGED",
        "INVALID",
        "FAILED",
        "NOT SENT",
        "RETRIED",
        "THROTTLED",
    ]);
    for s in &summary.targets {
        t.row([
            s.target.clone(),
            s.delivered.to_string(),
            s.unchanged.to_string(),
            s.invalid.values().sum::<usize>().to_string(),
            (s.failed_permanent.values().sum::<usize>()
                + s.failed_retryable.values().sum::<usize>())
            .to_string(),
            s.not_sent.to_string(),
            s.retried.to_string(),
            s.throttled.to_string(),
        ]);
    }
    let mut out: String = summary
        .warnings
        .iter()
        .map(|w| format!("WARNING: {w}\n"))
        .collect();
    out.push_str(&t.render());
    for s in &summary.targets {
        let reasons: Vec<String> = s
            .invalid
            .iter()
            .map(|(c, n)| format!("{n} invalid: {c}"))
            .chain(
                s.failed_permanent
                    .iter()
                    .map(|(c, n)| format!("{n} failed: {c}")),
            )
            .chain(
                s.failed_retryable
                    .iter()
                    .map(|(c, n)| format!("{n} to retry: {c}")),
            )
            .collect();
        if !reasons.is_empty() {
            out.push_str(&format!("{}: {}\n", s.target, reasons.join(", ")));
        }
        if let Some(why) = &s.stopped {
            out.push_str(&format!("{}: STOPPED: {why}\n", s.target));
        }
        if s.removed > 0 {
            out.push_str(&format!(
                "{}: removed {} user(s) no longer in the roster\n",
                s.target, s.removed
            ));
        }
        for (c, n) in &s.remove_failed {
            out.push_str(&format!("{}: {n} leaver(s) not removed: {c}\n", s.target));
        }
        if let Some(why) = &s.prune_refused {
            out.push_str(&format!("{}: PRUNE REFUSED: {why}\n", s.target));
        }
    }
    if let Some(path) = &summary.report {
        out.push_str(&format!("report: {}\n", path.display()));
    }
    out.push_str(&format!("finished in {:.1}s; ", summary.elapsed_seconds));
    out.push_str(match summary.outcome() {
        Outcome::Clean => "exit code 0: everything is delivered or unchanged\n",
        Outcome::NeedsAttention => "exit code 2: some people need attention (see the report)\n",
        Outcome::Failed => {
            "exit code 1: a target could not work, or pruning was refused (see above)\n"
        }
    });
    out
}

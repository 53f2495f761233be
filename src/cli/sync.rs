//! `facesync sync`: deliver what is new, changed or failed, to every enabled target.

use super::{Format, GlobalArgs, SyncArgs, check_targets, load_config, plan};
use crate::deliver::{self, SyncOptions};
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
    print!("{}", summary.render());
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

//! `facesync sync`: deliver what is new, changed or failed, to every enabled target.

use super::{Format, SyncArgs, check_targets, load_config, plan};
use crate::config::Config;
use crate::deliver::{self, Summary, SyncOptions, TargetSlot};
use crate::plan::PlanOptions;
use crate::store::Store;
use crate::targets;

pub(super) async fn run(args: &SyncArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    check_targets(&config, &args.targets)?;
    let plan_options = PlanOptions {
        force: args.force,
        only_failed: args.only_failed,
        targets: args.targets.clone(),
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
    };
    let summary = run_sync(&config, &options, shutdown_signal()).await?;
    print!("{}", summary.render());
    Ok(summary.exit_code())
}

/// Builds the targets and runs the engine; shared with `demo`.
pub(super) async fn run_sync(
    config: &Config,
    options: &SyncOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<Summary> {
    let names: Vec<&str> = config
        .enabled_targets()
        .into_iter()
        .filter(|t| options.plan.targets.is_empty() || options.plan.targets.iter().any(|o| o == t))
        .collect();
    if names.is_empty() {
        anyhow::bail!(
            "no target is enabled in {}: set `enabled = true` in [targets.feishu] or [targets.vzicloud]",
            config.file.display()
        );
    }
    let slots = names
        .into_iter()
        .map(|name| TargetSlot {
            name: name.to_string(),
            target: targets::build(config, name),
        })
        .collect();
    let store = Store::open(&config.state.database).await?;
    let result = deliver::sync(config, &store, slots, options, shutdown).await;
    store.close().await;
    result
}

/// Ctrl-C, or SIGTERM (systemd stopping the service).
async fn shutdown_signal() {
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

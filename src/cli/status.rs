//! `facesync status`: counts per target and state, and the last runs.

use serde_json::json;

use super::table::Table;
use super::{EXIT_OK, Format, StatusArgs, load_config};
use crate::store::{State, Store};

pub(super) async fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    if !config.state.database.exists() {
        anyhow::bail!(
            "no state database at {} yet: run `facesync plan -c {}` or `sync` first",
            config.state.database.display(),
            config.file.display()
        );
    }
    let store = Store::open(&config.state.database).await?;
    let counts = store.status_counts().await?;
    let runs = store.last_runs(10).await?;
    store.close().await;
    match args.format {
        Format::Json => {
            println!("{}", json!({ "counts": counts, "runs": runs }));
        }
        Format::Table => {
            let mut targets: Vec<&str> = counts.iter().map(|c| c.target.as_str()).collect();
            targets.dedup();
            let mut t = Table::new(
                std::iter::once("TARGET".to_string())
                    .chain(State::ALL.iter().map(|s| s.as_str().to_uppercase())),
            );
            for target in targets {
                let n = |s: State| {
                    counts
                        .iter()
                        .find(|c| c.target == target && c.state == s)
                        .map_or(0, |c| c.count)
                        .to_string()
                };
                t.row(std::iter::once(target.to_string()).chain(State::ALL.iter().map(|&s| n(s))));
            }
            println!("{}", t.render());
            let mut r = Table::new(["RUN", "KIND", "STARTED", "FINISHED", "STATUS", "EXIT"]);
            for run in &runs {
                r.row([
                    run.id.to_string(),
                    run.kind.clone(),
                    run.started_at.clone(),
                    run.finished_at.clone().unwrap_or_default(),
                    run.status.clone(),
                    run.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                ]);
            }
            println!("{}", r.render());
        }
    }
    Ok(EXIT_OK)
}

//! `facesync status`: counts per target and state, the last runs, and the trend of the last
//! sync runs (the HTML report's chart as a table); with `--person`, one person's audit trail
//! (every attempt of every kind).

use serde_json::json;

use super::table::Table;
use super::{EXIT_OK, Format, StatusArgs, load_config};
use crate::report::trend::{METRICS, Trend, format_duration};
use crate::store::{AttemptEntry, State, Store};

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
    if let Some(person) = &args.person {
        let trail = store.audit_trail(person).await;
        store.close().await;
        print_trail(person, &trail?, args.format);
        return Ok(EXIT_OK);
    }
    let counts = store.status_counts().await?;
    let runs = store.last_runs(10).await?;
    let trend = Trend::load(&store, args.runs.into()).await?;
    store.close().await;
    match args.format {
        Format::Json => {
            println!(
                "{}",
                json!({ "counts": counts, "runs": runs, "trend": trend.runs })
            );
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
            if !trend.runs.is_empty() {
                println!("{}", trend_table(&trend).render());
            }
        }
    }
    Ok(EXIT_OK)
}

/// The trend as the report's chart shows it, oldest run first: one line per run and target, a
/// run that recorded no counts on one line of its own.
fn trend_table(trend: &Trend) -> Table<'_> {
    let mut t = Table::new(
        ["SYNC RUN", "STARTED", "STATUS", "DURATION", "TARGET"]
            .into_iter()
            .map(str::to_string)
            .chain(METRICS.iter().map(|m| m.as_str().to_uppercase())),
    );
    for run in &trend.runs {
        let head = [
            run.run.to_string(),
            run.started_at.clone(),
            run.status.clone(),
            run.duration_seconds
                .map(format_duration)
                .unwrap_or_default(),
        ];
        match run.targets.as_deref() {
            Some(targets) if !targets.is_empty() => {
                for c in targets {
                    t.row(
                        head.iter()
                            .cloned()
                            .chain([c.target.clone()])
                            .chain(METRICS.iter().map(|&m| c.get(m).to_string())),
                    );
                }
            }
            _ => t.row(
                head.iter()
                    .cloned()
                    .chain(["(no counts)".to_string()])
                    .chain(METRICS.iter().map(|_| String::new())),
            ),
        }
    }
    t
}

/// One person's attempts, oldest first, each with its kind (upload, remove, check, download).
fn print_trail(person: &str, trail: &[AttemptEntry], format: Format) {
    match format {
        Format::Json => {
            let attempts: Vec<_> = trail
                .iter()
                .map(|e| {
                    json!({
                        "target": e.target,
                        "kind": e.kind,
                        "run": e.run_id,
                        "started_at": e.started_at,
                        "finished_at": e.finished_at,
                        "outcome": e.attempt.outcome,
                        "http_status": e.attempt.http_status,
                        "code": e.attempt.code,
                        "message": e.attempt.message,
                        "request_id": e.attempt.request_id,
                        "remote_id": e.attempt.remote_id,
                        "duration_ms": e.attempt.duration_ms,
                    })
                })
                .collect();
            println!("{}", json!({ "person": person, "attempts": attempts }));
        }
        Format::Table if trail.is_empty() => {
            println!("no request about `{person}` is recorded in the state database");
        }
        Format::Table => {
            let mut t = Table::new([
                "STARTED",
                "RUN",
                "TARGET",
                "KIND",
                "OUTCOME",
                "HTTP",
                "CODE",
                "REQUEST ID",
                "MESSAGE",
            ]);
            for e in trail {
                let a = &e.attempt;
                t.row([
                    e.started_at.clone(),
                    e.run_id.to_string(),
                    e.target.clone(),
                    e.kind.as_str().to_string(),
                    a.outcome.as_str().to_string(),
                    a.http_status.map(|s| s.to_string()).unwrap_or_default(),
                    a.code.clone().unwrap_or_default(),
                    a.request_id.clone().unwrap_or_default(),
                    a.message.clone().unwrap_or_default(),
                ]);
            }
            println!("{}", t.render());
        }
    }
}

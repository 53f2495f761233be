//! Reports of every person's outcome per target, read from the state DB: CSV, JSON, and a
//! self-contained HTML page ([`html`]) with the trend of the last sync runs ([`trend`]).

pub mod html;
pub mod trend;

use std::io::Write;

use serde::Serialize;

use crate::store::{Store, StoreError};

/// One person at one target, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub id: String,
    pub name: String,
    pub target: String,
    pub state: String,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    /// What to do about it, in plain words.
    pub advice: Option<String>,
    pub attempts: i64,
    pub remote_id: Option<String>,
    pub request_id: Option<String>,
    pub photo: Option<String>,
    pub updated_at: String,
}

/// Every delivery row, with the person's name and photo, ordered by id and target.
pub async fn rows(store: &Store) -> Result<Vec<ReportRow>, StoreError> {
    let people = store.people().await?;
    let attempts = store.attempt_counts().await?;
    let mut rows: Vec<ReportRow> = store
        .deliveries()
        .await?
        .into_values()
        .map(|d| {
            let person = people.get(&d.person_id);
            let n = attempts
                .get(&(d.person_id.clone(), d.target.clone()))
                .copied()
                .unwrap_or(0);
            report_row(
                d,
                person.map(|p| p.name.clone()),
                person.and_then(|p| p.photo_path.clone()),
                n,
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.id, &a.target).cmp(&(&b.id, &b.target)));
    Ok(rows)
}

/// Rows by target and state.
pub type Totals = std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>;

/// What the HTML report shows: the totals of every target and state (counted by the DB), and
/// only the rows that need attention, so that its cost follows those, not the roster's size.
pub async fn attention(store: &Store) -> Result<(Totals, Vec<ReportRow>), StoreError> {
    let mut totals = Totals::new();
    for c in store.status_counts().await? {
        *totals
            .entry(c.target)
            .or_default()
            .entry(c.state.as_str().to_string())
            .or_default() += c.count as usize;
    }
    let rows = store
        .needing_attention()
        .await?
        .into_iter()
        .map(|a| report_row(a.delivery, a.name, a.photo, a.attempts))
        .collect();
    Ok((totals, rows))
}

/// The totals of `rows` (for a caller that has every row already).
pub fn totals_of(rows: &[ReportRow]) -> Totals {
    let mut totals = Totals::new();
    for r in rows {
        *totals
            .entry(r.target.clone())
            .or_default()
            .entry(r.state.clone())
            .or_default() += 1;
    }
    totals
}

/// Writes the HTML report to `path`, as `sync` does after a run.
pub async fn write_html_file(
    store: &Store,
    config: &crate::config::Config,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let (totals, rows) = attention(store).await?;
    let thumbs = html::thumbnails(&rows, &config.photos).await;
    let trend = trend::Trend::load(store, trend::MAX_RUNS).await?;
    let page = html::render(&totals, &rows, &thumbs, &trend, "facesync report");
    write_atomically(path, page.as_bytes())
}

fn report_row(
    d: crate::store::DeliveryRecord,
    name: Option<String>,
    photo: Option<String>,
    attempts: i64,
) -> ReportRow {
    ReportRow {
        name: name.unwrap_or_default(),
        photo,
        attempts,
        state: d.state.as_str().to_string(),
        reason_code: d.reason_code.map(|c| c.as_str().to_string()),
        advice: d.reason_code.map(|c| c.advice().to_string()),
        reason: d.reason,
        remote_id: d.remote_id,
        request_id: d.request_id,
        updated_at: d.updated_at,
        id: d.person_id,
        target: d.target,
    }
}

/// Writes beside the destination and renames, so a reader never sees half a report.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// CSV with a header row; the columns are `ReportRow`'s fields.
pub fn write_csv(rows: &[ReportRow], out: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    for row in rows {
        w.serialize(row)?;
    }
    if rows.is_empty() {
        w.write_record([
            "id",
            "name",
            "target",
            "state",
            "reason_code",
            "reason",
            "advice",
            "attempts",
            "remote_id",
            "request_id",
            "photo",
            "updated_at",
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// A JSON array of rows.
pub fn write_json(rows: &[ReportRow], mut out: impl Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut out, rows)?;
    writeln!(out)?;
    Ok(())
}

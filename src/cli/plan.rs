//! `facesync plan`: what sync would do, per person and target, with no network.

use std::io::Write;
use std::sync::Arc;

use serde_json::json;

use super::table::Table;
use super::{EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, Format, PlanArgs, check_targets, load_config};
use crate::config::Config;
use crate::plan::{self, Action, Plan, PlanOptions};
use crate::store::Store;

pub(super) async fn run(args: &PlanArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    check_targets(&config, &args.targets)?;
    let options = PlanOptions {
        targets: args.targets.clone(),
        preview: args.preview.clone(),
        ..PlanOptions::default()
    };
    let plan = plan_and_record(&config, &options).await?;
    let mut out = std::io::stdout().lock();
    print(&plan, args.format, &mut out)?;
    Ok(exit_code(&plan))
}

/// Makes the plan inside a `plan` run of the state DB, recording how the run ended.
pub(super) async fn plan_and_record(
    config: &Config,
    options: &PlanOptions,
) -> anyhow::Result<Plan> {
    let store = Store::open(&config.state.database).await?;
    let run_id = store.begin_run("plan").await?;
    let result = plan::build(config, &store, run_id, options).await;
    let (status, code, summary) = match &result {
        Ok(p) => ("completed", exit_code(p), summary(p)),
        Err(e) => ("failed", EXIT_ERROR, json!({ "error": format!("{e:#}") })),
    };
    store
        .finish_run(run_id, status, code.into(), &summary)
        .await?;
    store.close().await;
    result
}

pub(super) fn exit_code(plan: &Plan) -> u8 {
    if plan.has_invalid() {
        EXIT_SOME_FAILED
    } else {
        EXIT_OK
    }
}

/// Counts per target and action, as stored with the run.
fn summary(plan: &Plan) -> serde_json::Value {
    let mut targets = serde_json::Map::new();
    for t in &plan.targets {
        let counts: serde_json::Map<String, serde_json::Value> = [
            Action::Upload,
            Action::Unchanged,
            Action::Skip,
            Action::Invalid,
        ]
        .into_iter()
        .map(|a| (a.as_str().to_string(), json!(plan.count(t, a))))
        .collect();
        targets.insert(t.clone(), counts.into());
    }
    json!({ "targets": targets, "orphans": plan.orphans.len() })
}

/// The measures outside the target's requirements of a photo that is sent all the same.
fn quality_warning(item: &plan::PlanItem) -> Option<String> {
    let q = item.quality.as_ref()?;
    let codes: Vec<&str> = q.failing.iter().map(|c| c.as_str()).collect();
    (!codes.is_empty()).then(|| {
        format!(
            "warning (photos.quality = \"warn\"): {} (eyes {:.0} px apart, yaw {:.0}, roll {:.0}, sharpness {:.0}, brightness {:.0})",
            codes.join(", "),
            q.eye_distance,
            q.yaw,
            q.roll,
            q.sharpness,
            q.face_luma
        )
    })
}

/// Prints a plan as a table (people needing attention, counts, orphans) or JSON lines.
pub(super) fn print(plan: &Plan, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for item in &plan.items {
                let line = json!({
                    "row": item.row,
                    "id": item.id,
                    "name": item.name,
                    "target": item.target,
                    "action": item.action.as_str(),
                    "reason_code": item.finding.as_ref().map(|f| f.code.as_str()),
                    "reason": item.finding.as_ref().map(|f| f.message.as_str()),
                    "photo": item.photo,
                    "target_user_id": item.target_user_id,
                    "quality": item.quality,
                });
                let mut line = line;
                if let Some(picked) = &item.picked {
                    line["picked"] = json!(picked);
                }
                writeln!(out, "{line}")?;
            }
            for orphan in &plan.orphans {
                writeln!(out, "{}", json!({ "orphan_photo": orphan }))?;
            }
        }
        Format::Table => {
            let mut people = Table::new(["ROW", "ID", "NAME", "TARGET", "ACTION", "REASON"]);
            for item in plan.items.iter().filter(|i| i.action != Action::Unchanged) {
                people.row([
                    item.row.to_string(),
                    item.id.to_string(),
                    item.name.to_string(),
                    item.target.to_string(),
                    item.action.as_str().to_string(),
                    match (&item.finding, item.action, &item.target_user_id) {
                        (Some(f), _, _) => f.to_string(),
                        // `photos.quality = "warn"`: sent all the same, but said.
                        (None, Action::Upload, _) if quality_warning(item).is_some() => {
                            quality_warning(item).unwrap_or_default()
                        }
                        (None, Action::Upload, None) => {
                            "id looked up by e-mail or mobile when sync runs".to_string()
                        }
                        _ => String::new(),
                    },
                ]);
            }
            if !people.is_empty() {
                writeln!(out, "{}", people.render())?;
            }
            // `photos.pick = "best"`: which of several photos each person gets, and why (once
            // for all their targets, or once per target when the choice differs by target).
            let picked = plan
                .items
                .iter()
                .filter_map(|i| Some((i, i.picked.as_ref()?)));
            let mut shown: Vec<&Arc<plan::Picked>> = Vec::new();
            let mut last: Option<&str> = None;
            let mut any = false;
            for (item, p) in picked {
                if last != Some(&*item.id) {
                    shown.clear();
                }
                last = Some(&*item.id);
                if shown.iter().any(|s| Arc::ptr_eq(s, p)) {
                    continue;
                }
                shown.push(p);
                any = true;
                writeln!(out, "{}: {}", item.id, p.line())?;
            }
            if any {
                writeln!(out)?;
            }
            let mut counts = Table::new(["TARGET", "UPLOAD", "UNCHANGED", "SKIP", "INVALID"]);
            for t in &plan.targets {
                counts.row([
                    t.clone(),
                    plan.count(t, Action::Upload).to_string(),
                    plan.count(t, Action::Unchanged).to_string(),
                    plan.count(t, Action::Skip).to_string(),
                    plan.count(t, Action::Invalid).to_string(),
                ]);
            }
            writeln!(out, "{}", counts.render())?;
            if !plan.orphans.is_empty() {
                writeln!(
                    out,
                    "{} photo(s) match nobody in the roster: {}",
                    plan.orphans.len(),
                    plan.orphans.join(", ")
                )?;
            }
            if plan.has_invalid() {
                writeln!(
                    out,
                    "Some people are invalid (exit code 2): fix the rows or photos named above."
                )?;
            }
        }
    }
    Ok(())
}

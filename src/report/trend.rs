//! The trend over the last sync runs: per run and target, how many people were delivered,
//! unchanged, failed and invalid, and how long the run took. Read from the `runs` table's JSON
//! summaries ([`Trend::load`], [`Trend::from_runs`]), drawn as one small inline SVG for the
//! HTML report ([`chart`]: no script, no outside assets) and listed by `facesync status`.
//!
//! The chart is small multiples: one row of bar panels per target (delivered, unchanged,
//! failed, invalid), each with its own scale from zero to a round maximum, and one panel of the
//! runs' durations; the oldest run on the left. A run that recorded no counts (it failed before
//! its summary, or is still running) is a grey bar across the panel. Its size depends only on
//! the number of runs (at most [`MAX_RUNS`]) and targets, never on the roster's.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use crate::store::{RunRecord, Store, StoreError};

/// The report's chart shows at most this many sync runs (the newest).
pub const MAX_RUNS: usize = 30;

/// The four counts each target has per run, in the order the chart draws them.
pub const METRICS: [Metric; 4] = [
    Metric::Delivered,
    Metric::Unchanged,
    Metric::Failed,
    Metric::Invalid,
];

/// One count of a target's part of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Delivered by the run.
    Delivered,
    /// Already held by the target: nothing sent.
    Unchanged,
    /// Refused for good or still failing after the retries (`failed_permanent` and
    /// `failed_retryable`, every reason).
    Failed,
    /// Not fit to send (every reason).
    Invalid,
}

impl Metric {
    /// The name the summary, the chart's `data-metric` and `status` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Delivered => "delivered",
            Metric::Unchanged => "unchanged",
            Metric::Failed => "failed",
            Metric::Invalid => "invalid",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Metric::Delivered => "#2e9e4f",
            Metric::Unchanged => "#7d8fb3",
            Metric::Failed => "#d64545",
            Metric::Invalid => "#e69a28",
        }
    }
}

/// One target's counts in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetCounts {
    pub target: String,
    pub delivered: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub invalid: u64,
}

impl TargetCounts {
    /// The count of `metric`.
    pub fn get(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Delivered => self.delivered,
            Metric::Unchanged => self.unchanged,
            Metric::Failed => self.failed,
            Metric::Invalid => self.invalid,
        }
    }
}

/// One sync run as the trend shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPoint {
    /// The run's id in the `runs` table.
    pub run: i64,
    pub started_at: String,
    /// `completed`, `interrupted`, `failed` or `running`.
    pub status: String,
    pub exit_code: Option<i64>,
    /// The summary's `elapsed_seconds`, else the time from start to finish; `None` while the
    /// run is going (or its times cannot be read).
    pub duration_seconds: Option<f64>,
    /// Each target's counts, in the summary's order; `None` when the run recorded no counts
    /// (it failed before its summary, or has not finished).
    pub targets: Option<Vec<TargetCounts>>,
}

impl RunPoint {
    /// The counts of `target` in this run, if it recorded them.
    pub fn counts(&self, target: &str) -> Option<&TargetCounts> {
        self.targets.as_ref()?.iter().find(|t| t.target == target)
    }
}

/// The last sync runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trend {
    pub runs: Vec<RunPoint>,
}

/// What the trend reads of `Summary::to_json` (the deliver module's `Summary`); anything else
/// in it is ignored, and a summary of another shape (a failed run's `{"error": ...}`) has no
/// counts.
#[derive(Deserialize)]
struct RawSummary {
    targets: Vec<RawTarget>,
    elapsed_seconds: Option<f64>,
}

#[derive(Deserialize)]
struct RawTarget {
    target: String,
    #[serde(default)]
    delivered: u64,
    #[serde(default)]
    unchanged: u64,
    #[serde(default)]
    invalid: BTreeMap<String, u64>,
    #[serde(default)]
    failed_permanent: BTreeMap<String, u64>,
    #[serde(default)]
    failed_retryable: BTreeMap<String, u64>,
}

impl Trend {
    /// The last `n` sync runs from the state DB (`n` is capped at [`MAX_RUNS`]).
    pub async fn load(store: &Store, n: usize) -> Result<Self, StoreError> {
        let n = n.min(MAX_RUNS) as i64;
        Ok(Self::from_runs(&store.last_runs_of("sync", n).await?))
    }

    /// The trend of `records` (in any order; shown oldest first, by id).
    pub fn from_runs(records: &[RunRecord]) -> Self {
        let mut runs: Vec<RunPoint> = records.iter().map(point).collect();
        runs.sort_by_key(|r| r.run);
        Self { runs }
    }

    /// Every target named in a run's counts, sorted.
    pub fn targets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .runs
            .iter()
            .flat_map(|r| r.targets.iter().flatten())
            .map(|t| t.target.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

fn point(record: &RunRecord) -> RunPoint {
    let summary = record
        .summary
        .clone()
        .and_then(|s| serde_json::from_value::<RawSummary>(s).ok());
    let elapsed = summary.as_ref().and_then(|s| s.elapsed_seconds);
    let measured = || {
        let start = humantime::parse_rfc3339_weak(&record.started_at).ok()?;
        let end = humantime::parse_rfc3339_weak(record.finished_at.as_deref()?).ok()?;
        Some(end.duration_since(start).ok()?.as_secs_f64())
    };
    let sum = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    RunPoint {
        run: record.id,
        started_at: record.started_at.clone(),
        status: record.status.clone(),
        exit_code: record.exit_code,
        duration_seconds: elapsed
            .filter(|s| s.is_finite() && *s >= 0.0)
            .or_else(measured),
        targets: summary.map(|s| {
            s.targets
                .into_iter()
                .map(|t| TargetCounts {
                    delivered: t.delivered,
                    unchanged: t.unchanged,
                    failed: sum(&t.failed_permanent) + sum(&t.failed_retryable),
                    invalid: sum(&t.invalid),
                    target: t.target,
                })
                .collect()
        }),
    }
}

/// The smallest round number (1, 2 or 5 times a power of ten) at or above `max`; 1 for 0.
pub fn nice_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 1.0 {
        return 1.0;
    }
    let mut step = 1.0;
    while step * 10.0 < max {
        step *= 10.0;
    }
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * step)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * step)
}

/// A duration in a few characters: `42s`, `7m05s`, `2h10m`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A count or a duration as a scale label: `0`, `50`, `20k`, `1.5M`; seconds as durations.
fn scale_label(value: f64, seconds: bool) -> String {
    if seconds {
        return format_duration(value);
    }
    match value {
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e4 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

// The geometry, in SVG user units (CSS pixels at 100%).
const PANEL_W: f64 = 200.0;
const PANEL_H: f64 = 56.0;
/// Space above a panel for its label.
const LABEL_H: f64 = 18.0;
const GAP_X: f64 = 16.0;
const GAP_Y: f64 = 10.0;
/// A bar never gets wider than a tenth of a panel (one run does not fill it).
const MIN_SLOTS: usize = 10;

/// One panel's bars: its label, its values per run (`None`: no counts), their colour.
struct Panel<'a> {
    label: String,
    target: Option<&'a str>,
    metric: &'static str,
    colour: &'static str,
    values: Vec<Option<f64>>,
    seconds: bool,
}

/// The bar of `value` in a panel `height` high whose scale goes to `max`: its height, at
/// most `height`.
pub fn bar_height(value: f64, max: f64, height: f64) -> f64 {
    if max <= 0.0 || value <= 0.0 {
        0.0
    } else {
        (value / max).min(1.0) * height
    }
}

/// The chart of `trend`, an inline `<svg>` (escaped by construction, no script, no outside
/// assets); `None` for an empty history. Each bar is a `rect` with `data-target`,
/// `data-metric` (`delivered`, `unchanged`, `failed`, `invalid`, `duration`), `data-run` and
/// `data-value` (absent on a run without counts, whose bar is grey) and a `title` a browser
/// shows on hover.
pub fn chart(trend: &Trend) -> Option<Markup> {
    if trend.runs.is_empty() {
        return None;
    }
    let mut panels: Vec<Vec<Panel<'_>>> = trend
        .targets()
        .into_iter()
        .map(|target| {
            METRICS
                .iter()
                .map(|&m| Panel {
                    label: format!("{target} · {}", m.as_str()),
                    target: Some(target),
                    metric: m.as_str(),
                    colour: m.colour(),
                    values: trend
                        .runs
                        .iter()
                        .map(|r| {
                            r.targets
                                .as_ref()
                                .map(|_| r.counts(target).map_or(0.0, |c| c.get(m) as f64))
                        })
                        .collect(),
                    seconds: false,
                })
                .collect()
        })
        .collect();
    panels.push(vec![Panel {
        label: "run duration".into(),
        target: None,
        metric: "duration",
        colour: "#7a5bc2",
        values: trend.runs.iter().map(|r| r.duration_seconds).collect(),
        seconds: true,
    }]);
    let slots = trend.runs.len().max(MIN_SLOTS);
    let slot = PANEL_W / slots as f64;
    let width = METRICS.len() as f64 * (PANEL_W + GAP_X) - GAP_X;
    let height = panels.len() as f64 * (LABEL_H + PANEL_H + GAP_Y) - GAP_Y;
    Some(html! {
        svg.trend xmlns="http://www.w3.org/2000/svg" role="img"
            width=(num(width)) height=(num(height)) viewBox=(format!("0 0 {} {}", num(width), num(height)))
            aria-label=(format!("the last {} sync runs: people delivered, unchanged, failed and invalid per target, and each run's duration", trend.runs.len())) {
            @for (row, line) in panels.iter().enumerate() {
                @for (col, panel) in line.iter().enumerate() {
                    @let x0 = col as f64 * (PANEL_W + GAP_X);
                    @let y0 = row as f64 * (LABEL_H + PANEL_H + GAP_Y) + LABEL_H;
                    @let max = nice_max(panel.values.iter().flatten().copied().fold(0.0, f64::max));
                    g.panel data-target=[panel.target] data-metric=(panel.metric) data-max=(num(max)) {
                        text x=(num(x0)) y=(num(y0 - 5.0)) font-size="11" fill="#444" { (panel.label) }
                        text x=(num(x0 + PANEL_W)) y=(num(y0 - 5.0)) font-size="10" fill="#888" text-anchor="end" {
                            "max " (scale_label(max, panel.seconds))
                        }
                        rect x=(num(x0)) y=(num(y0)) width=(num(PANEL_W)) height=(num(PANEL_H)) fill="#fafafa" {}
                        @for (i, (value, run)) in panel.values.iter().zip(&trend.runs).enumerate() {
                            @let x = x0 + i as f64 * slot + slot * 0.15;
                            @let w = slot * 0.7;
                            @match value {
                                Some(v) => {
                                    @let h = bar_height(*v, max, PANEL_H);
                                    rect.bar x=(num(x)) y=(num(y0 + PANEL_H - h)) width=(num(w)) height=(num(h))
                                        fill=(panel.colour) data-target=[panel.target] data-metric=(panel.metric)
                                        data-run=(run.run) data-value=(num(*v)) {
                                        title { (bar_title(run, &panel.label, *v, panel.seconds)) }
                                    }
                                }
                                None => {
                                    rect.bar.nodata x=(num(x)) y=(num(y0)) width=(num(w)) height=(num(PANEL_H))
                                        fill="#ddd" data-target=[panel.target] data-metric=(panel.metric)
                                        data-run=(run.run) {
                                        title {
                                            "run " (run.run) " (" (run.status) ", " (run.started_at) "): "
                                            (if panel.seconds { "no duration recorded" } else { "no counts recorded" })
                                        }
                                    }
                                }
                            }
                        }
                        line x1=(num(x0)) y1=(num(y0 + PANEL_H)) x2=(num(x0 + PANEL_W)) y2=(num(y0 + PANEL_H)) stroke="#999" stroke-width="1" {}
                    }
                }
            }
        }
    })
}

fn bar_title(run: &RunPoint, label: &str, value: f64, seconds: bool) -> String {
    let mut t = format!(
        "run {} ({}, {}): {label} ",
        run.run, run.status, run.started_at
    );
    if seconds {
        t.push_str(&format_duration(value));
    } else {
        let _ = write!(t, "{value}");
    }
    t
}

/// A coordinate or value with at most two decimals and no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: i64, summary: Option<serde_json::Value>) -> RunRecord {
        RunRecord {
            id,
            kind: "sync".into(),
            started_at: format!("2026-12-{:02}T02:00:00Z", id),
            finished_at: Some(format!("2026-12-{:02}T02:10:00Z", id)),
            status: "completed".into(),
            exit_code: Some(0),
            summary,
        }
    }

    /// A summary as `Summary::to_json` writes it (fields the trend does not read included).
    fn summary(targets: &[(&str, u64, u64, u64, u64)], elapsed: f64) -> serde_json::Value {
        json!({
            "targets": targets.iter().map(|(t, d, u, f, i)| json!({
                "target": t, "delivered": d, "unchanged": u,
                "invalid": {"no_face": i},
                "failed_permanent": {"user_not_found": f / 2},
                "failed_retryable": {"network": f - f / 2},
                "not_sent": 4, "skipped": 0, "requests": d, "retried": 0, "throttled": 0,
                "checks": 0, "stopped": null, "removed": 0, "remove_failed": {},
                "prune_refused": null,
            })).collect::<Vec<_>>(),
            "orphans": 0, "interrupted": false, "elapsed_seconds": elapsed,
            "report": null, "warnings": [],
        })
    }

    /// The bars of the chart: (target, metric, run, value) from each `rect.bar`.
    fn bars(svg: &str) -> Vec<(String, String, String, Option<String>, f64)> {
        let attr = |tag: &str, name: &str| {
            let key = format!(" {name}=\"");
            tag.find(&key).map(|at| {
                let rest = &tag[at + key.len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
        };
        svg.split("<rect")
            .skip(1)
            .map(|r| &r[..r.find('>').unwrap()])
            .filter(|tag| tag.contains("class=\"bar"))
            .map(|tag| {
                (
                    attr(tag, "data-target").unwrap_or_default(),
                    attr(tag, "data-metric").unwrap(),
                    attr(tag, "data-run").unwrap(),
                    attr(tag, "data-value"),
                    attr(tag, "height").unwrap().parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn counts_come_from_the_summary_failures_of_both_kinds_added_up() {
        let trend = Trend::from_runs(&[
            record(2, Some(summary(&[("vzicloud", 1, 2, 3, 4)], 90.5))),
            record(1, Some(summary(&[("feishu", 10, 20, 7, 5)], 30.0))),
        ]);
        assert_eq!(trend.runs.len(), 2);
        assert_eq!(trend.runs[0].run, 1, "oldest first");
        assert_eq!(trend.runs[0].duration_seconds, Some(30.0));
        assert_eq!(
            trend.runs[0].counts("feishu"),
            Some(&TargetCounts {
                target: "feishu".into(),
                delivered: 10,
                unchanged: 20,
                failed: 7,
                invalid: 5,
            })
        );
        assert_eq!(trend.targets(), ["feishu", "vzicloud"]);
    }

    #[test]
    fn a_run_without_a_summary_has_no_counts_and_its_duration_from_its_times() {
        let mut running = record(3, None);
        running.finished_at = None;
        running.status = "running".into();
        let trend = Trend::from_runs(&[
            record(1, Some(json!({"error": "roster unreadable"}))),
            record(2, None),
            running,
        ]);
        assert!(trend.runs.iter().all(|r| r.targets.is_none()));
        assert_eq!(trend.runs[0].duration_seconds, Some(600.0));
        assert_eq!(trend.runs[1].duration_seconds, Some(600.0));
        assert_eq!(trend.runs[2].duration_seconds, None);
        assert!(trend.targets().is_empty());

        let svg = chart(&trend).unwrap().into_string();
        let bars = bars(&svg);
        // Only the duration panel: two measured runs, the running one without a value.
        assert_eq!(bars.len(), 3);
        assert!(bars.iter().all(|b| b.1 == "duration"));
        assert_eq!(bars[0].3.as_deref(), Some("600"));
        assert_eq!(bars[2].3, None, "no value while running");
        assert!(svg.contains("running, 2026-12-03T02:00:00Z): no duration recorded"));
    }

    #[test]
    fn an_empty_history_has_no_chart() {
        assert!(chart(&Trend::default()).is_none());
        assert_eq!(Trend::from_runs(&[]), Trend::default());
    }

    #[test]
    fn one_run_draws_one_narrow_bar_per_panel_on_a_round_scale() {
        let trend = Trend::from_runs(&[record(7, Some(summary(&[("feishu", 37, 0, 3, 1)], 12.0)))]);
        let svg = chart(&trend).unwrap().into_string();
        let bars = bars(&svg);
        assert_eq!(bars.len(), 5, "four counts and the duration");
        let delivered = bars.iter().find(|b| b.1 == "delivered").unwrap();
        assert_eq!(delivered.0, "feishu");
        assert_eq!(delivered.2, "7");
        assert_eq!(delivered.3.as_deref(), Some("37"));
        // 37 on a scale of 50: 0.74 of the panel.
        assert!((delivered.4 - 0.74 * PANEL_H).abs() < 0.01, "{delivered:?}");
        assert!(svg.contains("data-max=\"50\""));
        let unchanged = bars.iter().find(|b| b.1 == "unchanged").unwrap();
        assert_eq!(unchanged.4, 0.0, "zero is no bar");
        // One run does not fill the panel: a bar is at most a tenth of it wide.
        assert!(svg.contains(&format!("width=\"{}\"", num(PANEL_W / 10.0 * 0.7))));
        assert!(svg.contains("run 7 (completed, 2026-12-07T02:00:00Z): feishu · delivered 37"));
    }

    #[test]
    fn every_run_and_target_gets_its_bars_and_a_target_missing_from_a_run_counts_zero() {
        let trend = Trend::from_runs(&[
            record(1, Some(summary(&[("feishu", 100, 0, 0, 2)], 60.0))),
            record(
                2,
                Some(summary(
                    &[("feishu", 0, 100, 40, 2), ("vzicloud", 5, 0, 0, 0)],
                    180.0,
                )),
            ),
            RunRecord {
                finished_at: Some("2026-12-03T02:01:40Z".into()),
                status: "failed".into(),
                ..record(3, Some(json!({"error": "database locked"})))
            },
        ]);
        let svg = chart(&trend).unwrap().into_string();
        let bars = bars(&svg);
        assert_eq!(bars.len(), 2 * 4 * 3 + 3);
        let failed: Vec<_> = bars
            .iter()
            .filter(|b| b.0 == "feishu" && b.1 == "failed")
            .map(|b| b.3.clone())
            .collect();
        assert_eq!(failed, [Some("0".into()), Some("40".into()), None]);
        let vzi_delivered: Vec<_> = bars
            .iter()
            .filter(|b| b.0 == "vzicloud" && b.1 == "delivered")
            .map(|b| b.3.clone())
            .collect();
        assert_eq!(vzi_delivered, [Some("0".into()), Some("5".into()), None]);
        // The slowest run on the duration panel's scale: 180 s of 200.
        let slow = bars
            .iter()
            .find(|b| b.1 == "duration" && b.2 == "2")
            .unwrap();
        assert!((slow.4 - 0.9 * PANEL_H).abs() < 0.01, "{slow:?}");
        assert!(svg.contains("max 3m20s"));
        // The failed run's duration comes from its times.
        let third = bars
            .iter()
            .find(|b| b.1 == "duration" && b.2 == "3")
            .unwrap();
        assert_eq!(third.3.as_deref(), Some("100"));
    }

    #[test]
    fn names_are_escaped() {
        let trend = Trend::from_runs(&[record(
            1,
            Some(summary(&[("<script>x</script>", 1, 0, 0, 0)], 1.0)),
        )]);
        let svg = chart(&trend).unwrap().into_string();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(1.0), 1.0);
        assert_eq!(nice_max(1.5), 2.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(10.0), 10.0);
        assert_eq!(nice_max(11.0), 20.0);
        assert_eq!(nice_max(99_999.0), 100_000.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
        assert_eq!(bar_height(5.0, 10.0, 56.0), 28.0);
        assert_eq!(bar_height(20.0, 10.0, 56.0), 56.0, "never above the panel");
        assert_eq!(bar_height(3.0, 0.0, 56.0), 0.0);
        assert_eq!(scale_label(20_000.0, false), "20k");
        assert_eq!(scale_label(2_000_000.0, false), "2M");
        assert_eq!(format_duration(42.4), "42s");
        assert_eq!(format_duration(425.0), "7m05s");
        assert_eq!(format_duration(7800.0), "2h10m");
    }
}

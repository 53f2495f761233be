//! The HTML report: one self-contained file (inline CSS, JS and thumbnails; no network
//! assets) an admin opens in the morning. Totals per target and state, filters by target and
//! state, the trend over the last sync runs (an inline SVG chart, [`super::trend`]), and for
//! each person who needs attention a thumbnail of the photo, the reason in plain words and what
//! to do.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt as _;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::ReportRow;
use super::trend::{self, Trend};
use crate::config::PhotoConfig;
use crate::reason::ReasonCode;

/// At most this many thumbnails are embedded; later rows show without one (the file stays
/// small enough to open on a 100,000-person roster).
const MAX_THUMBNAILS: usize = 2000;
const THUMB_BOX: u32 = 160;

/// Thumbnails by photo path (as the rows name it): a `data:` URL, or `None` when none could be
/// made (the page says "no preview").
pub type Thumbnails = HashMap<String, Option<String>>;

/// The thumbnails [`render`] embeds: those of the people who need attention, at most
/// [`MAX_THUMBNAILS`], each photo once. Made through the photo pipeline's bounded decoder
/// (limits from the header first, EXIF orientation, JPEGs DCT-scaled to 1/8) on blocking
/// threads, one per core at a time, so thousands of them neither stall the async runtime nor
/// take more than a few photos' memory at once.
pub async fn thumbnails(rows: &[ReportRow], photos: &PhotoConfig) -> Thumbnails {
    let mut seen = HashSet::new();
    // A face the quality gate refused gets its landmarks marked, so the reason can be seen.
    let refused: HashSet<&str> = rows
        .iter()
        .filter(|r| {
            r.reason_code
                .as_deref()
                .and_then(ReasonCode::parse)
                .is_some_and(ReasonCode::is_quality)
        })
        .filter_map(|r| r.photo.as_deref())
        .collect();
    let wanted: Vec<(String, bool)> = rows
        .iter()
        .filter(|r| needs_attention(&r.state))
        .filter_map(|r| r.photo.clone())
        .filter(|p| seen.insert(p.clone()))
        .take(MAX_THUMBNAILS)
        .map(|p| {
            let marked = refused.contains(p.as_str());
            (p, marked)
        })
        .collect();
    let photos = Arc::new(photos.clone());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    futures::stream::iter(wanted)
        .map(|(photo, marked)| {
            let photos = photos.clone();
            async move {
                let path = photos.dir.join(&photo);
                let thumb = tokio::task::spawn_blocking(move || thumbnail(&path, &photos, marked))
                    .await
                    .ok()
                    .flatten();
                (photo, thumb)
            }
        })
        .buffer_unordered(cores)
        .collect()
        .await
}

/// Renders the report: the `totals` of every target and state, the `rows` that need
/// attention (others given are left out), with the `thumbs` made by [`thumbnails`], and the
/// `trend` of the last sync runs ([`Trend::load`], at most [`trend::MAX_RUNS`]).
pub fn render(
    totals: &super::Totals,
    rows: &[ReportRow],
    thumbs: &Thumbnails,
    trend: &Trend,
    title: &str,
) -> String {
    let all: usize = totals.values().flat_map(|t| t.values()).sum();
    let states = [
        "delivered",
        "pending",
        "failed_permanent",
        "failed_retryable",
        "invalid",
        "skipped",
        "removed",
    ];
    let targets: Vec<&str> = totals.keys().map(String::as_str).collect();
    // Only the people who need attention are listed: on a large roster everyone else would make
    // the page tens of megabytes. The CSV and JSON reports list everyone.
    let attention: Vec<&ReportRow> = rows.iter().filter(|r| needs_attention(&r.state)).collect();
    let listed_states: Vec<&str> = states
        .iter()
        .copied()
        .filter(|s| needs_attention(s) && attention.iter().any(|r| r.state == *s))
        .collect();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { (title) }
                p.generated { "Generated " (crate::store::now()) " from the state database. "
                    (all) " person-target rows; " (attention.len()) " need attention." }
                h2 { "Totals" }
                table.totals {
                    thead { tr { th { "target" } @for s in &states { th { (s) } } } }
                    tbody {
                        @for t in &targets {
                            tr {
                                td { (t) }
                                @for s in &states {
                                    td.num { (totals[*t].get(*s).copied().unwrap_or(0)) }
                                }
                            }
                        }
                    }
                }
                h2 { "Last runs" }
                @if let Some(chart) = trend::chart(trend) {
                    p.caption { (trend_caption(trend)) }
                    div.trend { (chart) }
                } @else {
                    p.caption { "No sync run is recorded yet." }
                }
                h2 { "People who need attention" }
                p.others { (all.saturating_sub(attention.len())) " rows need nothing (delivered, or removed on purpose) and are not listed here: "
                    code { "facesync report -c CONFIG --format csv" } " (or " code { "json" } ") lists everyone." }
                div.filters {
                    label { "Target " select #target { option value="" { "all" } @for t in &targets { option value=(t) { (t) } } } }
                    label { "State " select #state {
                        option value="" selected { "all listed" }
                        @for s in &listed_states { option value=(s) { (s) } }
                    } }
                    span #shown {}
                }
                table #people {
                    thead { tr { th { "photo" } th { "id" } th { "name" } th { "target" } th { "state" } th { "why" } th { "what to do" } th { "attempts" } } }
                    tbody {
                        @for r in &attention {
                            (row(r, thumbs))
                        }
                    }
                }
                script { (PreEscaped(JS)) }
            }
        }
    };
    page.into_string()
}

fn row(r: &ReportRow, thumbs: &Thumbnails) -> Markup {
    let thumb = r
        .photo
        .as_deref()
        .and_then(|p| thumbs.get(p).cloned().flatten());
    html! {
        tr data-target=(r.target) data-state=(r.state) class=(r.state) {
            td.thumb {
                @if let Some(src) = thumb {
                    img src=(src) alt=(format!("photo of {}", r.id)) loading="lazy";
                } @else if needs_attention(&r.state) {
                    span.nothumb { "no preview" }
                }
                // The file, as several photos of one person (`photos.pick = "best"`) make it
                // worth saying which.
                @if let Some(photo) = &r.photo { div.file { (photo) } }
            }
            td { (r.id) }
            td { (r.name) }
            td { (r.target) }
            td { span.state { (r.state) } }
            td {
                @if let Some(code) = &r.reason_code { code { (code) } " " }
                (r.reason.as_deref().unwrap_or(""))
            }
            td { (r.advice.as_deref().unwrap_or("")) }
            td.num { (r.attempts) }
        }
    }
}

/// What the chart shows, in words: how many runs, from when to when.
fn trend_caption(trend: &Trend) -> String {
    let (Some(first), Some(last)) = (trend.runs.first(), trend.runs.last()) else {
        return String::new();
    };
    let n = trend.runs.len();
    if n == 1 {
        format!("The one sync run recorded, started {}.", first.started_at)
    } else {
        format!(
            "The last {n} sync runs, oldest on the left: from {} to {}. Each panel has its own \
             scale; a grey bar is a run that recorded no counts. Hover over a bar for its run.",
            first.started_at, last.started_at
        )
    }
}

/// Delivered people and leavers removed on purpose need nothing from an admin.
fn needs_attention(state: &str) -> bool {
    !matches!(state, "delivered" | "removed")
}

/// A small JPEG data URL of the photo, or `None` when it cannot be read or is over the
/// photo limits (the report shows "no preview"; the reason column says why). The file's size
/// is checked before it is read, its pixel count before it is decoded.
fn thumbnail(path: &Path, photos: &PhotoConfig, marked: bool) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > photos.max_file_bytes {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let jpeg = if marked {
        crate::photo::thumbnail_marked(&bytes, photos, THUMB_BOX).ok()?
    } else {
        crate::photo::thumbnail(&bytes, photos, THUMB_BOX).ok()?
    };
    Some(format!("data:image/jpeg;base64,{}", BASE64.encode(jpeg)))
}

const CSS: &str = r#"
body { font: 14px/1.4 system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.generated, .caption, .others { color: #666; }
div.trend { overflow-x: auto; }
svg.trend text { font-family: inherit; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; }
td.num { text-align: right; }
td.thumb img { width: 80px; height: auto; border-radius: 4px; display: block; }
.nothumb { color: #999; font-size: 0.85em; }
td.thumb .file { color: #666; font-size: 0.8em; max-width: 80px; overflow-wrap: anywhere; }
.filters { margin: 0.5em 0; display: flex; gap: 1.5em; align-items: center; }
#shown { color: #666; }
span.state { padding: 1px 6px; border-radius: 8px; background: #eee; font-size: 0.9em; }
tr.delivered span.state { background: #d7f5dd; }
tr.invalid span.state { background: #fde2b8; }
tr.failed_permanent span.state { background: #f9c7c7; }
tr.failed_retryable span.state, tr.pending span.state { background: #dde7fb; }
tr.removed span.state { background: #e4e4e4; color: #555; }
code { background: #f4f4f4; padding: 0 3px; }
"#;

const JS: &str = r#"
(function () {
  var target = document.getElementById('target');
  var state = document.getElementById('state');
  var shown = document.getElementById('shown');
  var rows = document.querySelectorAll('#people tbody tr');
  function apply() {
    var n = 0;
    rows.forEach(function (r) {
      var okT = !target.value || r.dataset.target === target.value;
      var s = r.dataset.state;
      var okS = state.value === '' || s === state.value;
      var show = okT && okS;
      r.style.display = show ? '' : 'none';
      if (show) n++;
    });
    shown.textContent = n + ' shown';
  }
  target.addEventListener('change', apply);
  state.addEventListener('change', apply);
  apply();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str, state: &str, photo: Option<&str>) -> ReportRow {
        ReportRow {
            id: id.into(),
            name: name.into(),
            target: "feishu".into(),
            state: state.into(),
            reason_code: (state != "delivered").then(|| "no_face".into()),
            reason: (state != "delivered").then(|| "no face found".into()),
            advice: (state != "delivered").then(|| "retake the photo facing the camera".into()),
            attempts: 0,
            remote_id: None,
            request_id: None,
            photo: photo.map(str::to_string),
            updated_at: String::new(),
        }
    }

    /// The default photo settings, over `dir`.
    fn photos(dir: &Path) -> PhotoConfig {
        let mut photos = crate::config::Config::parse(
            "[roster]\npath = \"r.csv\"\n",
            Path::new("/x/config.toml"),
        )
        .unwrap()
        .photos;
        photos.dir = dir.to_path_buf();
        photos
    }

    #[tokio::test]
    async fn the_report_is_self_contained_escaped_and_has_thumbnails_for_rejected_people() {
        let photos = photos(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/photos"));
        let rows = vec![
            row(
                "E1",
                "<script>alert(1)</script>",
                "invalid",
                Some("e1011.jpg"),
            ),
            row("E2", "张伟", "delivered", Some("E1001.jpg")),
            row("E3", "Gone", "invalid", Some("missing.jpg")),
        ];
        let thumbs = thumbnails(&rows, &photos).await;
        let page = render(
            &super::super::totals_of(&rows),
            &rows,
            &thumbs,
            &Trend::default(),
            "facesync report",
        );
        assert!(page.contains("No sync run is recorded yet."));
        assert!(!page.contains("<script>alert(1)"), "names must be escaped");
        assert!(page.contains("&lt;script&gt;alert(1)"));
        assert_eq!(
            page.matches("data:image/jpeg;base64,").count(),
            1,
            "one thumbnail: the rejected, readable photo"
        );
        assert!(page.contains("retake the photo facing the camera"));
        assert!(page.contains("no preview"));
        // Each listed person's file is named (the one chosen, with `photos.pick = "best"`).
        assert!(
            page.contains("<div class=\"file\">e1011.jpg</div>"),
            "{page}"
        );
        assert!(page.contains("<div class=\"file\">missing.jpg</div>"));
        assert!(
            !page.contains("张伟"),
            "delivered people are not listed (the CSV and JSON reports have them)"
        );
        assert!(
            page.contains("1 rows need nothing"),
            "the page says where they are"
        );
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no network assets"
        );
    }
}

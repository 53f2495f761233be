//! Progress of a run as it goes: bars on a terminal (indicatif), periodic log lines otherwise
//! (cron, systemd), nothing with `--quiet`. The engine reports events; this module decides how
//! they are shown.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the engine tells about its progress.
pub trait Progress: Send + Sync {
    /// The photo stage will prepare `total` photos.
    fn photos(&self, _total: u64) {}
    fn photo_done(&self) {}
    /// `target` has `total` uploads to make.
    fn target(&self, _target: &str, _total: u64) {}
    /// One upload to `target` finished (whatever the outcome).
    fn upload_done(&self, _target: &str) {}
    fn finish(&self) {}
}

/// A shareable progress sink; the default shows nothing.
#[derive(Clone)]
pub struct Handle(Arc<dyn Progress>);

impl Handle {
    pub fn new(p: impl Progress + 'static) -> Self {
        Self(Arc::new(p))
    }

    /// Bars when stderr is a terminal, log lines every `interval` otherwise, nothing if quiet.
    pub fn for_stderr(quiet: bool, interval: Duration) -> Self {
        if quiet {
            Self::default()
        } else if std::io::stderr().is_terminal() {
            Self::new(Bars::new())
        } else {
            Self::new(LogLines::new(interval))
        }
    }
}

impl Default for Handle {
    fn default() -> Self {
        Self(Arc::new(Silent))
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("progress::Handle")
    }
}

impl std::ops::Deref for Handle {
    type Target = dyn Progress;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// Shows nothing.
pub struct Silent;
impl Progress for Silent {}

/// indicatif bars: one for the photo stage, one per target (done of total, rate, ETA).
pub struct Bars {
    multi: MultiProgress,
    photos: ProgressBar,
    targets: Mutex<HashMap<String, ProgressBar>>,
}

/// The one set of bars of the process, shared with the log writer so that a log line is
/// printed above the bars instead of through them.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A `tracing` writer for stderr that hides the progress bars while it prints a line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

/// One log event, buffered and printed in one piece when the event is done.
pub struct StderrLine(Vec<u8>);

impl std::io::Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrLine {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.0);
        multi().suspend(|| {
            let _ = std::io::stderr().lock().write_all(&line);
        });
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = StderrLine;
    fn make_writer(&'a self) -> Self::Writer {
        StderrLine(Vec::new())
    }
}

impl Bars {
    pub fn new() -> Self {
        let multi = multi().clone();
        let photos = multi.add(
            ProgressBar::new(0)
                .with_style(style())
                .with_prefix("photos"),
        );
        Self {
            multi,
            photos,
            targets: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {per_sec:>9} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress for Bars {
    fn photos(&self, total: u64) {
        self.photos.set_length(total);
    }
    fn photo_done(&self) {
        self.photos.inc(1);
    }
    fn target(&self, target: &str, total: u64) {
        let bar = self.multi.add(
            ProgressBar::new(total)
                .with_style(style())
                .with_prefix(target.to_string()),
        );
        self.targets
            .lock()
            .expect("bars lock")
            .insert(target.to_string(), bar);
    }
    fn upload_done(&self, target: &str) {
        if let Some(bar) = self.targets.lock().expect("bars lock").get(target) {
            bar.inc(1);
        }
    }
    fn finish(&self) {
        self.photos.finish_and_clear();
        for bar in self.targets.lock().expect("bars lock").values() {
            bar.finish_and_clear();
        }
        // Bars drawn at the last tick stay on screen unless the whole block is cleared.
        let _ = self.multi.clear();
    }
}

/// A log line at most every `interval`: photos prepared and uploads done of total, per target.
pub struct LogLines {
    interval: Duration,
    last: Mutex<Instant>,
    photos: (AtomicU64, AtomicU64),
    targets: Mutex<Vec<(String, u64, u64)>>,
}

impl LogLines {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(Instant::now()),
            photos: (AtomicU64::new(0), AtomicU64::new(0)),
            targets: Mutex::new(Vec::new()),
        }
    }

    fn maybe_log(&self, force: bool) {
        let mut last = self.last.lock().expect("log lock");
        if !force && last.elapsed() < self.interval {
            return;
        }
        *last = Instant::now();
        let targets = self.targets.lock().expect("log lock");
        let parts: Vec<String> = targets
            .iter()
            .map(|(t, done, total)| format!("{t} {done}/{total}"))
            .collect();
        tracing::info!(
            "progress: photos {}/{}; uploads: {}",
            self.photos.1.load(Ordering::Relaxed),
            self.photos.0.load(Ordering::Relaxed),
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join(", ")
            }
        );
    }
}

impl Progress for LogLines {
    fn photos(&self, total: u64) {
        self.photos.0.store(total, Ordering::Relaxed);
    }
    fn photo_done(&self) {
        self.photos.1.fetch_add(1, Ordering::Relaxed);
        self.maybe_log(false);
    }
    fn target(&self, target: &str, total: u64) {
        self.targets
            .lock()
            .expect("log lock")
            .push((target.to_string(), 0, total));
    }
    fn upload_done(&self, target: &str) {
        if let Some(t) = self
            .targets
            .lock()
            .expect("log lock")
            .iter_mut()
            .find(|(name, _, _)| name == target)
        {
            t.1 += 1;
        }
        self.maybe_log(false);
    }
    fn finish(&self) {
        self.maybe_log(true);
    }
}

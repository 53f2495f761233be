//! Where log lines go and how they look: stderr (plain or `--json-log`), `--log-file` (never
//! coloured), `RUST_LOG`. The binary calls [`init`]; [`subscriber`] builds the same thing over
//! any writers, for tests.
//!
//! Colour is decided here and nowhere else: only for a terminal, and never when `NO_COLOR` is
//! set (no-color.org). tracing-subscriber's own default colours whatever stderr is, so
//! `facesync sync 2> log` and cron mail got escape sequences.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::cli::GlobalArgs;

/// Whether stderr lines get ANSI colours: a terminal, and `NO_COLOR` unset or empty (a
/// non-empty value turns colour off, whatever it says).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Sets up logging for the process from the global options and the environment.
pub fn init(global: &GlobalArgs) -> Result<(), String> {
    let log_file = match &global.log_file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    subscriber(global, ansi, crate::progress::Stderr, log_file)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

/// The subscriber: `stderr` coloured when `ansi`, and `log_file` (if any) plain. `RUST_LOG`
/// overrides the level; the default is info (warn with `--quiet`).
pub fn subscriber<W>(
    global: &GlobalArgs,
    ansi: bool,
    stderr: W,
    log_file: Option<std::fs::File>,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let level = if global.quiet {
        "facesync=warn"
    } else {
        "facesync=info"
    };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = if global.json_log {
        tracing_subscriber::fmt::layer()
            .json()
            .with_ansi(false)
            .with_writer(stderr)
            .with_filter(filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(stderr)
            .with_target(false)
            .without_time()
            .with_filter(filter())
            .boxed()
    };
    let file = log_file.map(|file| {
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(PlainFields::default())
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false);
        if global.json_log {
            layer.json().with_filter(filter()).boxed()
        } else {
            layer.with_filter(filter()).boxed()
        }
    });
    tracing_subscriber::registry().with(stderr).with(file)
}

/// The default field format under its own type. tracing-subscriber formats a span's fields
/// once per field-formatter type and caches the text in the span: with the same type on both
/// layers, the file would reuse stderr's coloured copy of every span field.
#[derive(Debug, Default)]
struct PlainFields(tracing_subscriber::fmt::format::DefaultFields);

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for PlainFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: tracing_subscriber::fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases: &[(bool, Option<&str>, bool)] = &[
            (true, None, true),
            (true, Some(""), true), // empty: as if unset (no-color.org)
            (true, Some("1"), false),
            (true, Some("0"), false), // any non-empty value, even "0"
            (false, None, false),
            (false, Some(""), false),
            (false, Some("1"), false),
        ];
        for &(terminal, no_color, want) in cases {
            assert_eq!(
                colour(terminal, no_color.map(OsStr::new)),
                want,
                "terminal {terminal}, NO_COLOR {no_color:?}"
            );
        }
    }

    /// A writer into a shared buffer, standing in for a coloured terminal.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn the_log_file_has_no_colour_even_when_stderr_has() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("facesync.log");
        let file = std::fs::File::create(&path).unwrap();
        let global = GlobalArgs {
            json_log: false,
            log_file: Some(path.clone()),
            quiet: false,
        };
        let terminal = Buffer::default();
        let subscriber = subscriber(&global, true, terminal.clone(), Some(file));
        tracing::subscriber::with_default(subscriber, || {
            // Span fields are formatted once and cached per span: the file must not reuse the
            // terminal's coloured copy.
            let span = tracing::info_span!("sync", target = "feishu", run = 7);
            let _entered = span.enter();
            tracing::warn!(person = "E1001", "a warning with fields");
            tracing::info!("a plain line");
        });
        let on_terminal = String::from_utf8(terminal.0.lock().unwrap().clone()).unwrap();
        assert!(
            on_terminal.contains('\u{1b}'),
            "the terminal is coloured: {on_terminal:?}"
        );
        let logged = std::fs::read_to_string(&path).unwrap();
        assert!(
            logged.contains("a warning with fields") && logged.contains("run=7"),
            "{logged}"
        );
        assert!(!logged.contains('\u{1b}'), "no escape codes: {logged:?}");
    }
}

//! `facesync report`: every person's outcome per target, from the state DB.

use std::io::Write;

use super::{EXIT_OK, ReportArgs, ReportFormat, load_config};
use crate::report::{self, trend, trend::Trend};
use crate::store::Store;

pub(super) async fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    if !config.state.database.exists() {
        anyhow::bail!(
            "no state database at {} yet: run `facesync sync -c {}` first",
            config.state.database.display(),
            config.file.display()
        );
    }
    let store = Store::open(&config.state.database).await?;
    let rows = report::rows(&store).await?;
    let trend = match args.format {
        ReportFormat::Html => Trend::load(&store, trend::MAX_RUNS).await?,
        ReportFormat::Csv | ReportFormat::Json => Trend::default(),
    };
    store.close().await;
    let mut buffer = Vec::new();
    match args.format {
        ReportFormat::Csv => report::write_csv(&rows, &mut buffer)?,
        ReportFormat::Json => report::write_json(&rows, &mut buffer)?,
        ReportFormat::Html => {
            let thumbs = report::html::thumbnails(&rows, &config.photos).await;
            buffer.extend_from_slice(
                report::html::render(&rows, &thumbs, &trend, "facesync report").as_bytes(),
            );
        }
    }
    match &args.output {
        Some(path) => {
            report::write_atomically(path, &buffer)?;
            eprintln!("wrote {} ({} rows)", path.display(), rows.len());
        }
        None => std::io::stdout().lock().write_all(&buffer)?,
    }
    Ok(EXIT_OK)
}

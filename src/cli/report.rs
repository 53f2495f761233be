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
    let trend = match args.format {
        ReportFormat::Html => Trend::load(&store, trend::MAX_RUNS).await?,
        ReportFormat::Csv | ReportFormat::Json => Trend::default(),
    };
    let mut buffer = Vec::new();
    // The HTML page lists only who needs attention: it reads only those rows.
    let rows = match args.format {
        ReportFormat::Csv => {
            let rows = report::rows(&store).await?;
            report::write_csv(&rows, &mut buffer)?;
            rows.len()
        }
        ReportFormat::Json => {
            let rows = report::rows(&store).await?;
            report::write_json(&rows, &mut buffer)?;
            rows.len()
        }
        ReportFormat::Html => {
            let (totals, rows) = report::attention(&store).await?;
            let thumbs = report::html::thumbnails(&rows, &config.photos).await;
            buffer.extend_from_slice(
                report::html::render(&totals, &rows, &thumbs, &trend, "facesync report").as_bytes(),
            );
            totals.values().flat_map(|t| t.values()).sum()
        }
    };
    store.close().await;
    match &args.output {
        Some(path) => {
            report::write_atomically(path, &buffer)?;
            eprintln!("wrote {} ({rows} rows)", path.display());
        }
        None => std::io::stdout().lock().write_all(&buffer)?,
    }
    Ok(EXIT_OK)
}

//! `facesync fetch`: download every roster person's face from Feishu.

use super::table::Table;
use super::{FetchArgs, GlobalArgs, load_config};
use crate::fetch::{self, FetchOptions};

pub(super) async fn run(args: &FetchArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    if config.feishu.is_none() {
        anyhow::bail!(
            "fetch downloads from Feishu, and {} has no [targets.feishu] section",
            config.file.display()
        );
    }
    let options = FetchOptions {
        out: args.out.clone(),
        cropped: args.cropped,
        force: args.force,
        progress: crate::progress::Handle::for_stderr(
            global.quiet,
            std::time::Duration::from_secs(10),
        ),
    };
    let summary = fetch::fetch(&config, "feishu", &options, super::sync::shutdown_signal()).await?;
    let mut t = Table::new([
        "DOWNLOADED",
        "ALREADY THERE",
        "NO FACE ON FILE",
        "FAILED",
        "BAD ROWS",
    ]);
    t.row([
        summary.downloaded.to_string(),
        summary.kept.to_string(),
        summary.no_face_on_file.len().to_string(),
        summary
            .failed
            .values()
            .map(Vec::len)
            .sum::<usize>()
            .to_string(),
        summary.invalid_rows.to_string(),
    ]);
    print!("{}", t.render());
    if !summary.no_face_on_file.is_empty() {
        println!("no face on file: {}", summary.no_face_on_file.join(", "));
    }
    for (reason, ids) in &summary.failed {
        println!("failed ({reason}: {}): {}", reason.advice(), ids.join(", "));
    }
    if let Some(why) = &summary.stopped {
        println!("STOPPED: {why}");
    }
    println!("faces are in {}", args.out.display());
    Ok(summary.exit_code())
}

//! `facesync fetch`: download every roster person's face from a target that can (Feishu).

use super::table::Table;
use super::{FetchArgs, GlobalArgs, load_config};
use crate::config::Config;
use crate::fetch::{self, FetchOptions};
use crate::targets;

pub(super) async fn run(args: &FetchArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = load_config(&args.config.config)?;
    let target = source(&config, args.target.as_deref())?;
    let options = FetchOptions {
        out: args.out.clone(),
        cropped: args.cropped,
        force: args.force,
        progress: crate::progress::Handle::for_stderr(
            global.quiet,
            std::time::Duration::from_secs(10),
        ),
    };
    let summary = fetch::fetch(&config, &target, &options, super::sync::shutdown_signal()).await?;
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

/// The target to download from: the one named, else the one enabled target with a download
/// API.
fn source(config: &Config, named: Option<&str>) -> anyhow::Result<String> {
    if let Some(name) = named {
        if config.target(name).is_none() {
            anyhow::bail!(
                "--target {name}: {} has no [targets.{name}] section",
                config.file.display()
            );
        }
        let target = targets::build(config, name).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        if !target.abilities().download {
            anyhow::bail!(
                "--target {name}: this target has no face download API, so fetch cannot read \
                 faces from it (name a Feishu target)"
            );
        }
        return Ok(name.to_string());
    }
    let able: Vec<&str> = config
        .enabled_targets()
        .into_iter()
        .filter(|name| targets::build(config, name).is_ok_and(|t| t.abilities().download))
        .collect();
    match able.as_slice() {
        [one] => Ok(one.to_string()),
        [] => anyhow::bail!(
            "fetch downloads faces, and no target enabled in {} has a face download API \
             with its credentials set (see `facesync fetch --help`)",
            config.file.display()
        ),
        several => anyhow::bail!(
            "more than one target can give faces back ({}): name one with --target",
            several.join(", ")
        ),
    }
}

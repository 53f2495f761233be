//! `facesync init`: writes the commented example configuration.

use anyhow::Context as _;

use super::{EXIT_OK, InitArgs};
use crate::config::EXAMPLE;

pub(super) fn run(args: &InitArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create folder {}", args.dir.display()))?;
    let path = args.dir.join("config.toml");
    if path.exists() && !args.force {
        anyhow::bail!(
            "{} already exists: edit it, or pass --force to overwrite it",
            path.display()
        );
    }
    std::fs::write(&path, EXAMPLE).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    println!(
        "next: set roster.path and photos.dir, the targets' app ids, export the secrets named by \
         the `_env` keys, then run `facesync plan -c {}`",
        path.display()
    );
    Ok(EXIT_OK)
}

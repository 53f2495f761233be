//! `facesync demo`: the whole job on the bundled fixtures, in a temporary folder, with no
//! credentials and no network.

use include_dir::{Dir, include_dir};

use super::{Format, plan};
use crate::config::Config;
use crate::plan::PlanOptions;

/// The demo roster and photos, compiled into the binary so `demo` works from anywhere.
static DEMO: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/demo");

/// The demo's configuration; the targets' URLs are filled in when the emulator runs.
pub(crate) fn demo_config_text(feishu_url: &str, vzicloud_url: &str) -> String {
    format!(
        r#"[roster]
path = "roster.csv"
[roster.columns]
id = "employee_id"
name = "name"
email = "email"
mobile = "mobile"

[photos]
dir = "photos"

[state]
database = "facesync.db"

[targets.feishu]
base_url = "{feishu_url}"
app_id = "cli_demo"
app_secret_env = "FACESYNC_DEMO_FEISHU_SECRET"
user_id_type = "user_id"

[targets.vzicloud]
base_url = "{vzicloud_url}"
app_id = 2
group_id = "demo_staff"
accesskey_id = "demo_key"
accesskey_secret_env = "FACESYNC_DEMO_VZICLOUD_SECRET"
"#
    )
}

pub(super) async fn run() -> anyhow::Result<u8> {
    let dir = tempfile::Builder::new()
        .prefix("facesync-demo-")
        .tempdir()?;
    DEMO.extract(dir.path())?;
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        demo_config_text("http://127.0.0.1:9", "http://127.0.0.1:9"),
    )?;
    let config = Config::load(&config_path)?;
    println!(
        "facesync demo: the bundled roster ({} rows) and photos, planned for Feishu and VziCloud",
        std::fs::read_to_string(&config.roster.path)?
            .lines()
            .count()
            - 1
    );
    println!(
        "working folder (removed at exit): {}\n",
        dir.path().display()
    );
    let plan = plan::plan_and_record(&config, &PlanOptions::default()).await?;
    plan::print(&plan, Format::Table, &mut std::io::stdout().lock())?;
    println!(
        "\nThis is what `facesync plan -c config.toml` prints for your own roster: run \
         `facesync init` to write a config to start from."
    );
    // The demo shows invalid people on purpose; that is its point, not a failure.
    Ok(super::EXIT_OK)
}

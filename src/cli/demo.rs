//! `facesync demo`: the whole job on the bundled fixtures against the built-in emulator on
//! loopback, with some trouble injected: no credentials, no network.

use std::path::Path;

use include_dir::{Dir, include_dir};

use super::{GlobalArgs, plan, render_summary};
use crate::config::Config;
use crate::deliver::{self, SyncOptions};
use facesync_emulator::{self as emulator, Emulator, EmulatorConfig};

/// The demo roster and photos, compiled into the binary so `demo` works from anywhere.
static DEMO: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/demo");

/// The emulated door terminals the demo enrolls, besides the two clouds.
pub(crate) const DEMO_TERMINALS: [&str; 2] = ["lobby", "gate2"];

/// The demo's configuration, pointing every target at the emulator: the two clouds at
/// `base_url`, the terminals under their own paths (`terminal_urls`, as [`DEMO_TERMINALS`]).
pub(crate) fn demo_config_text(base_url: &str, terminal_urls: &[String]) -> String {
    let mut terminals = String::new();
    for (name, url) in DEMO_TERMINALS.iter().zip(terminal_urls) {
        terminals.push_str(&format!(
            r#"
[targets.{name}]
kind = "hikvision"
base_url = "{url}"
username = "{user}"
password = "{password}"
readback_interval_ms = 300
"#,
            user = emulator::DEMO_HIKVISION_USERNAME,
            password = emulator::DEMO_HIKVISION_PASSWORD,
        ));
    }
    format!(
        r#"# The demo's configuration: every target points at the built-in emulator.
[roster]
path = "roster.csv"
[roster.columns]
id = "employee_id"
name = "name"
email = "email"
mobile = "mobile"

[photos]
dir = "photos"
# The demo's sixteen photos are made from four portraits: several people share one.
duplicate_photos = "off"

[state]
database = "facesync.db"

[targets.feishu]
base_url = "{base_url}"
app_id = "{feishu_app}"
app_secret = "{feishu_secret}"
user_id_type = "user_id"
rate_per_second = 5
concurrency = 4

[targets.vzicloud]
base_url = "{base_url}"
app_id = {vzi_app}
group_id = "demo_staff"
accesskey_id = "{vzi_key}"
accesskey_secret = "{vzi_secret}"
rate_per_second = 5
concurrency = 4
{terminals}"#,
        feishu_app = emulator::DEMO_FEISHU_APP_ID,
        feishu_secret = emulator::DEMO_FEISHU_APP_SECRET,
        vzi_app = emulator::DEMO_VZICLOUD_APP_ID,
        vzi_key = emulator::DEMO_VZICLOUD_ACCESSKEY_ID,
        vzi_secret = emulator::DEMO_VZICLOUD_ACCESSKEY_SECRET,
    )
}

/// The emulator as the demo runs it: Feishu throttles at 3 requests a second (the client asks
/// for 5), finds the roster's people by e-mail (the demo config maps no Feishu id column, so
/// their ids are looked up), and does not have E1015 in any access-control group. The two
/// terminals store a face half a second after they answer OK (the read-back waits for it).
fn demo_emulator() -> EmulatorConfig {
    EmulatorConfig {
        feishu_rate_limit: Some(3),
        absent_users: vec!["E1015".into()],
        directory: demo_directory(),
        hikvision: emulator::HikvisionConfig {
            terminals: DEMO_TERMINALS.iter().map(|t| t.to_string()).collect(),
            late_write: std::time::Duration::from_millis(500),
            ..emulator::HikvisionConfig::default()
        },
        ..EmulatorConfig::default()
    }
}

/// Feishu's contact directory for the demo: every roster row with an e-mail, under its
/// employee id as the Feishu user id.
fn demo_directory() -> Vec<emulator::DirectoryUser> {
    let Some(roster) = DEMO.get_file("roster.csv").and_then(|f| f.contents_utf8()) else {
        return Vec::new();
    };
    let mut reader = csv::Reader::from_reader(roster.as_bytes());
    reader
        .deserialize::<std::collections::HashMap<String, String>>()
        .filter_map(Result::ok)
        .filter_map(|row| {
            Some(emulator::DirectoryUser {
                user_id: row.get("employee_id")?.clone(),
                email: row.get("email").cloned(),
                mobile: row.get("mobile").cloned(),
                resigned: false,
            })
        })
        .collect()
}

pub(super) async fn run(global: &GlobalArgs) -> anyhow::Result<u8> {
    let dir = tempfile::Builder::new()
        .prefix("facesync-demo-")
        .tempdir()?
        .keep();
    DEMO.extract(&dir)?;
    let emulator = Emulator::start(demo_emulator(), "127.0.0.1:0".parse()?).await?;
    let config_path = dir.join("config.toml");
    let terminal_urls: Vec<String> = DEMO_TERMINALS
        .iter()
        .map(|t| emulator.hikvision_url(t))
        .collect();
    write_private(
        &config_path,
        &demo_config_text(&emulator.base_url(), &terminal_urls),
    )?;
    let config = Config::load(&config_path)?;
    let people = std::fs::read_to_string(&config.roster.path)?
        .lines()
        .count()
        - 1;
    println!("facesync demo");
    println!(
        "  roster: {people} rows, photos: {}",
        config.photos.dir.display()
    );
    println!(
        "  targets: Feishu ACS, VziCloud FRS and two Hikvision door terminals ({}), all played \
         by the built-in emulator at {}",
        DEMO_TERMINALS.join(", "),
        emulator.base_url()
    );
    println!(
        "  trouble injected: Feishu throttles at 3 requests/s, E1015 is in no Feishu access group, \
         the terminals store faces late; the fixtures hold a cat photo, a missing photo, a \
         duplicate id, an id VziCloud cannot take and photos under the terminals' 400 px\n"
    );

    println!("1. plan (no network): what sync would do\n");
    let planned = plan::plan_and_record(&config, &Default::default()).await?;
    plan::print(
        &planned,
        super::Format::Table,
        &mut std::io::stdout().lock(),
    )?;

    println!("\n2. sync: deliver to every target\n");
    let options = SyncOptions {
        progress: crate::progress::Handle::for_stderr(
            global.quiet,
            std::time::Duration::from_secs(5),
        ),
        ..SyncOptions::default()
    };
    let summary = deliver::run(&config, &options, std::future::pending()).await?;
    print!("{}", render_summary(&summary));

    println!("\n3. sync again: nothing changed, nothing is sent\n");
    let again = deliver::run(&config, &SyncOptions::default(), std::future::pending()).await?;
    print!("{}", render_summary(&again));

    let stats = emulator.stats();
    emulator.shutdown().await;
    println!(
        "\nThe emulator answered {} requests and throttled {} of them.",
        stats.requests.values().sum::<u64>(),
        stats.refusals_with(99991400)
    );
    if let Some(path) = &again.report {
        println!("Open the report: {}", path.display());
    }
    println!(
        "The demo's config, roster and state DB are in {}",
        dir.display()
    );
    println!("Next: `facesync init` writes a config for your own roster and clouds.");
    // The demo shows failures on purpose; that is its point, not a failure of the demo.
    Ok(super::EXIT_OK)
}

/// Writes a file only its owner can read (it holds the demo's secrets).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

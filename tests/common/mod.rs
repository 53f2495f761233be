//! What the integration tests share: a working folder with a roster, real photos and a config
//! whose targets point at the emulator, and ways to run and inspect syncs in it.

// Each test file is its own crate and uses only part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use facesync::config::Config;
use facesync::deliver::{self, Summary, SyncOptions};
use facesync::reason::ReasonCode;
use facesync::store::{State, Store};
use facesync_emulator::{Emulator, EmulatorConfig};

/// Real face photos from the demo fixtures, reused under new ids.
pub(crate) const FACES: &[&str] = &[
    "E1001.jpg",
    "E1002.jpg",
    "E1003.jpg",
    "E1004.jpg",
    "E1005.jpg",
    "E1006.jpg",
    "E1007.jpg",
    "E1008.jpg",
    "E1009.jpg",
    "E1010.jpg",
];

pub(crate) fn demo_photo(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/demo/photos")
        .join(name)
}

pub(crate) async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A temporary working folder: `roster.csv`, `photos/`, `config.toml`, `facesync.db`.
pub(crate) struct Workspace {
    pub(crate) dir: tempfile::TempDir,
}

/// What varies between the tests' configs.
pub(crate) struct Settings<'a> {
    /// Lines under `[roster.columns]`.
    pub(crate) columns: &'a str,
    pub(crate) max_retries: u32,
    /// Extra keys of each target's section.
    pub(crate) feishu: &'a str,
    pub(crate) vzicloud: &'a str,
    /// Lines after the targets.
    pub(crate) extra: &'a str,
}

impl Workspace {
    pub(crate) fn empty() -> Self {
        let ws = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(ws.path().join("photos")).unwrap();
        ws
    }

    /// Writes `roster.csv` (`employee_id,name`) with these ids, `Person <n>` for names, each
    /// with a real face photo from the demo fixtures (reused in turn) as `photos/<id>.jpg`.
    pub(crate) fn add_people(&self, ids: impl IntoIterator<Item = String>) {
        let mut roster = String::from("employee_id,name\n");
        for (i, id) in ids.into_iter().enumerate() {
            roster.push_str(&format!("{id},Person {}\n", i + 1));
            std::fs::copy(
                demo_photo(FACES[(i + 1) % FACES.len()]),
                self.path().join(format!("photos/{id}.jpg")),
            )
            .unwrap();
        }
        std::fs::write(self.path().join("roster.csv"), roster).unwrap();
    }

    /// Writes `config.toml`: both targets at the emulator, with its credentials.
    pub(crate) fn write_config(&self, emulator: &Emulator, s: &Settings<'_>) {
        let e = emulator.config();
        let url = emulator.base_url();
        let text = format!(
            r#"[roster]
path = "roster.csv"
[roster.columns]
{columns}
[photos]
dir = "photos"
# The tests reuse a few demo photos under many ids (tests/duplicates.rs checks the duplicate
# check itself).
duplicate_photos = "off"
[state]
database = "facesync.db"
[targets.feishu]
base_url = "{url}"
app_id = "{}"
app_secret = "{}"
rate_per_second = 200
concurrency = 4
max_retries = {retries}
timeout_seconds = 5
{feishu}
[targets.vzicloud]
base_url = "{url}"
app_id = {}
group_id = "staff"
accesskey_id = "{}"
accesskey_secret = "{}"
rate_per_second = 200
concurrency = 4
max_retries = {retries}
timeout_seconds = 5
{vzicloud}
{extra}
"#,
            e.feishu_app_id,
            e.feishu_app_secret.expose(),
            e.vzicloud_app_id,
            e.vzicloud_accesskey_id,
            e.vzicloud_accesskey_secret.expose(),
            columns = s.columns,
            retries = s.max_retries,
            feishu = s.feishu,
            vzicloud = s.vzicloud,
            extra = s.extra,
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    pub(crate) fn config(&self) -> Config {
        Config::load(&self.config_path()).unwrap()
    }

    pub(crate) async fn sync(&self, options: SyncOptions) -> Summary {
        deliver::run(&self.config(), &options, std::future::pending())
            .await
            .unwrap()
    }

    pub(crate) async fn store(&self) -> Store {
        Store::open(&self.path().join("facesync.db")).await.unwrap()
    }

    /// (person, state, reason) of every delivery row of a target, by person id.
    pub(crate) async fn states(&self, target: &str) -> Vec<(String, State, Option<ReasonCode>)> {
        let store = self.store().await;
        let mut rows: Vec<_> = store
            .deliveries()
            .await
            .unwrap()
            .into_values()
            .filter(|d| d.target == target)
            .map(|d| (d.person_id, d.state, d.reason_code))
            .collect();
        store.close().await;
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    /// Runs the real binary in the workspace.
    pub(crate) fn facesync(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_facesync"))
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }
}

/// One target's part of a summary.
pub(crate) fn target<'a>(summary: &'a Summary, name: &str) -> &'a deliver::TargetSummary {
    summary.targets.iter().find(|t| t.target == name).unwrap()
}

//! `facesync emulate`: run the Feishu + VziCloud + Hikvision terminal emulator as a server
//! until Ctrl-C, with the demo credentials or exactly those a facesync config names, and the
//! fault knobs as flags.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use crate::config::{Columns, Encoding, RosterConfig};
use crate::reason::ReasonCode;
use crate::targets::feishu::FeishuConfig;
use crate::targets::hikvision::HikvisionConfig;
use crate::targets::vzicloud::VziCloudConfig;
use facesync_emulator::{self as emulator, Emulator, EmulatorConfig};

const EXAMPLES: &str = "\
Examples:
  facesync emulate
      both clouds on http://127.0.0.1:8900, accepting the demo credentials it prints
  facesync emulate --config /etc/facesync/config.toml --listen 127.0.0.1:9000
      accept exactly the credentials that config names, with one terminal per hikvision
      target under its name; then set base_url = \"http://127.0.0.1:9000\" under
      [targets.feishu] and [targets.vzicloud], and \"http://127.0.0.1:9000/hikvision/NAME\"
      under each terminal's [targets.NAME], in a copy of it
  facesync emulate --users E1001,E1002 --absent-users E1002
      only E1001 exists in Feishu
  facesync emulate --users-roster roster.csv --users-column employee_id
      the people of a roster (CSV or XLSX) exist in Feishu, nobody else
  facesync emulate --feishu-rate-limit 5 --vzicloud-qps 5 --latency 300ms
      5 requests per second per Feishu API (then HTTP 429, code 99991400), 5 per second for
      VziCloud (then 1016), every answer 300 ms late
  facesync emulate --error-rate 0.05 --drop-rate 0.02 --seed 7
      5% server errors, 2% connections closed without an answer, the same ones on every run
  facesync emulate --token-lifetime 5m --quota 1000
      tokens expire after 5 minutes; VziCloud answers 1017 after 1000 signed requests
  facesync emulate --users-file staff.txt --groups staff,visitors
      the ids in staff.txt (one per line) exist in Feishu; two VziCloud groups exist already
  facesync emulate --token-lifetime 10m --token-refresh-window 4m
      a token asked for in its last 4 minutes is a new one (the real service: 30m of 2h)
  facesync emulate --feishu-rate-limit 100 --rate-window 1m --no-face-check
      100 requests per minute per Feishu API; any decodable image is taken, face or not
  facesync emulate --clock-offset 300 --feishu-missing-scopes contact:user.id:readonly
      the emulator's clock runs 5 minutes ahead (its Date headers, VziCloud's signature
      expiry: 1002, the terminals' System/time); Feishu's batch_get_id answers 99991672
      (try `facesync doctor` against it)
  facesync emulate --directory directory.csv --users E1001,E1002
      batch_get_id finds the people of directory.csv (user_id,email,mobile,resigned) by
      e-mail or mobile; only E1001 and E1002 are in an access-control group
  facesync emulate --hikvision-terminals lobby,gate --hikvision-password s3cret \
      --hikvision-busy-time 2s --hikvision-late-write 3s --hikvision-capacity 500 \
      --hikvision-nonce-lifetime 3s
      two Hikvision terminals (http://ADDR/hikvision/lobby, .../gate; HTTP Digest, user
      admin), each busy 2 s after a face write (deviceBusy), showing a face 3 s after its OK,
      holding 500 persons and 500 faces

Inspect what it holds and what it refused: GET http://ADDR/__emulator/stats (JSON).
See every request and how it was answered: RUST_LOG=facesync=debug facesync emulate";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct EmulateArgs {
    /// Address to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8900")]
    pub listen: SocketAddr,

    /// Accept exactly the credentials this facesync config names (Feishu app_id and app
    /// secret, VziCloud accesskey_id, secret and app_id); secrets are read as `sync` reads them
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Feishu users (user_id) that exist, comma-separated; default: everyone
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub users: Vec<String>,

    /// Feishu users that exist, one user_id per line (`#` starts a comment)
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,

    /// Feishu users that exist: the ids in a roster (CSV or XLSX, read like facesync's roster)
    #[arg(long, value_name = "FILE")]
    pub users_roster: Option<PathBuf>,

    /// The --users-roster column holding the Feishu user ids
    #[arg(long, value_name = "NAME", default_value = "employee_id")]
    pub users_column: String,

    /// Feishu users that do not exist, even when everyone else does (comma-separated)
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub absent_users: Vec<String>,

    /// Feishu's contact directory for batch_get_id: a CSV with a header naming user_id and any
    /// of email, mobile, resigned (true/false); resigned users are in no access group
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,

    /// VziCloud groups that exist from the start (comma-separated); others must be created
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub groups: Vec<String>,

    /// How long a Feishu tenant access token lives (e.g. 2h, 90s)
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = humantime::parse_duration)]
    pub token_lifetime: Duration,

    /// A token asked for when less than this remains is a new one; earlier, the same one
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub token_refresh_window: Duration,

    /// Feishu: requests per second each API takes before HTTP 429, code 99991400, with
    /// x-ogw-ratelimit-limit and x-ogw-ratelimit-reset; default: no limit
    #[arg(long, value_name = "N")]
    pub feishu_rate_limit: Option<u32>,

    /// VziCloud: signed requests per second before 1016; default: no limit
    #[arg(long, value_name = "N")]
    pub vzicloud_qps: Option<u32>,

    /// The window both rate limits count in (the limits are "N per this")
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    pub rate_window: Duration,

    /// Delay added before every answer (e.g. 250ms)
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,

    /// Share of requests answered with a server error (Feishu HTTP 500; VziCloud HTTP 503,
    /// 1108), from 0 to 1
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub error_rate: f64,

    /// Share of requests whose connection is closed without an answer, from 0 to 1
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub drop_rate: f64,

    /// VziCloud: signed requests served in total before every further one gets 1017
    #[arg(long, value_name = "N")]
    pub quota: Option<u64>,

    /// Seed of faults, tokens and ids: the same requests in the same order meet the same fate
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Seconds (negative: behind) the emulator's clock is off: its Date headers, VziCloud's
    /// signature expiry (1002) and the terminals' System/time
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_offset: i64,

    /// Feishu scopes the app lacks (comma-separated: acs:users, contact:user.id:readonly):
    /// the APIs needing one answer 99991672
    #[arg(long, value_name = "SCOPES", value_delimiter = ',')]
    pub feishu_missing_scopes: Vec<String>,

    /// Accept any decodable image, face or not (no 1490108 / 3002 / SubpicAnalysisModelingError
    /// for a missing face)
    #[arg(long)]
    pub no_face_check: bool,

    /// Hikvision terminals served under /hikvision/NAME (comma-separated)
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        default_value = "door1,door2"
    )]
    pub hikvision_terminals: Vec<String>,

    /// The password of the terminals' `admin` account (default: the demo password)
    #[arg(long, value_name = "PASSWORD")]
    pub hikvision_password: Option<String>,

    /// How long a face write keeps a terminal busy (deviceBusy to everything else meanwhile)
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub hikvision_busy_time: Duration,

    /// How long after its OK a face shows in a terminal's searches
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub hikvision_late_write: Duration,

    /// Persons and faces a terminal holds at most
    #[arg(long, value_name = "N", default_value_t = 1500)]
    pub hikvision_capacity: u32,

    /// How long a terminal's digest nonce is good for
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    pub hikvision_nonce_lifetime: Duration,
}

pub(super) async fn run(args: &EmulateArgs) -> anyhow::Result<u8> {
    let config = emulator_config(args)?;
    let emulator = Emulator::start(config.clone(), args.listen)
        .await
        .with_context(|| format!("cannot start the emulator on {}", args.listen))?;
    let url = emulator.base_url();
    let mut out = std::io::stdout().lock();
    writeln!(out, "facesync emulator listening on {url}")?;
    writeln!(
        out,
        "  Feishu ACS    base_url = \"{url}\"  app_id = \"{}\"",
        config.feishu_app_id
    )?;
    writeln!(
        out,
        "  VziCloud FRS  base_url = \"{url}\"  app_id = {}  accesskey_id = \"{}\"",
        config.vzicloud_app_id, config.vzicloud_accesskey_id
    )?;
    for terminal in &config.hikvision.terminals {
        writeln!(
            out,
            "  Hikvision     base_url = \"{}\"  username = \"{}\"",
            emulator.hikvision_url(terminal),
            config.hikvision.username
        )?;
    }
    if args.hikvision_password.is_some() || args.config.is_some() {
        writeln!(out, "  Hikvision password: as given (not shown)")?;
    } else if !config.hikvision.terminals.is_empty() {
        writeln!(
            out,
            "  Hikvision demo password = \"{}\"",
            emulator::DEMO_HIKVISION_PASSWORD
        )?;
    }
    match &args.config {
        Some(path) => writeln!(
            out,
            "  accepting the credentials of {} (secrets not shown)",
            path.display()
        )?,
        None => writeln!(
            out,
            "  demo secrets: Feishu app_secret = \"{}\", VziCloud accesskey_secret = \"{}\"",
            emulator::DEMO_FEISHU_APP_SECRET,
            emulator::DEMO_VZICLOUD_ACCESSKEY_SECRET
        )?,
    }
    writeln!(out, "  stats: {url}{}", emulator::STATS_PATH)?;
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    drop(out);

    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    let stats = emulator.stats();
    emulator.shutdown().await;
    let requests: u64 = stats.requests.values().sum();
    let refusals: u64 = stats.refusals.values().flat_map(|c| c.values()).sum();
    println!("stopped after {requests} requests ({refusals} refused)");
    Ok(super::EXIT_OK)
}

/// The knobs from the flags, and the credentials from `--config` or the demo ones.
fn emulator_config(args: &EmulateArgs) -> anyhow::Result<EmulatorConfig> {
    let mut config = EmulatorConfig {
        absent_users: args.absent_users.clone(),
        vzicloud_groups: args.groups.clone(),
        token_lifetime: args.token_lifetime,
        token_refresh_window: args.token_refresh_window,
        feishu_rate_limit: args.feishu_rate_limit,
        vzicloud_qps: args.vzicloud_qps,
        rate_window: args.rate_window,
        latency: args.latency,
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
        quota: args.quota,
        seed: args.seed,
        face_check: !args.no_face_check,
        clock_offset: args.clock_offset,
        feishu_missing_scopes: args.feishu_missing_scopes.clone(),
        hikvision: hikvision_config(args),
        users: users(args)?,
        directory: match &args.directory {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --directory {}", path.display()))?;
                emulator::DirectoryUser::parse_csv(&text)
                    .map_err(|e| anyhow::anyhow!("--directory {}: {e}", path.display()))?
            }
        },
        ..EmulatorConfig::default()
    };
    if let Some(path) = &args.config {
        accept_credentials_of(&mut config, path)?;
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("emulate: {e}"))?;
    Ok(config)
}

/// The Hikvision terminals' knobs from the flags.
fn hikvision_config(args: &EmulateArgs) -> emulator::HikvisionConfig {
    let defaults = emulator::HikvisionConfig::default();
    emulator::HikvisionConfig {
        terminals: args
            .hikvision_terminals
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        password: args
            .hikvision_password
            .as_deref()
            .map(emulator::Secret::new)
            .unwrap_or(defaults.password.clone()),
        busy_time: args.hikvision_busy_time,
        late_write: args.hikvision_late_write,
        max_persons: args.hikvision_capacity,
        max_faces: args.hikvision_capacity,
        nonce_lifetime: args.hikvision_nonce_lifetime,
        ..defaults
    }
}

/// Replaces the demo credentials with the ones a facesync config names (its first target of
/// each kind the emulator serves).
fn accept_credentials_of(config: &mut EmulatorConfig, path: &Path) -> anyhow::Result<()> {
    let facesync = super::load_config(path)?;
    let first = |kind: &str| facesync.targets.iter().find(|t| t.kind == kind);
    let (feishu, vzicloud) = (first("feishu"), first("vzicloud"));
    let terminals: Vec<_> = facesync
        .targets
        .iter()
        .filter_map(|t| Some((t, facesync.settings::<HikvisionConfig>(&t.name)?)))
        .collect();
    if feishu.is_none() && vzicloud.is_none() && terminals.is_empty() {
        anyhow::bail!(
            "{} configures no target the emulator serves: add [targets.feishu], \
             [targets.vzicloud] or a target of kind \"hikvision\"",
            path.display()
        );
    }
    // One terminal per hikvision target, under the target's name, with its account: the
    // emulated terminals share one account, so the targets must too.
    if let Some(((first, account), others)) = terminals.split_first() {
        let password = |t: &crate::config::TargetConfig, h: &HikvisionConfig| {
            h.password
                .resolve(&format!("targets.{}.password", t.name))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        };
        let secret = password(first, account)?;
        for (t, h) in others {
            if h.username != account.username || password(t, h)?.expose() != secret.expose() {
                anyhow::bail!(
                    "{}: targets.{} and targets.{} log in with different accounts, and the \
                     emulated terminals share one: give them the same username and password \
                     in a copy of the config for the emulator",
                    path.display(),
                    first.name,
                    t.name
                );
            }
        }
        config.hikvision.terminals = terminals.iter().map(|(t, _)| t.name.clone()).collect();
        config.hikvision.username = account.username.clone();
        config.hikvision.password = emulator::Secret::new(secret.expose());
    }
    if let Some(t) = feishu
        && let Some(feishu) = facesync.settings::<FeishuConfig>(&t.name)
    {
        config.feishu_app_id = feishu.app_id.clone();
        let secret = feishu
            .app_secret
            .resolve(&format!("targets.{}.app_secret", t.name))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.feishu_app_secret = emulator::Secret::new(secret.expose());
    }
    if let Some(t) = vzicloud
        && let Some(vzicloud) = facesync.settings::<VziCloudConfig>(&t.name)
    {
        config.vzicloud_accesskey_id = vzicloud.accesskey_id.clone();
        let secret = vzicloud
            .accesskey_secret
            .resolve(&format!("targets.{}.accesskey_secret", t.name))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.vzicloud_accesskey_secret = emulator::Secret::new(secret.expose());
        config.vzicloud_app_id = vzicloud.app_id;
    }
    Ok(())
}

/// The Feishu users that exist: the union of every users flag, or `None` (everyone).
fn users(args: &EmulateArgs) -> anyhow::Result<Option<Vec<String>>> {
    if args.users.is_empty() && args.users_file.is_none() && args.users_roster.is_none() {
        return Ok(None);
    }
    let mut users: Vec<String> = args
        .users
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if let Some(path) = &args.users_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --users-file {}", path.display()))?;
        users.extend(parse_users_file(&text));
    }
    if let Some(path) = &args.users_roster {
        let roster = crate::roster::read(&RosterConfig {
            path: path.clone(),
            encoding: Encoding::Auto,
            delimiter: None,
            sheet: None,
            columns: Columns {
                id: args.users_column.clone(),
                name: None,
                photo: None,
                email: None,
                mobile: None,
                target_ids: Default::default(),
            },
        })?;
        users.extend(
            roster
                .rows
                .into_iter()
                // A row without an id holds a placeholder, not an id.
                .filter(|r| !matches!(&r.finding, Some(f) if f.code == ReasonCode::MissingId))
                .map(|r| r.person.id),
        );
    }
    Ok(Some(users))
}

/// One id per line; blank lines and `#` comments skipped.
fn parse_users_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_files_hold_one_id_per_line() {
        let text = "# staff\nE1001\n\n  E1002  # night shift\n#E1003\n";
        assert_eq!(parse_users_file(text), ["E1001", "E1002"]);
    }
}

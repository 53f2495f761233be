//! A Hikvision terminal's section (`[targets.lobby]` with `kind = "hikvision"`): its keys,
//! defaults and checks, the rule roster ids must follow to be an `employeeNo`, and its prune
//! policy. Each terminal is its own target: a site with twenty terminals has twenty sections.

use std::any::Any;
use std::sync::Arc;

use super::Hikvision;
use crate::config::{
    ConfigError, DEFAULT_MIN_QUALITY, DEFAULT_PRUNE_MAX_SHARE, Defaults, DeliveryConfig,
    OutputFormat, Profile, Requirements, SecretSource, Section,
};
use crate::roster::Person;
use crate::targets::registry::{Kind, Settings};
use crate::targets::{Identity, Target};

/// The kind, as the registry lists it.
pub static KIND: HikvisionKind = HikvisionKind;

pub struct HikvisionKind;

/// What integrators found these terminals model reliably: a baseline 4:2:0 JPEG (facesync's
/// encoder writes only that, with nothing before SOI or after EOI) of at most 200 KB, about
/// 720x960 at most and at least 400 px on the shorter side. One request at a time, and read
/// timeouts long enough for modelling (seconds). No default address: a terminal is on the LAN.
const DEFAULTS: Defaults = Defaults {
    base_url: None,
    rate_per_second: 2.0,
    concurrency: 1,
    max_retries: 4,
    timeout_seconds: 45,
    profile: Profile {
        format: OutputFormat::Jpeg,
        max_width: 720,
        max_height: 960,
        max_bytes: 200_000,
        min_quality: DEFAULT_MIN_QUALITY,
        min_short_side: 400,
        requirements: Requirements::DEFAULT,
    },
};

/// The earliest and latest moments a terminal's validity window takes.
const VALID_MIN: &str = "2000-01-01T00:00:00";
const VALID_MAX: &str = "2037-12-31T23:59:59";

/// Which characters an `employeeNo` may hold on the site's terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmployeeNoFormat {
    /// Anything of 1 to 32 bytes but control characters (the developer guide: most devices).
    Any,
    /// ASCII letters and digits (the on-device UI's rule).
    Alphanumeric,
    /// Digits only (some models, as integrators report).
    Digits,
}

impl EmployeeNoFormat {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "any" => Some(Self::Any),
            "alphanumeric" => Some(Self::Alphanumeric),
            "digits" => Some(Self::Digits),
            _ => None,
        }
    }

    /// Why `id` cannot be an employeeNo, or `None` when it can.
    pub fn refuse(self, id: &str) -> Option<String> {
        if id.is_empty() || id.len() > 32 {
            return Some(format!(
                "is {} bytes; an employeeNo is 1 to 32 bytes",
                id.len()
            ));
        }
        match self {
            Self::Any if id.chars().any(char::is_control) => {
                Some("holds a control character".to_string())
            }
            Self::Alphanumeric if !id.bytes().all(|b| b.is_ascii_alphanumeric()) => Some(
                "is not only letters and digits (employee_no_format = \"alphanumeric\")".into(),
            ),
            Self::Digits if !id.bytes().all(|b| b.is_ascii_digit()) => {
                Some("is not only digits (employee_no_format = \"digits\")".into())
            }
            _ => None,
        }
    }
}

/// The person type a terminal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    Normal,
    Visitor,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Visitor => "visitor",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HikvisionConfig {
    /// The section's name: `targets.<name>.*` in messages.
    pub name: String,
    pub delivery: DeliveryConfig,
    pub username: String,
    pub password: SecretSource,
    /// Add people the terminal does not hold (and keep their record in step); `false` leaves
    /// people to another system (HikCentral) and only puts faces on people already there.
    pub create_persons: bool,
    pub user_type: UserType,
    /// The doors the person may open (`doorRight`), each with `plan_template`.
    pub doors: Vec<u32>,
    pub plan_template: u32,
    /// The validity window, local time on the terminal.
    pub valid_from: String,
    pub valid_until: String,
    /// Names are cut to this many UTF-8 bytes (at a character boundary).
    pub name_max_bytes: usize,
    pub employee_no_format: EmployeeNoFormat,
    /// The multipart name of the image part of a face upload.
    pub face_part: String,
    /// How often a face is looked for after the terminal took it, and how far apart.
    pub readback_tries: u32,
    pub readback_interval: std::time::Duration,
    pub prune_max_share: f64,
}

/// `YYYY-MM-DDTHH:MM:SS`, each field in range (not a full calendar check: the terminal does
/// that, and these keys are written once).
fn is_local_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(u32::MAX);
    b.len() == 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 60
}

impl Kind for HikvisionKind {
    fn name(&self) -> &'static str {
        "hikvision"
    }

    fn title(&self) -> &'static str {
        "Hikvision terminal"
    }

    fn settings(&self, s: &mut Section<'_>) -> Result<Arc<dyn Settings>, ConfigError> {
        let delivery = s.delivery(&DEFAULTS)?;
        let username = s
            .take_or("username", "admin".to_string())?
            .trim()
            .to_string();
        if username.is_empty() {
            return Err(s.err("username", "must be the terminal account's user name"));
        }
        let password = s.secret("password", "password_env")?;
        let create_persons = s.take_or("create_persons", true)?;
        let user_type = match s.take_or("user_type", "normal".to_string())?.as_str() {
            "normal" => UserType::Normal,
            "visitor" => UserType::Visitor,
            other => {
                return Err(s.err(
                    "user_type",
                    format!("`{other}` is not a person type: expected \"normal\" or \"visitor\""),
                ));
            }
        };
        let doors: Vec<u32> = s.take_or("doors", vec![1])?;
        if doors.is_empty() || doors.iter().any(|d| !(1..=64).contains(d)) {
            return Err(s.err(
                "doors",
                "must list the door numbers the person may open, 1 to 64 (such as [1])",
            ));
        }
        let mut doors = doors;
        doors.sort_unstable();
        doors.dedup();
        let plan_template = s.take_or("plan_template", 1u32)?;
        if !(1..=255).contains(&plan_template) {
            return Err(s.err(
                "plan_template",
                "must be a schedule template number from 1 to 255 (1: all day, every day)",
            ));
        }
        let valid_from = s.take_or("valid_from", "2020-01-01T00:00:00".to_string())?;
        let valid_until = s.take_or("valid_until", VALID_MAX.to_string())?;
        for (key, value) in [("valid_from", &valid_from), ("valid_until", &valid_until)] {
            if !is_local_time(value) || value.as_str() < VALID_MIN || value.as_str() > VALID_MAX {
                return Err(s.err(
                    key,
                    format!(
                        "`{value}` is not a local time like 2030-12-31T23:59:59 between \
                         {VALID_MIN} and {VALID_MAX}"
                    ),
                ));
            }
        }
        if valid_from >= valid_until {
            return Err(s.err("valid_until", "must be later than valid_from"));
        }
        let name_max_bytes = s.take_or("name_max_bytes", 32usize)?;
        if !(1..=128).contains(&name_max_bytes) {
            return Err(s.err("name_max_bytes", "must be between 1 and 128 bytes"));
        }
        let format = s.take_or("employee_no_format", "any".to_string())?;
        let employee_no_format = EmployeeNoFormat::parse(&format).ok_or_else(|| {
            s.err(
                "employee_no_format",
                format!(
                    "`{format}` is not a format: expected \"any\", \"alphanumeric\" or \"digits\""
                ),
            )
        })?;
        let face_part = s.take_or("face_part", "img".to_string())?;
        if !matches!(face_part.as_str(), "img" | "FaceImage") {
            return Err(s.err(
                "face_part",
                format!("`{face_part}` is not a part name terminals take: expected \"img\" or \"FaceImage\""),
            ));
        }
        let readback_tries = s.take_or("readback_tries", 4u32)?;
        if !(1..=20).contains(&readback_tries) {
            return Err(s.err("readback_tries", "must be between 1 and 20"));
        }
        let readback_interval_ms = s.take_or("readback_interval_ms", 1500u64)?;
        if readback_interval_ms > 60_000 {
            return Err(s.err("readback_interval_ms", "must be at most 60000 (a minute)"));
        }
        let prune_max_share = s.take_or("prune_max_share", DEFAULT_PRUNE_MAX_SHARE)?;
        if !(0.0..=1.0).contains(&prune_max_share) {
            return Err(s.err(
                "prune_max_share",
                "must be a fraction of the terminal's people from 0.0 to 1.0 (such as 0.05 for 5%)",
            ));
        }
        Ok(Arc::new(HikvisionConfig {
            name: s.name().to_string(),
            delivery,
            username,
            password,
            create_persons,
            user_type,
            doors,
            plan_template,
            valid_from,
            valid_until,
            name_max_bytes,
            employee_no_format,
            face_part,
            readback_tries,
            readback_interval: std::time::Duration::from_millis(readback_interval_ms),
            prune_max_share,
        }))
    }
}

impl Settings for HikvisionConfig {
    fn delivery(&self) -> &DeliveryConfig {
        &self.delivery
    }

    /// The terminal (its address) and everything the person record holds besides the name.
    fn fingerprint(&self) -> String {
        format!(
            "terminal={},type={},doors={:?},plan={},valid={}..{},name_bytes={}",
            self.delivery.base_url,
            self.user_type.as_str(),
            self.doors,
            self.plan_template,
            self.valid_from,
            self.valid_until,
            self.name_max_bytes
        )
    }

    fn prune_max_share(&self) -> f64 {
        self.prune_max_share
    }

    fn has_inline_secret(&self) -> bool {
        matches!(self.password, SecretSource::Inline(_))
    }

    /// The id column, else the employee id; either must be an employeeNo the site's terminals
    /// take.
    fn identity(&self, person: &Person, id: Option<&str>) -> Result<Identity, String> {
        let id = id.unwrap_or(&person.id);
        match self.employee_no_format.refuse(id) {
            None => Ok(Identity::Id(id.to_string())),
            Some(why) => Err(format!(
                "employeeNo `{id}` {why}: fix it, or map it with roster.columns.{}_user_id",
                self.name
            )),
        }
    }

    fn build(&self, name: &str) -> Result<Arc<dyn Target>, String> {
        Ok(Arc::new(Hikvision::new(name, self)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(section: &str) -> Result<Config, String> {
        Config::parse(
            &format!(
                "[roster]\npath = \"r.csv\"\n[targets.lobby]\nkind = \"hikvision\"\n\
                 base_url = \"http://10.0.0.21\"\npassword_env = \"LOBBY_PASSWORD\"\n{section}"
            ),
            std::path::Path::new("/etc/facesync/config.toml"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_terminal_gets_the_safe_defaults() {
        let config = load("").unwrap();
        let t = config.settings::<HikvisionConfig>("lobby").unwrap();
        assert_eq!(t.username, "admin");
        assert_eq!(t.delivery.concurrency, 1);
        assert_eq!(t.delivery.timeout, std::time::Duration::from_secs(45));
        let p = &t.delivery.profile;
        assert_eq!(
            (
                p.format,
                p.max_width,
                p.max_height,
                p.max_bytes,
                p.min_short_side
            ),
            (OutputFormat::Jpeg, 720, 960, 200_000, 400)
        );
        assert_eq!(t.doors, [1]);
        assert_eq!(t.name_max_bytes, 32);
        assert_eq!(t.face_part, "img");
        assert!(t.create_persons);
    }

    #[test]
    fn a_terminal_needs_its_address() {
        let e = Config::parse(
            "[roster]\npath = \"r.csv\"\n[targets.lobby]\nkind = \"hikvision\"\n",
            std::path::Path::new("/etc/facesync/config.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("targets.lobby.base_url"), "{e}");
    }

    #[test]
    fn bad_keys_are_refused_by_name() {
        for (section, key) in [
            ("doors = []", "targets.lobby.doors"),
            ("doors = [0]", "targets.lobby.doors"),
            ("plan_template = 256", "targets.lobby.plan_template"),
            ("valid_from = \"2020-01-01\"", "targets.lobby.valid_from"),
            (
                "valid_until = \"2040-01-01T00:00:00\"",
                "targets.lobby.valid_until",
            ),
            (
                "valid_until = \"2019-01-01T00:00:00\"",
                "targets.lobby.valid_until",
            ),
            ("user_type = \"blackList\"", "targets.lobby.user_type"),
            ("name_max_bytes = 0", "targets.lobby.name_max_bytes"),
            (
                "employee_no_format = \"hex\"",
                "targets.lobby.employee_no_format",
            ),
            ("face_part = \"photo\"", "targets.lobby.face_part"),
            ("readback_tries = 0", "targets.lobby.readback_tries"),
            ("username = \" \"", "targets.lobby.username"),
            ("group_id = \"x\"", "targets.lobby.group_id"),
        ] {
            let e = load(section).unwrap_err();
            assert!(e.contains(key), "{section}: {e}");
        }
    }

    #[test]
    fn roster_ids_must_be_employee_numbers_the_terminal_takes() {
        let any = EmployeeNoFormat::Any;
        assert_eq!(any.refuse("E1001"), None);
        assert_eq!(any.refuse("张伟-1"), None);
        assert!(any.refuse("").unwrap().contains("1 to 32 bytes"));
        assert!(any.refuse(&"9".repeat(33)).unwrap().contains("33 bytes"));
        // 11 characters of 3 bytes: 33 bytes, over the limit although only 11 characters.
        assert!(any.refuse(&"张".repeat(11)).is_some());
        assert!(any.refuse("a\tb").is_some());
        assert_eq!(EmployeeNoFormat::Alphanumeric.refuse("E1001"), None);
        assert!(EmployeeNoFormat::Alphanumeric.refuse("E-1001").is_some());
        assert_eq!(EmployeeNoFormat::Digits.refuse("1001"), None);
        assert!(EmployeeNoFormat::Digits.refuse("E1001").is_some());

        let config = load("employee_no_format = \"digits\"").unwrap();
        let t = config.settings::<HikvisionConfig>("lobby").unwrap();
        let person = Person {
            id: "E1001".into(),
            ..Person::default()
        };
        let e = t.identity(&person, None).unwrap_err();
        assert!(
            e.contains("E1001") && e.contains("roster.columns.lobby_user_id"),
            "{e}"
        );
        assert_eq!(
            t.identity(&person, Some("1001")),
            Ok(Identity::Id("1001".into()))
        );
    }

    /// The commented terminal section of config.example.toml, uncommented, loads and says what
    /// the defaults say.
    #[test]
    fn the_example_terminal_section_loads_with_the_defaults() {
        let example = crate::config::EXAMPLE;
        let start = example
            .find("# [targets.lobby]")
            .expect("the example has a terminal");
        let section: String = example[start..]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = format!("{}\n{section}", &example[..start]);
        let config = Config::parse(&text, std::path::Path::new("/etc/facesync/config.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{section}"));
        let example = config.settings::<HikvisionConfig>("lobby").unwrap();
        let defaults = load("").unwrap();
        let defaults = defaults.settings::<HikvisionConfig>("lobby").unwrap();
        assert_eq!(example, defaults);
    }

    #[test]
    fn door_rights_and_validity_are_part_of_what_was_delivered() {
        let a = load("").unwrap();
        let b = load("doors = [1, 2]").unwrap();
        let c = load("valid_until = \"2030-12-31T23:59:59\"").unwrap();
        let fp = |c: &Config| {
            c.settings::<HikvisionConfig>("lobby")
                .unwrap()
                .fingerprint()
        };
        assert_ne!(fp(&a), fp(&b));
        assert_ne!(fp(&a), fp(&c));
        assert_eq!(fp(&a), fp(&load("create_persons = false").unwrap()));
    }
}

//! The configuration file: parsed once from TOML into raw structs, then validated into
//! [`Config`], the one high-level struct the rest of the program takes.
//!
//! Nothing downstream re-checks raw input: paths are absolute (resolved against the config
//! file's folder), enums are enums, limits are in range. Secrets are not read here; each target
//! keeps a [`SecretSource`] that is resolved only when the target is about to be called, so
//! `plan` works without credentials.

mod section;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use self::section::{DEFAULT_MIN_QUALITY, Defaults, Section};
use crate::secret::Secret;
use crate::targets::registry::{self, Settings, kind_names};

/// The commented example configuration, as `init` writes it.
pub const EXAMPLE: &str = include_str!("../../config.example.toml");

/// A configuration error: names the file, the key and the expected form.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// Character encoding of a CSV roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Auto,
    Utf8,
    Gbk,
    Gb18030,
}

/// Optional crop of the normalized photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crop {
    None,
    Portrait,
}

/// What the quality gate does with a face outside a target's [`Requirements`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityGate {
    /// The person is `invalid` for that target, with the failing measure's reason.
    Refuse,
    /// Sent all the same; the plan and the report show the failing measure.
    Warn,
    /// Nothing measured, nothing levelled.
    Off,
}

/// What happens when several photos are found for one person (`photos.pick`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pick {
    /// The person is `ambiguous_photo` until someone removes the extra files.
    #[default]
    Ambiguous,
    /// Every candidate is measured and the best one that passes is sent.
    Best,
}

/// What the duplicate check (`photos.duplicate_photos`) does with one photo under two roster ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicatePhotos {
    /// Both people are `invalid` (`duplicate_photo`) at every target.
    Refuse,
    /// Sent all the same, with a warning naming both.
    Warn,
    /// No face hashes compared (photos are still hashed as they are prepared).
    Off,
}

/// What a target needs of the face, checked by the quality gate (`photos.quality`). The
/// defaults refuse only what the vendors are known to refuse. Angles in degrees.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirements {
    /// Pixels between the eye centres in the photo as sent.
    pub min_eye_distance: u32,
    /// Roll left after levelling.
    pub max_roll: u32,
    pub max_yaw: u32,
    /// See `photo::Quality::sharpness`.
    pub min_sharpness: u32,
    /// Mean luma of the face, 0 to 255.
    pub min_face_luma: u32,
    pub max_face_luma: u32,
    /// A roll up to this is levelled before the crop (0: never).
    pub level_max_roll: u32,
}

impl Requirements {
    /// The lenient defaults every kind starts from.
    pub const DEFAULT: Requirements = Requirements {
        min_eye_distance: 30,
        max_roll: 25,
        max_yaw: 25,
        min_sharpness: 12,
        min_face_luma: 50,
        max_face_luma: 210,
        level_max_roll: 15,
    };
}

impl Default for Requirements {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Output image format of a target profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

/// Which roster columns hold what, by header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub id: String,
    pub name: Option<String>,
    pub photo: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    /// Per-target id columns (`roster.columns.<target>_user_id`), by target name.
    pub target_ids: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterConfig {
    pub path: PathBuf,
    pub encoding: Encoding,
    /// `None`: detected from the header line.
    pub delimiter: Option<u8>,
    /// `None`: the first sheet.
    pub sheet: Option<String>,
    pub columns: Columns,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhotoConfig {
    pub dir: PathBuf,
    pub recursive: bool,
    pub face_check: bool,
    pub crop: Crop,
    /// Decoding limits checked from the header, before the full decode.
    pub max_pixels: u64,
    pub max_file_bytes: u64,
    /// Shortest side, in pixels, below which a photo is `too_small`.
    pub min_short_side: u32,
    /// The face's width as a fraction of the image's shorter side, below which it is too small.
    pub min_face_fraction: f32,
    /// Margin around the face for `crop = "portrait"`, as a multiple of the face's width.
    pub portrait_margin: f32,
    /// The quality gate (needs a face: `face_check` or `crop = "portrait"`).
    pub quality: QualityGate,
    /// Several photos for one person: refused, or the best one chosen (needs `face_check`).
    pub pick: Pick,
    /// One photo under two roster ids.
    pub duplicate_photos: DuplicatePhotos,
    /// Pairs of roster ids allowed the same photo (one person under two ids), each pair
    /// sorted.
    pub allow_same_photo: Vec<(String, String)>,
}

impl PhotoConfig {
    /// Whether `a` and `b` may share a photo (`photos.allow_same_photo`).
    pub fn allows_same_photo(&self, a: &str, b: &str) -> bool {
        let pair = if a <= b { (a, b) } else { (b, a) };
        self.allow_same_photo
            .iter()
            .any(|(x, y)| (x.as_str(), y.as_str()) == pair)
    }
}

/// How a target wants its photos: format and limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Profile {
    pub format: OutputFormat,
    pub max_width: u32,
    pub max_height: u32,
    pub max_bytes: u64,
    pub min_quality: u8,
    /// The photo's shorter side must reach this many pixels for this target (0: only
    /// `photos.min_short_side` applies); a smaller one is `too_small` for this target alone.
    pub min_short_side: u32,
    /// What the quality gate asks of the face for this target.
    pub requirements: Requirements,
}

/// Delivery settings every target has.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    pub enabled: bool,
    pub base_url: String,
    pub rate_per_second: f64,
    pub burst: u32,
    pub concurrency: usize,
    pub max_retries: u32,
    pub timeout: Duration,
    pub profile: Profile,
    /// `ca_file`: a private root CA trusted on top of the OS's and the bundled roots.
    pub ca_file: Option<CaFile>,
}

/// A PEM file of root certificates (a company's TLS-inspecting CA), read and checked once at
/// load, so that targets never open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    pub path: PathBuf,
    /// The certificates, DER, each parsed as a trust anchor.
    pub certs: Vec<Vec<u8>>,
}

/// Where a secret comes from. Resolved only when a target is about to be called.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    Inline(Secret),
    Missing,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "Env({name})"),
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
            Self::Missing => f.write_str("Missing"),
        }
    }
}

impl SecretSource {
    /// The secret, or an error naming the key and the variable to set.
    pub fn resolve(&self, key: &str) -> Result<Secret, String> {
        match self {
            Self::Inline(s) => Ok(s.clone()),
            Self::Env(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                _ => Err(format!(
                    "environment variable {var} (named by `{key}_env`) is not set: export it before running"
                )),
            },
            Self::Missing => Err(format!(
                "no secret configured: set `{key}_env` to the name of an environment variable holding it"
            )),
        }
    }
}

/// How a target's ids looked up by e-mail or mobile are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdCache {
    /// What an id is valid under (the app and the id type): an answer cached under another
    /// namespace is asked again.
    pub namespace: String,
    /// An answer older than this is asked again.
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    pub database: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// The HTML report written after every `sync`; `None`: not written.
    pub html: Option<PathBuf>,
}

/// One configured target: its name (the section's), its kind and its validated settings.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    pub kind: &'static str,
    pub settings: Arc<dyn Settings>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (absolute).
    pub file: PathBuf,
    pub roster: RosterConfig,
    pub photos: PhotoConfig,
    pub state: StateConfig,
    pub report: ReportConfig,
    /// Every configured target, by name (the order reports list them in).
    pub targets: Vec<TargetConfig>,
    /// Human-readable warnings found while loading (a secret in a world-readable file).
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut config = Self::parse(&text, &file)?;
        if config.has_inline_secret() && readable_by_others(&file) {
            config.warnings.push(format!(
                "{} holds a secret and is readable by other users: run `chmod 600 {}` or use an `_env` key",
                file.display(),
                file.display()
            ));
        }
        Ok(config)
    }

    /// Parses config text; relative paths resolve against `file`'s folder.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: file.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        Validator { file, base: &base }.config(raw)
    }

    /// A target by name.
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// A target's settings as its kind's own type (`None` for a target of another kind).
    pub fn settings<T: Settings>(&self, name: &str) -> Option<&T> {
        let settings: &dyn Any = self.target(name)?.settings.as_any();
        settings.downcast_ref()
    }

    /// Enabled targets' names, in the order reports list them.
    pub fn enabled_targets(&self) -> Vec<&str> {
        self.targets
            .iter()
            .filter(|t| t.settings.delivery().enabled)
            .map(|t| t.name.as_str())
            .collect()
    }

    /// The delivery settings of a target by name.
    pub fn delivery(&self, target: &str) -> Option<&DeliveryConfig> {
        self.target(target).map(|t| t.settings.delivery())
    }

    /// A fingerprint of everything that shapes what a target receives and where: the photo
    /// settings, the target's profile and its identity settings. A delivery made under another
    /// fingerprint is stale and is made again.
    pub fn delivery_fingerprint(&self, target: &str) -> String {
        let p = &self.photos;
        let mut parts = vec![
            format!("pipeline=1"),
            format!("face_check={}", p.face_check),
            format!("crop={:?}", p.crop),
            format!("margin={}", p.portrait_margin),
            format!("min_face={}", p.min_face_fraction),
            // The limits decide which photos are invalid: a cached verdict under other limits
            // is stale too.
            format!(
                "limits={},{},{}",
                p.max_pixels, p.max_file_bytes, p.min_short_side
            ),
        ];
        if let Some(t) = self.target(target) {
            let d = t.settings.delivery();
            let pr = &d.profile;
            parts.push(format!(
                "profile={:?},{},{},{},{}",
                pr.format, pr.max_width, pr.max_height, pr.max_bytes, pr.min_quality
            ));
            // Only when not the defaults, so that upgrading to a version with the gate does
            // not make every delivery stale.
            if p.quality != QualityGate::Refuse || pr.requirements != Requirements::DEFAULT {
                parts.push(format!("quality={:?},{:?}", p.quality, pr.requirements));
            }
            parts.push(format!("base_url={}", d.base_url));
            parts.push(t.settings.fingerprint());
        }
        let digest = blake3::hash(parts.join(";").as_bytes());
        digest.to_hex()[..16].to_string()
    }

    /// How `target` caches ids it looks up by e-mail or mobile; `None` for targets that take
    /// roster ids only.
    pub fn id_cache(&self, target: &str) -> Option<IdCache> {
        self.target(target)?.settings.id_cache()
    }

    /// The largest share of a target's users `sync --prune` removes without `--force`.
    pub fn prune_max_share(&self, target: &str) -> f64 {
        self.target(target)
            .map_or(DEFAULT_PRUNE_MAX_SHARE, |t| t.settings.prune_max_share())
    }

    fn has_inline_secret(&self) -> bool {
        self.targets.iter().any(|t| t.settings.has_inline_secret())
    }
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

// ---- raw form, exactly as TOML spells it ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    roster: RawRoster,
    #[serde(default)]
    photos: RawPhotos,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    report: RawReport,
    /// `[targets.NAME]` sections, read by their kinds.
    #[serde(default)]
    targets: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    path: String,
    #[serde(default = "auto")]
    encoding: String,
    #[serde(default = "auto")]
    delimiter: String,
    #[serde(default)]
    sheet: String,
    #[serde(default)]
    columns: RawColumns,
}

fn auto() -> String {
    "auto".into()
}

/// Not `deny_unknown_fields`: the other keys are the targets' id columns, checked against the
/// targets once they are known.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawColumns {
    id: String,
    name: String,
    photo: String,
    email: String,
    mobile: String,
    #[serde(flatten)]
    target_ids: BTreeMap<String, String>,
}

impl Default for RawColumns {
    fn default() -> Self {
        Self {
            id: "employee_id".into(),
            name: "name".into(),
            photo: String::new(),
            email: String::new(),
            mobile: String::new(),
            target_ids: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPhotos {
    dir: String,
    recursive: bool,
    face_check: bool,
    crop: String,
    max_pixels: u64,
    max_file_bytes: u64,
    min_short_side: u32,
    min_face_fraction: f64,
    portrait_margin: f64,
    quality: String,
    pick: String,
    duplicate_photos: String,
    allow_same_photo: Vec<Vec<String>>,
}

impl Default for RawPhotos {
    fn default() -> Self {
        Self {
            dir: "photos".into(),
            recursive: false,
            face_check: true,
            crop: "none".into(),
            max_pixels: 50_000_000,
            max_file_bytes: 40 * 1024 * 1024,
            min_short_side: 200,
            min_face_fraction: 0.1,
            portrait_margin: 0.6,
            quality: "refuse".into(),
            pick: "ambiguous".into(),
            duplicate_photos: "refuse".into(),
            allow_same_photo: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawState {
    database: String,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            database: "facesync.db".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawReport {
    html: String,
}

impl Default for RawReport {
    fn default() -> Self {
        Self {
            html: "facesync-report.html".into(),
        }
    }
}

/// `prune_max_share`'s default: 5% of the target's users.
pub const DEFAULT_PRUNE_MAX_SHARE: f64 = 0.05;

// ---- validation ----

struct Validator<'a> {
    file: &'a Path,
    base: &'a Path,
}

impl Validator<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.file.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The setting `value` names among `options`; otherwise an error naming `key`, what the
    /// value was taken for (`what`, e.g. "a crop") and every value allowed.
    fn choice<T: Copy>(
        &self,
        key: &str,
        value: &str,
        what: &str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == value) {
            return Ok(*v);
        }
        let quoted: Vec<String> = options
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect();
        let expected = match quoted.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(self.err(key, format!("`{value}` is not {what}: expected {expected}")))
    }

    fn path(&self, key: &str, value: &str) -> Result<PathBuf, ConfigError> {
        if value.trim().is_empty() {
            return Err(self.err(
                key,
                "must not be empty: give a path (relative to the config file)",
            ));
        }
        let p = Path::new(value.trim());
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        })
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let photos = self.photos(raw.photos)?;
        let state = StateConfig {
            database: self.path("state.database", &raw.state.database)?,
        };
        let report = ReportConfig {
            html: if raw.report.html.trim().is_empty() {
                None
            } else {
                Some(self.path("report.html", &raw.report.html)?)
            },
        };
        let targets = self.targets(raw.targets)?;
        let roster = self.roster(raw.roster, &targets)?;
        Ok(Config {
            file: self.file.to_path_buf(),
            roster,
            photos,
            state,
            report,
            targets,
            warnings: Vec::new(),
        })
    }

    fn roster(
        &self,
        raw: RawRoster,
        targets: &[TargetConfig],
    ) -> Result<RosterConfig, ConfigError> {
        let encoding = match raw.encoding.to_ascii_lowercase().as_str() {
            "auto" => Encoding::Auto,
            "utf-8" | "utf8" => Encoding::Utf8,
            "gbk" => Encoding::Gbk,
            "gb18030" => Encoding::Gb18030,
            other => {
                return Err(self.err(
                    "roster.encoding",
                    format!("`{other}` is not an encoding: expected auto, utf-8, gbk or gb18030"),
                ));
            }
        };
        let delimiter = match raw.delimiter.as_str() {
            "auto" | "" => None,
            "," => Some(b','),
            ";" => Some(b';'),
            "\t" | "\\t" | "tab" => Some(b'\t'),
            other => {
                return Err(self.err(
                    "roster.delimiter",
                    format!(
                        "`{other}` is not a delimiter: expected \"auto\", \",\", \";\" or \"\\t\""
                    ),
                ));
            }
        };
        let c = raw.columns;
        if c.id.trim().is_empty() {
            return Err(self.err(
                "roster.columns.id",
                "must name the roster column holding the employee id",
            ));
        }
        let opt = |s: String| {
            let s = s.trim().to_string();
            (!s.is_empty()).then_some(s)
        };
        // `<target>_user_id` for every target name; a kind's name is accepted without its
        // section, so a column mapping can stay while the target is taken out of the file.
        let mut target_ids = BTreeMap::new();
        for (key, column) in c.target_ids {
            let target = key
                .strip_suffix("_user_id")
                .filter(|t| targets.iter().any(|c| c.name == *t) || registry::kind(t).is_some());
            let Some(target) = target else {
                let mut names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                names.extend(kind_names());
                names.sort_unstable();
                names.dedup();
                let ids: Vec<String> = names.iter().map(|n| format!("{n}_user_id")).collect();
                return Err(self.err(
                    &format!("roster.columns.{key}"),
                    format!(
                        "unknown key: the columns are id, name, photo, email, mobile and one \
                         id column per target ({})",
                        ids.join(", ")
                    ),
                ));
            };
            if let Some(column) = opt(column) {
                target_ids.insert(target.to_string(), column);
            }
        }
        Ok(RosterConfig {
            path: self.path("roster.path", &raw.path)?,
            encoding,
            delimiter,
            sheet: opt(raw.sheet),
            columns: Columns {
                id: c.id.trim().to_string(),
                name: opt(c.name),
                photo: opt(c.photo),
                email: opt(c.email),
                mobile: opt(c.mobile),
                target_ids,
            },
        })
    }

    fn photos(&self, raw: RawPhotos) -> Result<PhotoConfig, ConfigError> {
        let crop = self.choice(
            "photos.crop",
            &raw.crop,
            "a crop",
            &[("none", Crop::None), ("portrait", Crop::Portrait)],
        )?;
        let quality = self.choice(
            "photos.quality",
            &raw.quality,
            "a quality gate setting",
            &[
                ("refuse", QualityGate::Refuse),
                ("warn", QualityGate::Warn),
                ("off", QualityGate::Off),
            ],
        )?;
        let pick = self.choice(
            "photos.pick",
            &raw.pick,
            "a pick setting",
            &[("ambiguous", Pick::Ambiguous), ("best", Pick::Best)],
        )?;
        // The choice ranks the candidates by what the quality gate measures on their one face.
        if pick == Pick::Best && !raw.face_check {
            return Err(self.err(
                "photos.pick",
                "\"best\" measures the face in every candidate photo: it needs photos.face_check = true",
            ));
        }
        let duplicate_photos = self.choice(
            "photos.duplicate_photos",
            &raw.duplicate_photos,
            "a duplicate photo setting",
            &[
                ("refuse", DuplicatePhotos::Refuse),
                ("warn", DuplicatePhotos::Warn),
                ("off", DuplicatePhotos::Off),
            ],
        )?;
        let mut allow_same_photo = Vec::with_capacity(raw.allow_same_photo.len());
        for (i, pair) in raw.allow_same_photo.iter().enumerate() {
            let key = format!("photos.allow_same_photo[{i}]");
            let [a, b] = pair.as_slice() else {
                return Err(self.err(
                    &key,
                    format!(
                        "must be a pair of two roster ids, like [\"E1001\", \"E1002\"]; it has {}",
                        pair.len()
                    ),
                ));
            };
            let (a, b) = (a.trim(), b.trim());
            if a.is_empty() || b.is_empty() {
                return Err(self.err(&key, "a roster id is empty: give both ids of the pair"));
            }
            if a == b {
                return Err(self.err(
                    &key,
                    format!("names `{a}` twice: give the two ids that share one photo"),
                ));
            }
            let pair = if a <= b { (a, b) } else { (b, a) };
            allow_same_photo.push((pair.0.to_string(), pair.1.to_string()));
        }
        if raw.max_pixels == 0 {
            return Err(self.err("photos.max_pixels", "must be a positive number of pixels"));
        }
        if raw.max_file_bytes == 0 {
            return Err(self.err(
                "photos.max_file_bytes",
                "must be a positive number of bytes",
            ));
        }
        if !(0.0..=1.0).contains(&raw.min_face_fraction) {
            return Err(self.err(
                "photos.min_face_fraction",
                "must be a fraction between 0.0 and 1.0",
            ));
        }
        if !(0.0..=5.0).contains(&raw.portrait_margin) {
            return Err(self.err(
                "photos.portrait_margin",
                "must be between 0.0 and 5.0 (a multiple of the face's width)",
            ));
        }
        Ok(PhotoConfig {
            dir: self.path("photos.dir", &raw.dir)?,
            recursive: raw.recursive,
            face_check: raw.face_check,
            crop,
            max_pixels: raw.max_pixels,
            max_file_bytes: raw.max_file_bytes,
            min_short_side: raw.min_short_side,
            min_face_fraction: raw.min_face_fraction as f32,
            portrait_margin: raw.portrait_margin as f32,
            quality,
            pick,
            duplicate_photos,
            allow_same_photo,
        })
    }

    /// Reads `ca_file`: a PEM file with at least one certificate, each a usable root.
    fn ca_file(&self, key: &str, value: &str) -> Result<CaFile, ConfigError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let path = self.path(key, value)?;
        let shown = path.display();
        let bytes = std::fs::read(&path).map_err(|e| {
            self.err(
                key,
                format!("cannot read {shown}: {e}: name the PEM file of your company's root CA"),
            )
        })?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(key, format!("{shown} is not a valid PEM file: {e}")))?;
        if certs.is_empty() {
            return Err(self.err(
                key,
                format!(
                    "{shown} holds no certificate: expected PEM (-----BEGIN CERTIFICATE-----), \
                     such as the root CA exported from your company's TLS inspection"
                ),
            ));
        }
        for (i, cert) in certs.iter().enumerate() {
            rustls::RootCertStore::empty()
                .add(cert.clone())
                .map_err(|e| {
                    self.err(
                        key,
                        format!(
                            "{shown}: certificate {} is not a usable root certificate: {e}",
                            i + 1
                        ),
                    )
                })?;
        }
        Ok(CaFile {
            certs: certs.into_iter().map(|c| c.to_vec()).collect(),
            path,
        })
    }

    fn targets(&self, raw: toml::Table) -> Result<Vec<TargetConfig>, ConfigError> {
        let mut targets = Vec::new();
        for (name, value) in raw {
            let toml::Value::Table(mut table) = value else {
                return Err(self.err(
                    &format!("targets.{name}"),
                    "must be a section: [targets.NAME] with the target's keys",
                ));
            };
            let kind_name = match table.remove("kind") {
                None => name.clone(),
                Some(toml::Value::String(k)) => k.trim().to_string(),
                Some(_) => {
                    return Err(self.err(
                        &format!("targets.{name}.kind"),
                        format!("must be a kind's name: one of {}", kind_names().join(", ")),
                    ));
                }
            };
            let Some(kind) = registry::kind(&kind_name) else {
                let key = if kind_name == name {
                    format!("targets.{name}")
                } else {
                    format!("targets.{name}.kind")
                };
                return Err(self.err(
                    &key,
                    format!(
                        "`{kind_name}` is not a target kind: expected one of {} (a section named \
                         otherwise needs `kind = \"...\"`)",
                        kind_names().join(", ")
                    ),
                ));
            };
            if !is_target_name(&name) {
                return Err(self.err(
                    &format!("targets.{name}"),
                    "a target's name is 1 to 32 letters, digits, `_` or `-`",
                ));
            }
            let mut section = Section::new(&name, table, self);
            let settings = kind.settings(&mut section)?;
            section.finish(kind.name())?;
            targets.push(TargetConfig {
                name: name.clone(),
                kind: kind.name(),
                settings,
            });
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(targets)
    }
}

/// Target names end up in the state DB, file names (`plan --preview`) and column keys
/// (`roster.columns.<name>_user_id`): keep them plain.
fn is_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::feishu::FeishuConfig;
    use crate::targets::vzicloud::VziCloudConfig;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/facesync/config.toml"))
    }

    #[test]
    fn the_example_config_is_valid_and_resolves_paths_against_its_folder() {
        let c = parse(EXAMPLE).expect("config.example.toml must parse");
        assert_eq!(c.roster.path, Path::new("/etc/facesync/roster.csv"));
        assert_eq!(c.photos.dir, Path::new("/etc/facesync/photos"));
        assert_eq!(c.photos.pick, Pick::Ambiguous);
        assert_eq!(c.state.database, Path::new("/etc/facesync/facesync.db"));
        assert_eq!(
            c.report.html.as_deref(),
            Some(Path::new("/etc/facesync/facesync-report.html"))
        );
        assert_eq!(c.enabled_targets(), vec!["feishu", "vzicloud"]);
        assert_eq!(
            c.targets.iter().map(|t| t.kind).collect::<Vec<_>>(),
            ["feishu", "vzicloud"]
        );
        let v = c.settings::<VziCloudConfig>("vzicloud").unwrap();
        assert_eq!(v.delivery.profile.max_width, 1920);
        assert_eq!(v.delivery.profile.max_height, 1080);
        assert_eq!(
            v.accesskey_secret,
            SecretSource::Env("VZICLOUD_ACCESSKEY_SECRET".into())
        );
        assert_eq!(v.prune_max_share, 0.05);
        let ids = c.id_cache("feishu").unwrap();
        assert_eq!(ids.max_age, Duration::from_secs(7 * 86_400));
        assert!(ids.namespace.contains("id_type=user_id"));
        assert_eq!(c.id_cache("vzicloud"), None);
    }

    fn check_error(text: &str, expected: &[&str]) {
        let err = parse(text)
            .expect_err("config should be refused")
            .to_string();
        for part in expected {
            assert!(err.contains(part), "error `{err}` should mention `{part}`");
        }
    }

    #[test]
    fn duplicate_photo_settings_are_checked_and_pairs_kept_sorted() {
        let photos = |lines: &str| {
            parse(&format!("[roster]\npath = \"r.csv\"\n[photos]\n{lines}\n")).map(|c| c.photos)
        };
        let p = photos("").unwrap();
        assert_eq!(p.duplicate_photos, DuplicatePhotos::Refuse);
        assert!(p.allow_same_photo.is_empty());
        let p = photos(
            "duplicate_photos = \"warn\"\nallow_same_photo = [[\"E1002\", \" E1001 \"], [\"A\", \"B\"]]",
        )
        .unwrap();
        assert_eq!(p.duplicate_photos, DuplicatePhotos::Warn);
        assert_eq!(
            p.allow_same_photo,
            [("E1001".into(), "E1002".into()), ("A".into(), "B".into())]
        );
        assert!(p.allows_same_photo("E1002", "E1001"));
        assert!(p.allows_same_photo("E1001", "E1002"));
        assert!(!p.allows_same_photo("E1001", "A"));
        assert_eq!(
            photos("duplicate_photos = \"off\"")
                .unwrap()
                .duplicate_photos,
            DuplicatePhotos::Off
        );
        for (lines, expected) in [
            (
                "duplicate_photos = \"ask\"",
                &["photos.duplicate_photos", "\"warn\""][..],
            ),
            (
                "allow_same_photo = [[\"E1\", \"E2\", \"E3\"]]",
                &[
                    "photos.allow_same_photo[0]",
                    "pair of two roster ids",
                    "it has 3",
                ],
            ),
            (
                "allow_same_photo = [[\"E1\", \"E2\"], [\"E1\"]]",
                &["photos.allow_same_photo[1]", "it has 1"],
            ),
            (
                "allow_same_photo = [[\"E1\", \" \"]]",
                &["photos.allow_same_photo[0]", "empty"],
            ),
            (
                "allow_same_photo = [[\"E1\", \"E1\"]]",
                &["photos.allow_same_photo[0]", "`E1` twice"],
            ),
            ("allow_same_photo = [\"E1\", \"E2\"]", &["allow_same_photo"]),
        ] {
            let err = photos(lines).expect_err(lines).to_string();
            for part in expected {
                assert!(
                    err.contains(part),
                    "{lines}: `{err}` should mention `{part}`"
                );
            }
        }
    }

    #[test]
    fn bad_configs_name_the_key_and_the_expected_form() {
        check_error("", &["roster"]);
        check_error(
            "[roster]\npath = \"r.csv\"\ncolour = 1\n",
            &["colour", "config.toml"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\nencoding = \"latin1\"\n",
            &["roster.encoding", "gbk"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\ndelimiter = \"|\"\n",
            &["roster.delimiter"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[photos]\ncrop = \"square\"\n",
            &["photos.crop", "portrait"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[photos]\npick = \"first\"\n",
            &["photos.pick", "\"best\""],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[photos]\npick = \"best\"\nface_check = false\n",
            &["photos.pick", "photos.face_check = true"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.vzicloud]\napp_id = 2\ngroup_id = \"bad-group\"\naccesskey_id = \"k\"\n",
            &["targets.vzicloud.group_id", "underscores"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\nrate_per_second = 0\n",
            &["targets.feishu.rate_per_second"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\nuser_id_type = \"email\"\n",
            &["targets.feishu.user_id_type", "open_id"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\n[targets.feishu.profile]\nformat = \"gif\"\nmax_width = 100\nmax_height = 100\nmax_bytes = 100000\n",
            &["targets.feishu.profile.format"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\napp_secret = \"a\"\napp_secret_env = \"B\"\n",
            &["not both"],
        );
        check_error("[roster]\npath = \"r.csv\"\n[targets.slack]\n", &["slack"]);
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\nid_cache_days = -1\n",
            &["targets.feishu.id_cache_days"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.vzicloud]\napp_id = 2\ngroup_id = \"g\"\naccesskey_id = \"k\"\nprune_max_share = 5\n",
            &["targets.vzicloud.prune_max_share", "0.05"],
        );
    }

    /// A config whose `target` section names `ca_file`.
    fn with_ca_file(target: &str, ca_file: &Path) -> String {
        let section = match target {
            "feishu" => "[targets.feishu]\napp_id = \"cli_1\"\n",
            _ => "[targets.vzicloud]\napp_id = 2\ngroup_id = \"g\"\naccesskey_id = \"k\"\n",
        };
        format!(
            "[roster]\npath = \"r.csv\"\n{section}ca_file = {:?}\n",
            ca_file.display().to_string()
        )
    }

    #[test]
    fn a_ca_file_must_be_a_pem_file_of_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let missing = dir.path().join("missing.pem");
        let empty = write("empty.pem", "");
        let text = write("text.pem", "this is not a certificate\n");
        let key_only = write(
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIG5vdCBhIHJlYWwga2V5IG5vdCBhIHJlYWwga2V5\n-----END PRIVATE KEY-----\n",
        );
        let bad_base64 = write(
            "bad64.pem",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let not_x509 = write(
            "notx509.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let truncated = write(
            "truncated.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n",
        );
        for target in ["feishu", "vzicloud"] {
            let key = format!("targets.{target}.ca_file");
            check_error(
                &with_ca_file(target, &missing),
                &[&key, "missing.pem", "cannot read"],
            );
            for (file, why) in [
                (&empty, "no certificate"),
                (&text, "no certificate"),
                (&key_only, "no certificate"),
                (&bad_base64, "not a valid PEM file"),
                (&truncated, "not a valid PEM file"),
                (&not_x509, "not a usable root certificate"),
            ] {
                let name = file.file_name().unwrap().to_str().unwrap();
                check_error(&with_ca_file(target, file), &[&key, name, why]);
            }
        }
    }

    #[test]
    fn a_ca_file_is_read_at_load_with_every_certificate() {
        let cert = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.self_signed(&key).unwrap()
        };
        let (a, b) = (cert("Corp Root A"), cert("Corp Root B"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corp-ca.pem");
        // Bundles often carry comments between the certificates.
        std::fs::write(
            &path,
            format!("# corp\n{}\n# old root\n{}", a.pem(), b.pem()),
        )
        .unwrap();
        for target in ["feishu", "vzicloud"] {
            let c = parse(&with_ca_file(target, &path)).unwrap();
            let ca = c.delivery(target).unwrap().ca_file.clone().unwrap();
            assert_eq!(ca.path, path);
            assert_eq!(ca.certs, vec![a.der().to_vec(), b.der().to_vec()]);
        }
        let none = parse(EXAMPLE).unwrap();
        assert_eq!(none.delivery("feishu").unwrap().ca_file, None);
    }

    #[test]
    fn secrets_come_from_the_named_environment_variable() {
        let c = parse(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\napp_secret_env = \"FACESYNC_TEST_SECRET_A\"\n",
        )
        .unwrap();
        let src = &c.settings::<FeishuConfig>("feishu").unwrap().app_secret;
        // SAFETY of the test: the variable name is unique to this test.
        let missing = src.resolve("targets.feishu.app_secret").unwrap_err();
        assert!(missing.contains("FACESYNC_TEST_SECRET_A"));
        assert!(!format!("{c:?}").contains("FACESYNC_TEST_SECRET_A="));
    }

    #[test]
    fn the_fingerprint_changes_with_the_profile_and_not_with_the_rate() {
        // The example with one change in its VziCloud section.
        let vzicloud = |from: &str, to: &str| {
            let (head, tail) = EXAMPLE.split_at(EXAMPLE.find("[targets.vzicloud]").unwrap());
            assert!(tail.contains(from), "{from}");
            parse(&format!("{head}{}", tail.replacen(from, to, 1))).unwrap()
        };
        let a = parse(EXAMPLE).unwrap();
        let b = vzicloud("rate_per_second = 5", "rate_per_second = 1");
        assert_eq!(
            a.delivery_fingerprint("vzicloud"),
            b.delivery_fingerprint("vzicloud")
        );
        let b = vzicloud("max_bytes = 1572864", "max_bytes = 500000");
        assert_ne!(
            a.delivery_fingerprint("vzicloud"),
            b.delivery_fingerprint("vzicloud")
        );
        assert_eq!(
            a.delivery_fingerprint("feishu"),
            b.delivery_fingerprint("feishu")
        );
    }

    #[test]
    fn targets_of_one_kind_run_under_their_own_names() {
        let c = parse(
            "[roster]\npath = \"r.csv\"\n[roster.columns]\nlobby_user_id = \"lobby id\"\n\
             [targets.lobby]\nkind = \"vzicloud\"\napp_id = 2\ngroup_id = \"front\"\naccesskey_id = \"k\"\n\
             [targets.gate2]\nkind = \"vzicloud\"\napp_id = 2\ngroup_id = \"back\"\naccesskey_id = \"k\"\n",
        )
        .unwrap();
        assert_eq!(c.enabled_targets(), ["gate2", "lobby"]);
        assert!(c.targets.iter().all(|t| t.kind == "vzicloud"));
        assert_eq!(
            c.settings::<VziCloudConfig>("lobby").unwrap().group_id,
            "front"
        );
        assert_eq!(
            c.roster.columns.target_ids,
            BTreeMap::from([("lobby".to_string(), "lobby id".to_string())])
        );
        assert_ne!(
            c.delivery_fingerprint("lobby"),
            c.delivery_fingerprint("gate2")
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.lobby]\nkind = \"hikvisio\"\n",
            &["targets.lobby.kind", "hikvisio", "feishu, vzicloud"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[roster.columns]\ngate_user_id = \"x\"\n",
            &["roster.columns.gate_user_id", "feishu_user_id"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\ngroup_id = \"g\"\n",
            &["targets.feishu.group_id", "unknown key", "app_id"],
        );
        check_error(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\nrate_per_second = \"fast\"\n",
            &["targets.feishu.rate_per_second"],
        );
    }
}

//! One `[targets.NAME]` section on its way to a target kind's settings.
//!
//! The keys every target has (`enabled`, `base_url`, the limits, `profile`) are read here, the
//! same way for every kind ([`Section::delivery`]); a kind reads its own keys with
//! [`Section::take`] and [`Section::secret`], and [`Section::finish`] refuses whatever key no one
//! took. Every error names the key as `targets.NAME.key`, so a kind's messages read like the
//! rest of the file's.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    ConfigError, DeliveryConfig, OutputFormat, Profile, Requirements, SecretSource, Validator,
};
use crate::secret::Secret;

/// What a kind's targets get when the section leaves a common key out.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// `None`: `base_url` is required (a device on the LAN has no well-known address).
    pub base_url: Option<&'static str>,
    pub rate_per_second: f64,
    pub concurrency: usize,
    pub max_retries: u32,
    pub timeout_seconds: u64,
    pub profile: Profile,
}

impl Defaults {
    /// A cloud's defaults: 5 requests a second, 4 at a time, 5 retries, 30 s a request.
    pub const fn cloud(base_url: &'static str, profile: Profile) -> Self {
        Self {
            base_url: Some(base_url),
            rate_per_second: 5.0,
            concurrency: 4,
            max_retries: 5,
            timeout_seconds: 30,
            profile,
        }
    }
}

/// A `[targets.NAME]` section: the keys not read yet, and who reads them.
pub struct Section<'a> {
    name: &'a str,
    table: toml::Table,
    /// The keys read so far, for the message about a key no one reads.
    taken: Vec<&'static str>,
    validator: &'a Validator<'a>,
}

impl<'a> Section<'a> {
    pub(super) fn new(name: &'a str, table: toml::Table, validator: &'a Validator<'a>) -> Self {
        Self {
            name,
            table,
            taken: Vec::new(),
            validator,
        }
    }

    /// The target's name: its section's (`[targets.lobby]` is `lobby`).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The full name of one of this section's keys: `targets.NAME.key`.
    pub fn key(&self, key: &str) -> String {
        format!("targets.{}.{key}", self.name)
    }

    /// An error about one of this section's keys.
    pub fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.validator.err(&self.key(key), message)
    }

    /// Reads and removes a key; `None` when the section does not have it.
    pub fn take<T: DeserializeOwned>(
        &mut self,
        key: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.taken.push(key);
        let Some(value) = self.table.remove(key) else {
            return Ok(None);
        };
        value
            .try_into()
            .map(Some)
            .map_err(|e: toml::de::Error| self.err(key, e.message().trim_end().replace('\n', " ")))
    }

    /// [`Section::take`], with a default for a missing key.
    pub fn take_or<T: DeserializeOwned>(
        &mut self,
        key: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        Ok(self.take(key)?.unwrap_or(default))
    }

    /// A secret: `key = "..."` in the file, or `key_env = "VAR"` naming an environment variable.
    /// Its value is not read here ([`SecretSource::resolve`] does, when the target is called).
    pub fn secret(
        &mut self,
        key: &'static str,
        env_key: &'static str,
    ) -> Result<SecretSource, ConfigError> {
        let inline: Option<String> = self.take(key)?;
        let env: Option<String> = self.take(env_key)?;
        match (inline, env) {
            (Some(_), Some(_)) => {
                Err(self.err(key, format!("set either `{key}` or `{env_key}`, not both")))
            }
            (Some(s), None) if !s.trim().is_empty() => {
                Ok(SecretSource::Inline(Secret::new(s.trim())))
            }
            (_, Some(e)) if !e.trim().is_empty() => Ok(SecretSource::Env(e.trim().to_string())),
            _ => Ok(SecretSource::Missing),
        }
    }

    /// The keys every target has, validated, with the kind's defaults.
    pub fn delivery(&mut self, defaults: &Defaults) -> Result<DeliveryConfig, ConfigError> {
        let enabled = self.take_or("enabled", true)?;
        let base_url: Option<String> = self.take("base_url")?;
        let base_url = match (base_url, defaults.base_url) {
            (Some(url), _) => url,
            (None, Some(url)) => url.to_string(),
            (None, None) => {
                return Err(self.err(
                    "base_url",
                    "is required: the device's address, such as \"http://10.0.0.21\"",
                ));
            }
        };
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(self.err(
                "base_url",
                format!("`{base_url}` is not a URL: expected http://... or https://..."),
            ));
        }
        let rate_per_second = self.take_or("rate_per_second", defaults.rate_per_second)?;
        if !(rate_per_second > 0.0 && rate_per_second <= 10_000.0) {
            return Err(self.err(
                "rate_per_second",
                "must be a number of requests per second above 0 (such as 5 or 0.5)",
            ));
        }
        let burst: Option<u32> = self.take("burst")?;
        let concurrency = self.take_or("concurrency", defaults.concurrency)?;
        if concurrency == 0 || concurrency > 256 {
            return Err(self.err("concurrency", "must be between 1 and 256"));
        }
        let max_retries = self.take_or("max_retries", defaults.max_retries)?;
        if max_retries > 100 {
            return Err(self.err("max_retries", "must be between 0 and 100"));
        }
        let timeout_seconds = self.take_or("timeout_seconds", defaults.timeout_seconds)?;
        if timeout_seconds == 0 {
            return Err(self.err("timeout_seconds", "must be at least 1 second"));
        }
        let burst = burst.unwrap_or_else(|| (rate_per_second.ceil() as u32).max(1));
        if burst == 0 {
            return Err(self.err("burst", "must be at least 1"));
        }
        let profile = match self.take::<RawProfile>("profile")? {
            Some(raw) => self.profile(raw, &defaults.profile)?,
            None => defaults.profile.clone(),
        };
        let ca_file = match self.take::<String>("ca_file")? {
            Some(file) => Some(self.validator.ca_file(&self.key("ca_file"), &file)?),
            None => None,
        };
        Ok(DeliveryConfig {
            enabled,
            base_url,
            rate_per_second,
            burst,
            concurrency,
            max_retries,
            timeout: Duration::from_secs(timeout_seconds),
            profile,
            ca_file,
        })
    }

    fn profile(&self, raw: RawProfile, defaults: &Profile) -> Result<Profile, ConfigError> {
        let format = match raw.format.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => OutputFormat::Jpeg,
            "png" => OutputFormat::Png,
            other => {
                return Err(self.err(
                    "profile.format",
                    format!("`{other}` is not an output format: expected \"jpeg\" or \"png\""),
                ));
            }
        };
        if raw.max_width < 64 || raw.max_height < 64 {
            return Err(self.err(
                "profile.max_width",
                "max_width and max_height must be at least 64 pixels",
            ));
        }
        if raw.max_bytes < 10_000 {
            return Err(self.err("profile.max_bytes", "must be at least 10000 bytes"));
        }
        if !(1..=100).contains(&raw.min_quality) {
            return Err(self.err("profile.min_quality", "must be between 1 and 100"));
        }
        let d = &defaults.requirements;
        let requirements = Requirements {
            min_eye_distance: raw.min_eye_distance.unwrap_or(d.min_eye_distance),
            max_roll: raw.max_roll.unwrap_or(d.max_roll),
            max_yaw: raw.max_yaw.unwrap_or(d.max_yaw),
            min_sharpness: raw.min_sharpness.unwrap_or(d.min_sharpness),
            min_face_luma: raw.min_face_luma.unwrap_or(d.min_face_luma),
            max_face_luma: raw.max_face_luma.unwrap_or(d.max_face_luma),
            level_max_roll: raw.level_max_roll.unwrap_or(d.level_max_roll),
        };
        if requirements.max_roll > 90 || requirements.max_yaw > 90 {
            return Err(self.err(
                "profile.max_roll",
                "max_roll and max_yaw are degrees between 0 and 90",
            ));
        }
        if requirements.level_max_roll > 45 {
            return Err(self.err(
                "profile.level_max_roll",
                "must be between 0 and 45 degrees (0: never level)",
            ));
        }
        if requirements.min_face_luma > requirements.max_face_luma
            || requirements.max_face_luma > 255
        {
            return Err(self.err(
                "profile.min_face_luma",
                "min_face_luma and max_face_luma are brightness from 0 to 255, min below max",
            ));
        }
        Ok(Profile {
            requirements,
            format,
            max_width: raw.max_width,
            max_height: raw.max_height,
            max_bytes: raw.max_bytes,
            min_quality: raw.min_quality,
            min_short_side: raw.min_short_side.unwrap_or(defaults.min_short_side),
        })
    }

    /// Refuses the keys no one read: a misspelt key must not be ignored silently.
    pub fn finish(self, kind: &str) -> Result<(), ConfigError> {
        let Some(key) = self.table.keys().next() else {
            return Ok(());
        };
        let mut known = self.taken.clone();
        known.sort_unstable();
        known.dedup();
        Err(self.err(
            key,
            format!(
                "unknown key for a {kind} target; its keys are: {}",
                known.join(", ")
            ),
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default = "jpeg")]
    format: String,
    max_width: u32,
    max_height: u32,
    max_bytes: u64,
    #[serde(default = "min_quality")]
    min_quality: u8,
    /// Unset: the kind's own floor.
    #[serde(default)]
    min_short_side: Option<u32>,
    // The quality gate's requirements; unset: the kind's own.
    #[serde(default)]
    min_eye_distance: Option<u32>,
    #[serde(default)]
    max_roll: Option<u32>,
    #[serde(default)]
    max_yaw: Option<u32>,
    #[serde(default)]
    min_sharpness: Option<u32>,
    #[serde(default)]
    min_face_luma: Option<u32>,
    #[serde(default)]
    max_face_luma: Option<u32>,
    #[serde(default)]
    level_max_roll: Option<u32>,
}

fn jpeg() -> String {
    "jpeg".into()
}

/// The lowest JPEG quality the encoder may use, unless a profile says otherwise.
pub const DEFAULT_MIN_QUALITY: u8 = 60;

fn min_quality() -> u8 {
    DEFAULT_MIN_QUALITY
}

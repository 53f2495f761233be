//! A VziCloud FRS target's section (`[targets.vzicloud]`): its keys, defaults and checks, the id
//! rule its users and groups follow, and its prune policy.

use std::any::Any;
use std::sync::Arc;

use super::VziCloud;
use crate::config::{
    ConfigError, DEFAULT_MIN_QUALITY, DEFAULT_PRUNE_MAX_SHARE, Defaults, DeliveryConfig,
    OutputFormat, Profile, Requirements, SecretSource, Section,
};
use crate::roster::Person;
use crate::targets::registry::{Kind, Settings};
use crate::targets::{Identity, Target};

/// The kind, as the registry lists it.
pub static KIND: VziCloudKind = VziCloudKind;

pub struct VziCloudKind;

/// VziCloud takes at most 1920 wide x 1080 high and 2 MB; 1.5 MB raw keeps the base64 text
/// under 2 MB too.
const DEFAULTS: Defaults = Defaults::cloud(
    "https://api.vzicloud.com",
    Profile {
        format: OutputFormat::Jpeg,
        max_width: 1920,
        max_height: 1080,
        max_bytes: 1_572_864,
        min_quality: DEFAULT_MIN_QUALITY,
        min_short_side: 0,
        requirements: Requirements::DEFAULT,
    },
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionType {
    Update,
    Replace,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "UPDATE",
            Self::Replace => "REPLACE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VziCloudConfig {
    /// The section's name: `targets.<name>.*` in messages.
    pub name: String,
    pub delivery: DeliveryConfig,
    pub app_id: u64,
    pub group_id: String,
    pub accesskey_id: String,
    pub accesskey_secret: SecretSource,
    pub action_type: ActionType,
    /// `sync --prune` refuses to remove more than this share (0 to 1) of the group's users
    /// unless forced.
    pub prune_max_share: f64,
}

/// VziCloud ids (user and group): letters, digits, underscore; 1 to 48 characters.
pub fn is_vzicloud_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 48 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Kind for VziCloudKind {
    fn name(&self) -> &'static str {
        "vzicloud"
    }

    fn title(&self) -> &'static str {
        "VziCloud FRS"
    }

    fn settings(&self, s: &mut Section<'_>) -> Result<Arc<dyn Settings>, ConfigError> {
        let delivery = s.delivery(&DEFAULTS)?;
        let app_id = match s.take::<toml::Value>("app_id")? {
            Some(toml::Value::Integer(n)) if n > 0 => n as u64,
            Some(toml::Value::String(v)) if v.trim().parse::<u64>().is_ok_and(|n| n > 0) => {
                v.trim().parse().unwrap_or_default()
            }
            None if !delivery.enabled => 0,
            _ => {
                return Err(s.err("app_id", "must be the application's numeric id (such as 2)"));
            }
        };
        let group_id = s.take_or("group_id", String::new())?.trim().to_string();
        let accesskey_id = s.take_or("accesskey_id", String::new())?.trim().to_string();
        let accesskey_secret = s.secret("accesskey_secret", "accesskey_secret_env")?;
        let action_type = match s
            .take_or("action_type", "REPLACE".to_string())?
            .to_ascii_uppercase()
            .as_str()
        {
            "UPDATE" => ActionType::Update,
            "REPLACE" => ActionType::Replace,
            other => {
                return Err(s.err(
                    "action_type",
                    format!("`{other}` is not an action: expected UPDATE or REPLACE"),
                ));
            }
        };
        if delivery.enabled && !is_vzicloud_id(&group_id) {
            return Err(s.err("group_id", "must be 1 to 48 letters, digits or underscores"));
        }
        let prune_max_share = s.take_or("prune_max_share", DEFAULT_PRUNE_MAX_SHARE)?;
        if !(0.0..=1.0).contains(&prune_max_share) {
            return Err(s.err(
                "prune_max_share",
                "must be a fraction of the group from 0.0 to 1.0 (such as 0.05 for 5%)",
            ));
        }
        if delivery.enabled && accesskey_id.is_empty() {
            return Err(s.err(
                "accesskey_id",
                "must be the access key id from the VziCloud console",
            ));
        }
        Ok(Arc::new(VziCloudConfig {
            name: s.name().to_string(),
            delivery,
            app_id,
            group_id,
            accesskey_id,
            accesskey_secret,
            action_type,
            prune_max_share,
        }))
    }
}

impl Settings for VziCloudConfig {
    fn delivery(&self) -> &DeliveryConfig {
        &self.delivery
    }

    fn fingerprint(&self) -> String {
        format!(
            "app_id={},group={},action={}",
            self.app_id,
            self.group_id,
            self.action_type.as_str()
        )
    }

    fn prune_max_share(&self) -> f64 {
        self.prune_max_share
    }

    fn has_inline_secret(&self) -> bool {
        matches!(self.accesskey_secret, SecretSource::Inline(_))
    }

    /// The id column, else the employee id; either must be a VziCloud id.
    fn identity(&self, person: &Person, id: Option<&str>) -> Result<Identity, String> {
        let id = id.unwrap_or(&person.id);
        if is_vzicloud_id(id) {
            Ok(Identity::Id(id.to_string()))
        } else {
            Err(format!(
                "VziCloud user id `{id}` is not 1 to 48 letters, digits or underscores: \
                 fix it or map it with roster.columns.{}_user_id",
                self.name
            ))
        }
    }

    fn build(&self, name: &str) -> Result<Arc<dyn Target>, String> {
        Ok(Arc::new(VziCloud::new(name, self)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

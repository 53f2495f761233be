//! A Feishu ACS target's section (`[targets.feishu]`): its keys, defaults and checks, and what
//! the engine asks of its settings (identity by id column or e-mail/mobile, the id cache, the
//! fingerprint).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use super::Feishu;
use crate::config::{
    ConfigError, DEFAULT_MIN_QUALITY, Defaults, DeliveryConfig, IdCache, OutputFormat, Profile,
    Requirements, SecretSource, Section,
};
use crate::roster::Person;
use crate::targets::registry::{Kind, Settings};
use crate::targets::{Contact, Identity, Target};

/// The kind, as the registry lists it.
pub static KIND: FeishuKind = FeishuKind;

pub struct FeishuKind;

/// Feishu does not publish its limits: conservative defaults.
const DEFAULTS: Defaults = Defaults::cloud(
    "https://open.feishu.cn",
    Profile {
        format: OutputFormat::Jpeg,
        max_width: 1080,
        max_height: 1440,
        max_bytes: 1_048_576,
        min_quality: DEFAULT_MIN_QUALITY,
        min_short_side: 0,
        requirements: Requirements::DEFAULT,
    },
);

/// What the Feishu user id column holds, and the kind of id looked up by e-mail or mobile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserIdType {
    OpenId,
    UnionId,
    UserId,
}

impl UserIdType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenId => "open_id",
            Self::UnionId => "union_id",
            Self::UserId => "user_id",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeishuConfig {
    /// The section's name: `targets.<name>.*` in messages.
    pub name: String,
    pub delivery: DeliveryConfig,
    pub app_id: String,
    pub app_secret: SecretSource,
    pub user_id_type: UserIdType,
    /// Ids looked up by e-mail or mobile are asked again after this long.
    pub id_cache_age: Duration,
    /// List the access-control users once per run before uploading.
    pub preflight: bool,
}

impl Kind for FeishuKind {
    fn name(&self) -> &'static str {
        "feishu"
    }

    fn title(&self) -> &'static str {
        "Feishu ACS"
    }

    fn settings(&self, s: &mut Section<'_>) -> Result<Arc<dyn Settings>, ConfigError> {
        let delivery = s.delivery(&DEFAULTS)?;
        let app_id: String = s.take_or("app_id", String::new())?;
        let app_secret = s.secret("app_secret", "app_secret_env")?;
        let user_id_type = match s.take_or("user_id_type", "user_id".to_string())?.as_str() {
            "open_id" => UserIdType::OpenId,
            "union_id" => UserIdType::UnionId,
            "user_id" => UserIdType::UserId,
            other => {
                return Err(s.err(
                    "user_id_type",
                    format!("`{other}` is not an id type: expected open_id, union_id or user_id"),
                ));
            }
        };
        if delivery.enabled && app_id.trim().is_empty() {
            return Err(s.err(
                "app_id",
                "must be the app's id (cli_...) from the Feishu developer console",
            ));
        }
        let id_cache_days: f64 = s.take_or("id_cache_days", 7.0)?;
        if !(0.0..=3650.0).contains(&id_cache_days) {
            return Err(s.err(
                "id_cache_days",
                "must be a number of days from 0 (look up on every run) to 3650",
            ));
        }
        let preflight = s.take_or("preflight", true)?;
        Ok(Arc::new(FeishuConfig {
            name: s.name().to_string(),
            delivery,
            app_id: app_id.trim().to_string(),
            app_secret,
            user_id_type,
            id_cache_age: Duration::from_secs_f64(id_cache_days * 86_400.0),
            preflight,
        }))
    }
}

impl Settings for FeishuConfig {
    fn delivery(&self) -> &DeliveryConfig {
        &self.delivery
    }

    fn fingerprint(&self) -> String {
        format!(
            "app_id={},id_type={}",
            self.app_id,
            self.user_id_type.as_str()
        )
    }

    fn id_cache(&self) -> Option<IdCache> {
        Some(IdCache {
            namespace: format!(
                "{} app_id={} id_type={}",
                self.delivery.base_url,
                self.app_id,
                self.user_id_type.as_str()
            ),
            max_age: self.id_cache_age,
        })
    }

    fn has_inline_secret(&self) -> bool {
        matches!(self.app_secret, SecretSource::Inline(_))
    }

    /// The id column; without it, the e-mail (else the mobile) to look the id up by, when the
    /// roster maps those columns; else the employee id.
    fn identity(&self, person: &Person, id: Option<&str>) -> Result<Identity, String> {
        if let Some(id) = id {
            return Ok(Identity::Id(id.to_string()));
        }
        let contact = person
            .email
            .as_deref()
            .and_then(Contact::email)
            .or_else(|| person.mobile.as_deref().and_then(Contact::mobile));
        Ok(match contact {
            Some(c) => Identity::Contact(c),
            None => Identity::Id(person.id.clone()),
        })
    }

    fn build(&self, name: &str) -> Result<Arc<dyn Target>, String> {
        Ok(Arc::new(Feishu::new(name, self)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: Option<&str>, mobile: Option<&str>) -> Person {
        Person {
            id: "E1".into(),
            email: email.map(Into::into),
            mobile: mobile.map(Into::into),
            ..Person::default()
        }
    }

    #[test]
    fn feishu_ids_come_from_the_column_then_the_contact_then_the_employee_id() {
        let config = crate::config::Config::parse(
            "[roster]\npath = \"r.csv\"\n[targets.feishu]\napp_id = \"cli_1\"\n",
            std::path::Path::new("/etc/facesync/config.toml"),
        )
        .unwrap();
        let feishu = config.settings::<FeishuConfig>("feishu").unwrap();
        let cases = [
            (
                person(Some("a@b.c"), None),
                Some("ou_1"),
                Identity::Id("ou_1".into()),
            ),
            (
                person(Some(" A@B.c "), Some("138")),
                None,
                Identity::Contact(Contact::Email("a@b.c".into())),
            ),
            (
                person(None, Some("+86 138-0000 0001")),
                None,
                Identity::Contact(Contact::Mobile("+8613800000001".into())),
            ),
            (person(Some("  "), None), None, Identity::Id("E1".into())),
            (person(None, None), None, Identity::Id("E1".into())),
        ];
        for (p, id, want) in cases {
            assert_eq!(feishu.identity(&p, id), Ok(want), "{p:?}");
        }
    }
}

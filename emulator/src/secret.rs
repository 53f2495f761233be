//! The credentials the emulator accepts, wrapped so that printing an [`EmulatorConfig`]
//! (`{:?}`) never shows them. The emulator's own type: it shares no code with facesync.
//!
//! [`EmulatorConfig`]: crate::EmulatorConfig

use std::fmt;

/// A secret string; `Debug` and `Display` print a placeholder, [`Secret::expose`] the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for checking a request against.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_printed_shows_no_secret() {
        let config = crate::EmulatorConfig {
            feishu_app_secret: Secret::new("hunter2-feishu"),
            vzicloud_accesskey_secret: Secret::new("hunter2-vzicloud"),
            ..crate::EmulatorConfig::default()
        };
        let printed = format!("{config:?} {}", config.feishu_app_secret);
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(config.feishu_app_secret.expose(), "hunter2-feishu");
    }
}

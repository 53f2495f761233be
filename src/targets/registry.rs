//! The registry: the one list of target kinds this build knows, and the two interfaces a kind
//! provides to the rest of the program.
//!
//! A [`Kind`] reads its `[targets.NAME]` sections into [`Settings`]; the settings answer
//! everything the engine asks about that one target (its delivery limits, what its deliveries
//! depend on, how a roster person maps to its identity, its policies) and build its client.
//! Nothing outside a kind's own module branches on a target's name or kind: adding a kind is
//! its module plus one line in [`KINDS`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{Identity, Target, feishu, hikvision, vzicloud};
use crate::config::{ConfigError, DeliveryConfig, IdCache, Section};
use crate::roster::Person;

/// Every kind of target this build knows.
pub static KINDS: &[&dyn Kind] = &[&feishu::KIND, &vzicloud::KIND, &hikvision::KIND];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

/// The names of every kind, for messages.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name()).collect()
}

/// A kind of target: a vendor's API.
pub trait Kind: Sync {
    /// As written in `kind = "..."`; a section without `kind` is of the kind its name names.
    fn name(&self) -> &'static str;

    /// What it is, for people: "Feishu ACS".
    fn title(&self) -> &'static str;

    /// Reads one section of this kind: the common keys through [`Section::delivery`], its own
    /// keys, then [`Section::finish`].
    fn settings(&self, section: &mut Section<'_>) -> Result<Arc<dyn Settings>, ConfigError>;
}

/// One configured target's validated settings.
pub trait Settings: fmt::Debug + Send + Sync + Any {
    /// The limits and profile every target has.
    fn delivery(&self) -> &DeliveryConfig;

    /// What else decides what this target holds for a person (the app, the group, the id
    /// type), as text: a delivery made under other values is stale and made again.
    fn fingerprint(&self) -> String;

    /// How ids this target looks up by e-mail or mobile are cached; `None` for a target that
    /// takes roster ids only.
    fn id_cache(&self) -> Option<IdCache> {
        None
    }

    /// The largest share of the target's users `sync --prune` removes without `--force`.
    fn prune_max_share(&self) -> f64 {
        crate::config::DEFAULT_PRUNE_MAX_SHARE
    }

    /// True when a secret is written in the config file itself (the file should be private).
    fn has_inline_secret(&self) -> bool;

    /// How this target knows `person`, or why the person's id cannot be sent there. `id` is the
    /// person's cell in this target's id column (`roster.columns.<target>_user_id`), if any.
    fn identity(&self, person: &Person, id: Option<&str>) -> Result<Identity, String>;

    /// The client, named `name`. Secrets are resolved here, at the last moment.
    fn build(&self, name: &str) -> Result<Arc<dyn Target>, String>;

    /// The settings as their own type, for code that belongs with one kind (the emulator).
    fn as_any(&self) -> &dyn Any;
}

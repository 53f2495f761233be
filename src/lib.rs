//! facesync: enroll employees' face photos into access-control and face-recognition clouds in
//! bulk, and keep them in sync night after night.
//!
//! The modules follow the pipeline: [`roster`] reads the HR export, [`matching`] pairs people
//! with photos, [`photo`] decodes, checks and normalizes them, [`plan`] decides per person and
//! target against the [`store`] (with the ids [`identity`] looked up), [`delivery`] owns how a
//! person-target row changes state, [`targets`] speak to each
//! cloud, [`verify`] compares what they hold with the roster, and [`cli`] ties it together.
//! The local stand-in for both clouds is its own crate, `facesync-emulator` (emulator/), which
//! shares no code with this one. See ARCHITECTURE.md for the code map.

pub mod cli;
pub mod config;
pub mod deliver;
pub mod delivery;
pub mod doctor;
pub mod fetch;
pub mod identity;
pub(crate) mod lane;
pub mod logging;
pub mod matching;
pub mod outcome;
pub mod photo;
pub mod plan;
pub mod progress;
pub mod reason;
pub mod report;
pub mod roster;
pub mod secret;
pub mod session;
pub mod store;
pub mod targets;
pub mod verify;

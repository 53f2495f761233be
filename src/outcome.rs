//! How a command's work ended. The library's commands (`sync`, `verify`, `fetch`) answer with an
//! [`Outcome`]; the command line turns it into the process's exit status, and the run history
//! records the same status with each run.

use serde::Serialize;

/// How a command's work ended, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything is delivered, unchanged or in step.
    Clean,
    /// Some people need attention (invalid, failed, not sent), or the run was cut short.
    NeedsAttention,
    /// The work could not be done: a target could not work, a refusal, an error.
    Failed,
}

impl Outcome {
    /// The exit status the command line gives for it (README, "Exit codes"): 0, 2 or 1.
    pub const fn exit_code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::NeedsAttention => 2,
            Self::Failed => 1,
        }
    }
}

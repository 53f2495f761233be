//! A target session: how `sync`, `verify` and `fetch` choose their targets, build their clients
//! and lanes, and wire the shutdown signal, all the same way.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::lane::Lane;
use crate::targets;

/// The targets a command works with.
pub struct Session {
    /// The targets asked for, in the config's order.
    pub names: Vec<String>,
    /// One lane per target whose client could be built, in the config's order.
    pub(crate) lanes: Vec<Arc<Lane>>,
    /// The targets that cannot be used at all this run (a missing secret), with why.
    pub unavailable: Vec<(String, String)>,
    /// Cancelled when the command should take no new work (Ctrl-C, a deadline).
    pub stop: CancellationToken,
    /// The shutdown signal (not a deadline) is what stopped it.
    interrupted: Arc<AtomicBool>,
}

/// The enabled targets, or those of them `wanted` names; an error when that leaves none.
pub fn choose(config: &Config, wanted: &[String]) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = config
        .enabled_targets()
        .into_iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        anyhow::bail!(
            "no target is enabled in {}: set `enabled = true` in a [targets.NAME] section",
            config.file.display()
        );
    }
    Ok(names)
}

impl Session {
    /// Builds the client and lane of each named target. A target that cannot be built is
    /// listed in `unavailable` (and logged) while the others go on.
    pub fn open(config: &Config, names: &[String]) -> Session {
        let mut lanes = Vec::new();
        let mut unavailable = Vec::new();
        for name in names {
            let built = targets::build(config, name).and_then(|target| {
                let delivery = config
                    .delivery(name)
                    .ok_or_else(|| format!("no [targets.{name}] section"))?;
                Ok(Arc::new(Lane::new(target, delivery)))
            });
            match built {
                Ok(lane) => lanes.push(lane),
                Err(message) => {
                    tracing::error!("{name}: cannot start: {message}");
                    unavailable.push((name.clone(), message));
                }
            }
        }
        Session {
            names: names.to_vec(),
            lanes,
            unavailable,
            stop: CancellationToken::new(),
            interrupted: Arc::default(),
        }
    }

    /// A future that cancels [`Session::stop`] when `shutdown` resolves (`what` says what that
    /// means for the command) or `deadline` passes, then never completes: run the command's
    /// work in a `select!` against it, so work in flight finishes after the stop.
    pub fn watch<S: Future<Output = ()> + Send>(
        &self,
        shutdown: S,
        deadline: Option<Duration>,
        what: &'static str,
    ) -> impl Future<Output = std::convert::Infallible> + Send + use<S> {
        let stop = self.stop.clone();
        let interrupted = self.interrupted.clone();
        async move {
            let deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown => {
                    tracing::warn!("interrupted: {what}");
                    interrupted.store(true, Ordering::SeqCst);
                }
                _ = deadline => tracing::warn!("--max-duration reached: taking no new work"),
            }
            stop.cancel();
            std::future::pending().await
        }
    }

    /// True when the shutdown signal stopped the session.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// Runs `work` for every lane at once, each at its own pace and within its own limits, and
/// gives the answers in the lanes' order: how a command fans out over its targets.
pub(crate) async fn fan_out<'a, T, Fut>(
    lanes: &'a [Arc<Lane>],
    work: impl FnMut(&'a Arc<Lane>) -> Fut,
) -> Vec<T>
where
    Fut: Future<Output = T>,
{
    futures::future::join_all(lanes.iter().map(work)).await
}

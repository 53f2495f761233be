//! The knobs that make the emulator misbehave like a real cloud on a bad day: added latency,
//! dropped connections, server errors and rate limits, applied to every cloud request before
//! it is handled, and the bookkeeping of what each request was and how it was refused.
//!
//! Faults are drawn from the seed and the request's ordinal, so the n-th request meets the same
//! fate on every run with the same seed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Notify;

use super::server::MAX_BODY;
use super::state::{Quota, Shared, Windows};
use super::{feishu, hikvision, vzicloud};

/// Every API the emulator answers; the names are the kinds [`super::Stats`] counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Api {
    FeishuToken,
    FeishuFaceUpload,
    FeishuFaceDownload,
    FeishuUserList,
    FeishuUserGet,
    FeishuBatchGetId,
    VziFaceUpdate,
    VziFaceRegister,
    VziFaceList,
    VziFaceDelete,
    VziGroupCreate,
    VziGroupView,
    VziUserList,
    VziUserView,
    VziUserDelete,
    HikDeviceInfo,
    HikSystemTime,
    HikAccessCapabilities,
    HikUserCapabilities,
    HikUserCount,
    HikFaceCapabilities,
    HikFaceCount,
    HikUserRecord,
    HikUserModify,
    HikUserSetup,
    HikUserSearch,
    HikUserDelete,
    HikFaceRecord,
    HikFaceSetup,
    HikFaceModify,
    HikFaceSearch,
    HikFaceDelete,
    HikChallenge,
    HikUnauthorized,
    HikUnknown,
}

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::FeishuToken => "feishu.token",
            Self::FeishuFaceUpload => "feishu.face_upload",
            Self::FeishuFaceDownload => "feishu.face_download",
            Self::FeishuUserList => "feishu.user_list",
            Self::FeishuUserGet => "feishu.user_get",
            Self::FeishuBatchGetId => "feishu.batch_get_id",
            Self::VziFaceUpdate => "vzicloud.face_update",
            Self::VziFaceRegister => "vzicloud.face_register",
            Self::VziFaceList => "vzicloud.face_list",
            Self::VziFaceDelete => "vzicloud.face_delete",
            Self::VziGroupCreate => "vzicloud.group_create",
            Self::VziGroupView => "vzicloud.group_view",
            Self::VziUserList => "vzicloud.user_list",
            Self::VziUserView => "vzicloud.user_view",
            Self::VziUserDelete => "vzicloud.user_delete",
            Self::HikDeviceInfo => "hikvision.device_info",
            Self::HikSystemTime => "hikvision.system_time",
            Self::HikAccessCapabilities => "hikvision.access_capabilities",
            Self::HikUserCapabilities => "hikvision.user_capabilities",
            Self::HikUserCount => "hikvision.user_count",
            Self::HikFaceCapabilities => "hikvision.face_capabilities",
            Self::HikFaceCount => "hikvision.face_count",
            Self::HikUserRecord => "hikvision.user_record",
            Self::HikUserModify => "hikvision.user_modify",
            Self::HikUserSetup => "hikvision.user_setup",
            Self::HikUserSearch => "hikvision.user_search",
            Self::HikUserDelete => "hikvision.user_delete",
            Self::HikFaceRecord => "hikvision.face_record",
            Self::HikFaceSetup => "hikvision.face_setup",
            Self::HikFaceModify => "hikvision.face_modify",
            Self::HikFaceSearch => "hikvision.face_search",
            Self::HikFaceDelete => "hikvision.face_delete",
            Self::HikChallenge => "hikvision.challenge",
            Self::HikUnauthorized => "hikvision.unauthorized",
            Self::HikUnknown => "hikvision.unknown",
        }
    }

    fn is_feishu(self) -> bool {
        self.name().starts_with("feishu.")
    }

    fn is_hikvision(self) -> bool {
        self.name().starts_with("hikvision.")
    }
}

/// Request extension set by the accept loop: notifying it closes the request's connection
/// without an answer.
#[derive(Clone)]
pub(crate) struct ConnKill(pub(crate) Arc<Notify>);

/// Response extension: the vendor code a response refuses the request with.
#[derive(Clone, Copy)]
pub(crate) struct Refusal(pub(crate) i64);

/// The counters behind faults, rate limits and the quota.
#[derive(Default)]
pub(crate) struct Limits {
    ordinal: AtomicU64,
    pub(crate) windows: Windows,
    pub(crate) quota: Quota,
}

/// What happens to one request before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Serve,
    Drop,
    ServerError,
}

impl Limits {
    /// The fate of the next request: one uniform draw from `hash(seed, ordinal)`, split into
    /// `[0, drop_rate)` drop, `[drop_rate, drop_rate + error_rate)` server error, the rest served.
    pub(crate) fn fate(&self, seed: u64, drop_rate: f64, error_rate: f64) -> Fate {
        let n = self.ordinal.fetch_add(1, Ordering::SeqCst);
        let mut hasher = blake3::Hasher::new();
        hasher.update(&seed.to_le_bytes());
        hasher.update(b"fault");
        hasher.update(&n.to_le_bytes());
        let hash = hasher.finalize();
        let word = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
        let uniform = (word >> 11) as f64 / (1u64 << 53) as f64;
        if uniform < drop_rate {
            Fate::Drop
        } else if uniform < drop_rate + error_rate {
            Fate::ServerError
        } else {
            Fate::Serve
        }
    }
}

/// Middleware on every cloud route: counts the request, applies latency, drops and server
/// errors, Feishu's per-API rate limit, then records how the response refused it, if it did.
pub(crate) async fn guard(
    State((shared, api)): State<(Arc<Shared>, Api)>,
    request: Request,
    next: Next,
) -> Response {
    shared.count_request(api);
    let config = &shared.config;
    let fate = shared
        .limits
        .fate(config.seed, config.drop_rate, config.error_rate);
    let request = match apply(&shared, api, fate, request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let response = match (api.is_feishu(), config.feishu_rate_limit) {
        (true, Some(limit)) => {
            match shared
                .limits
                .windows
                .admit(api.name(), limit, config.rate_window)
            {
                Ok(()) => next.run(request).await,
                Err(wait) => {
                    drain(request).await;
                    feishu::rate_limited(limit, wait)
                }
            }
        }
        _ => next.run(request).await,
    };
    record(&shared, api, &response);
    response
}

/// The `latency` knob, then `fate`: `Ok` hands the request on to be served, `Err` is the
/// cloud's server error (the request drained); a dropped connection never returns.
pub(crate) async fn apply(
    shared: &Shared,
    api: Api,
    fate: Fate,
    request: Request,
) -> Result<Request, Response> {
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
        shared.count_fault(|f| f.delayed += 1);
    }
    match fate {
        Fate::Drop => {
            shared.count_fault(|f| f.dropped += 1);
            tracing::debug!("{}: connection dropped (drop_rate)", api.name());
            if let Some(ConnKill(kill)) = request.extensions().get::<ConnKill>() {
                kill.notify_one();
            }
            // The accept loop drops this connection, and this future with it.
            std::future::pending::<()>().await;
            unreachable!("a dropped connection's request is never answered")
        }
        Fate::ServerError => {
            shared.count_fault(|f| f.server_errors += 1);
            tracing::debug!("{}: server error (error_rate)", api.name());
            drain(request).await;
            Err(if api.is_feishu() {
                feishu::server_error()
            } else if api.is_hikvision() {
                hikvision::server_error()
            } else {
                vzicloud::server_error()
            })
        }
        Fate::Serve => Ok(request),
    }
}

/// Counts the refusal a response carries (its [`Refusal`] extension), if it carries one.
pub(crate) fn record(shared: &Shared, api: Api, response: &Response) {
    match response.extensions().get::<Refusal>() {
        Some(Refusal(code)) => {
            shared.count_refusal(api, *code);
            tracing::debug!("{}: refused with {code}", api.name());
        }
        None => tracing::debug!("{}: {}", api.name(), response.status()),
    }
}

/// Reads and discards a request's body before an early answer: closing a connection with
/// unread data resets it, and the client could lose the answer it was about to read.
pub(crate) async fn drain(request: Request) {
    let _ = axum::body::to_bytes(request.into_body(), MAX_BODY).await;
}

/// Whole seconds until `wait` has passed, at least 1: what a `reset` header says.
pub(crate) fn reset_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates_follow_the_rates_and_repeat_under_a_seed() {
        let draw = |seed, drop, error| {
            let limits = Limits::default();
            (0..1000)
                .map(|_| limits.fate(seed, drop, error))
                .collect::<Vec<_>>()
        };
        assert!(draw(1, 0.0, 0.0).iter().all(|f| *f == Fate::Serve));
        assert!(draw(1, 1.0, 0.0).iter().all(|f| *f == Fate::Drop));
        assert!(draw(1, 0.0, 1.0).iter().all(|f| *f == Fate::ServerError));
        let mixed = draw(7, 0.1, 0.2);
        assert_eq!(mixed, draw(7, 0.1, 0.2));
        assert_ne!(mixed, draw(8, 0.1, 0.2));
        let drops = mixed.iter().filter(|f| **f == Fate::Drop).count();
        let errors = mixed.iter().filter(|f| **f == Fate::ServerError).count();
        assert!((50..150).contains(&drops), "{drops} drops in 1000 at 10%");
        assert!(
            (140..260).contains(&errors),
            "{errors} errors in 1000 at 20%"
        );
    }

    #[test]
    fn reset_seconds_round_up_to_at_least_one() {
        for (ms, secs) in [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (59_500, 60)] {
            assert_eq!(
                reset_seconds(std::time::Duration::from_millis(ms)),
                secs,
                "{ms} ms"
            );
        }
    }
}

//! The HTTP server: one router for both clouds, the Hikvision terminals and the inspection
//! path, the check of the raw path (no percent-encoded unreserved characters), and an accept
//! loop that can close a connection without answering (the `drop_rate` knob), which a plain
//! `axum::serve` cannot.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::STATS_PATH;
use super::faults::ConnKill;
use super::state::Shared;
use super::{feishu, hikvision, vzicloud};

/// The largest request body read (VziCloud's 2 MB image is about 2.7 MB of base64).
pub(crate) const MAX_BODY: usize = 32 * 1024 * 1024;

/// Both clouds, the terminals under `/hikvision/<terminal>`, the stats path, and the answers
/// to paths no one knows.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(feishu::routes(&shared))
        .merge(vzicloud::routes(&shared))
        .route(STATS_PATH, get(stats))
        .route("/hikvision/{terminal}/{*rest}", any(hikvision::handle))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), log_id))
        .layer(middleware::from_fn_with_state(shared.clone(), date))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(unreserved_as_is))
        .with_state(shared)
}

/// Refuses a path that percent-encodes an unreserved character (`%5F` for `_`). RFC 3986
/// allows it, but a gateway that does not decode it before routing finds no such user, and
/// every Feishu open_id holds an underscore; the official SDKs send these characters as they
/// are. It looks at the raw URI: axum's path parameters are already decoded.
async fn unreserved_as_is(request: Request, next: Next) -> Response {
    let Some((escape, c)) = encoded_unreserved(request.uri().path()) else {
        return next.run(request).await;
    };
    let message = format!(
        "emulator: the path `{}` encodes an unreserved character: `{escape}` is `{c}`, which \
         RFC 3986 says to send as it is (a real gateway may not decode it and find no such user)",
        request.uri().path()
    );
    tracing::warn!("{message}");
    super::faults::drain(request).await;
    (StatusCode::BAD_REQUEST, message).into_response()
}

/// The first `%XX` in `path` that encodes a letter, a digit, `-`, `.`, `_` or `~`, with the
/// character it encodes.
pub(crate) fn encoded_unreserved(path: &str) -> Option<(&str, char)> {
    path.match_indices('%').find_map(|(i, _)| {
        let escape = path.get(i..i + 3)?;
        let hex = &escape[1..];
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let b = u8::from_str_radix(hex, 16).ok()?;
        (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            .then_some((escape, char::from(b)))
    })
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats()).into_response()
}

/// A path no cloud serves: VziCloud's 1000 under `/v2`, the gateway's plain 404 elsewhere.
async fn not_found(request: Request) -> Response {
    let vzicloud = request.uri().path().starts_with("/v2/");
    super::faults::drain(request).await;
    if vzicloud {
        vzicloud::url_not_found()
    } else {
        (StatusCode::NOT_FOUND, "404 page not found").into_response()
    }
}

/// Feishu answers every request, even a refused or unknown one, with an `X-Tt-Logid` header.
async fn log_id(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let feishu = request.uri().path().starts_with("/open-apis/");
    let mut response = next.run(request).await;
    if feishu {
        let id = format!("emu{}", shared.next_id("logid").to_uppercase());
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-tt-logid", v);
        }
    }
    response
}

/// Every answer carries a `Date` header from the emulator's clock (the `clock_offset` knob), as
/// the real servers send theirs; hyper adds none when one is there.
async fn date(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(shared.now())) {
        response.headers_mut().insert(axum::http::header::DATE, v);
    }
    response
}

/// Serves `app` on `listener` until `shutdown` completes, then closes every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, app.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("emulator: cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// One connection. A request may ask (through [`ConnKill`]) for the connection to be closed
/// without an answer: the connection future is then dropped, which closes the socket.
async fn connection(stream: TcpStream, app: Router) {
    let kill = Arc::new(Notify::new());
    let for_requests = kill.clone();
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request
            .extensions_mut()
            .insert(ConnKill(for_requests.clone()));
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, request).await }
    });
    // Title-case header names, as the real services' Go servers send them: the Python SDK
    // looks up `Content-Disposition` case-sensitively.
    let conn = hyper::server::conn::http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        () = kill.notified() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_escapes_of_unreserved_characters_are_found() {
        let check = |path: &str, want: Option<(&str, char)>| {
            assert_eq!(encoded_unreserved(path), want, "{path}");
        };
        check("/open-apis/acs/v1/users/ou_7dab/face", None);
        check("/open-apis/acs/v1/users/ou%5F7dab/face", Some(("%5F", '_')));
        check("/users/ou%5f7dab", Some(("%5f", '_')));
        check("/users/a%2Eb", Some(("%2E", '.')));
        check("/users/a%7Eb", Some(("%7E", '~')));
        check("/users/a%2Db", Some(("%2D", '-')));
        check("/users/%45%31", Some(("%45", 'E')));
        check("/users/a%20b%2Fc%E5%BC%A0%25", None);
        check("/users/100%", None);
        check("/users/1%2", None);
        check("/users/%+5F", None);
        check("/users/%zz%41", Some(("%41", 'A')));
    }
}

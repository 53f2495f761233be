//! The HTTP server: one router for both clouds and the inspection path, and an accept loop
//! that can close a connection without answering (the `drop_rate` knob), which a plain
//! `axum::serve` cannot.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::STATS_PATH;
use super::faults::ConnKill;
use super::state::Shared;
use super::{feishu, vzicloud};

/// The largest request body read (VziCloud's 2 MB image is about 2.7 MB of base64).
pub(crate) const MAX_BODY: usize = 32 * 1024 * 1024;

/// Both clouds, the stats path, and the answers to paths neither knows.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(feishu::routes(&shared))
        .merge(vzicloud::routes(&shared))
        .route(STATS_PATH, get(stats))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), log_id))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
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

//! The HTTP API (axum), DESIGN.md §6: one router per resource ([`chains`],
//! [`batches`], [`jobs`], [`epochs`], [`ops`]) merged here, the layers in
//! [`middleware`], and one error type, [`AppError`], mapped to its status and
//! JSON body in one place.

pub mod batches;
pub mod chains;
pub mod epochs;
mod error;
pub mod jobs;
mod json;
mod middleware;
pub mod ops;

use json::json_text;

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Request},
    http::{header, HeaderMap, StatusCode},
    middleware::from_fn,
    middleware::from_fn_with_state,
    response::{sse::Event, IntoResponse},
    Router,
};
use futures::Stream;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
    LatencyUnit,
};

pub use error::{AppError, ErrorBody, Rejection};
pub use middleware::{hash_secret, parse_key};

use crate::service::Service;
use middleware::Limiter;

/// The longest request target (path and query) the API reads: longer ones
/// are answered 414 (JSON). (hyper answers targets over 64 KiB with its own
/// empty 414 before any layer sees them.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Service core.
    pub svc: Arc<Service>,
    /// Prometheus exporter.
    pub metrics: PrometheusHandle,
    limiter: Arc<Limiter>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The router with every layer.
pub fn router(svc: Arc<Service>, metrics: PrometheusHandle) -> Router {
    let cfg = svc.config.clone();
    let limiter = Arc::new(Limiter::new(cfg.rate_limit, cfg.rate_burst));
    let state = AppState { svc, metrics, limiter };
    let timed = Router::new()
        .merge(chains::routes())
        .merge(batches::routes())
        .merge(jobs::routes())
        .merge(epochs::routes())
        .merge(ops::routes())
        .layer(from_fn_with_state(cfg.request_timeout, middleware::timeout));
    let authed = timed
        .merge(jobs::streams())
        .merge(epochs::streams())
        .layer(from_fn_with_state(state.clone(), middleware::auth))
        .layer(axum::extract::DefaultBodyLimit::max(cfg.max_body_bytes));
    Router::new()
        .merge(ops::public())
        .merge(authed)
        .fallback(|| async { AppError::not_found("route") })
        .layer(from_fn(middleware::json_errors))
        .layer(from_fn(middleware::count_requests))
        .layer(CatchPanicLayer::custom(|_| AppError::Internal.into_response()))
        // one log line per request, when it is answered: method, path,
        // request id and API key id (the span's fields), status, latency
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id,
                        key = tracing::field::Empty)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The operations port of a `statesync worker` process: `/healthz`,
/// `/readyz`, `/metrics` and `/v1/devices`, without API keys (it serves no
/// API: bind it where only the cluster's scrapers and probes reach it).
pub fn worker_router(svc: Arc<Service>, metrics: PrometheusHandle) -> Router {
    let limiter = Arc::new(Limiter::new(svc.config.rate_limit, svc.config.rate_burst));
    let state = AppState { svc, metrics, limiter };
    Router::new()
        .merge(ops::public())
        .merge(ops::routes())
        .fallback(|| async { AppError::not_found("route") })
        .layer(from_fn(middleware::json_errors))
        .layer(CatchPanicLayer::custom(|_| AppError::Internal.into_response()))
        .with_state(state)
}

pub(super) fn wants_binary(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/octet-stream"))
}

pub(super) fn is_binary_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"))
}

/// A JSON body as text: every route refuses a body that is not UTF-8 alike.
/// A query value where an empty one (`?limit=`) means absent, as if it were
/// not given; others parse as `T`.
pub(super) fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let given = <Option<String> as serde::Deserialize>::deserialize(d)?;
    match given.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

pub(super) fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, AppError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::bad_request(format!("unreadable body: {e}"))
        }
    })
}

/// Server-sent events of a record that a worker updates: the first state at
/// once, then every change (polled from the durable store every 250 ms, so
/// events survive restarts and see workers in other processes) until a
/// terminal state. `fingerprint` says what counts as a change; `event` names
/// the event and says whether it is the last. When the service shuts down
/// (`stop`), the stream ends with a `shutdown` event carrying the record's
/// latest state, so no client holds the process open or waits unaware.
pub(super) fn poll_events<T, F, Fut>(
    first: T,
    fetch: F,
    fingerprint: fn(&T) -> String,
    event: fn(&T) -> (&'static str, bool),
    stop: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    T: Serialize + Send + 'static,
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<T>> + Send,
{
    let json = |name: &str, item: &T| Event::default().event(name).json_data(item).expect("records serialize");
    futures::stream::unfold((None::<String>, Some(first), false, fetch), move |(last, pending, finished, fetch)| {
        let stop = stop.clone();
        async move {
            if finished {
                return None;
            }
            let mut pending = pending;
            loop {
                let item = match pending.take() {
                    Some(x) => x,
                    None => {
                        tokio::select! {
                            _ = stop.cancelled() => {
                                let latest = fetch().await?;
                                return Some((Ok(json("shutdown", &latest)), (last, None, true, fetch)));
                            }
                            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        }
                        fetch().await?
                    }
                };
                let print = fingerprint(&item);
                if last.as_ref() != Some(&print) {
                    let (name, done) = event(&item);
                    return Some((Ok(json(name, &item)), (Some(print), None, done, fetch)));
                }
            }
        }
    })
}

//! The HTTP API (axum), DESIGN.md §6: one router per resource ([`chains`],
//! [`batches`], [`jobs`], [`epochs`], [`ops`]) merged here, the layers in
//! [`middleware`], and one error type, [`AppError`], mapped to its status and
//! JSON body in one place.

pub mod batches;
pub mod chains;
pub mod epochs;
mod error;
pub mod jobs;
mod middleware;
pub mod ops;

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
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

pub use error::AppError;
pub use middleware::{hash_secret, parse_key};

use crate::service::Service;
use middleware::Limiter;

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
        .layer(from_fn(middleware::count_requests))
        .layer(CatchPanicLayer::custom(|_| AppError::Internal.into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
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
/// the event and says whether it is the last.
pub(super) fn poll_events<T, F, Fut>(
    first: T,
    fetch: F,
    fingerprint: fn(&T) -> String,
    event: fn(&T) -> (&'static str, bool),
) -> impl Stream<Item = Result<Event, Infallible>>
where
    T: Serialize + Send + 'static,
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<T>> + Send,
{
    futures::stream::unfold(
        (None::<String>, Some(first), false, fetch),
        move |(last, pending, finished, fetch)| async move {
            if finished {
                return None;
            }
            let mut pending = pending;
            loop {
                let item = match pending.take() {
                    Some(x) => x,
                    None => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        fetch().await?
                    }
                };
                let print = fingerprint(&item);
                if last.as_ref() != Some(&print) {
                    let (name, done) = event(&item);
                    let ev = Event::default().event(name).json_data(&item).expect("records serialize");
                    return Some((Ok(ev), (Some(print), None, done, fetch)));
                }
            }
        },
    )
}

//! Operations: health, readiness, metrics, the OpenAPI document (no key
//! needed) and the proving devices.

use std::sync::atomic::Ordering;

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};

use super::AppState;

/// The authenticated routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/devices", get(devices))
}

/// The routes open to anyone (probes, scrapers, API clients' generators).
pub(super) fn public() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/openapi.json", get(openapi))
}

#[utoipa::path(get, path = "/v1/devices", responses((status = 200, description = "proving devices")))]
pub async fn devices(State(st): State<AppState>) -> Json<crate::devices::DeviceReport> {
    Json(st.svc.device_report())
}

async fn readyz(State(st): State<AppState>) -> Response {
    let store_ok = st.svc.store.counts().await.is_ok();
    if st.svc.ready.load(Ordering::SeqCst) && store_ok {
        Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "not_ready"}))).into_response()
    }
}

async fn metrics_text(State(st): State<AppState>) -> Response {
    if let Ok(counts) = st.svc.store.counts().await {
        for (state, n) in counts {
            metrics::gauge!("statesync_jobs", "state" => state.as_str()).set(n as f64);
        }
    }
    st.svc.devices.record_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render()).into_response()
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::spec())
}

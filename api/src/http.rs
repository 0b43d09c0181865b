//! The HTTP API (axum), DESIGN.md §6. Errors are JSON `{type, message}` with
//! the right status, mapped once in [`AppError`]; store and driver details are
//! logged, never returned.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{atomic::Ordering, Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Json, Router,
};
use futures::Stream;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use statesync_circuits::{config::ChainConfig, error::BatchError, transition::Batch};
use statesync_prover::proof::{ProofFile, TranscriptKind, PROOF_VERSION};
use subtle::ConstantTimeEq;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    service::{Service, SubmitError},
    store::{Job, JobFilter, JobState, StoreError},
};

/// An API error.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    extra: Option<serde_json::Value>,
}

impl AppError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AppError { status, kind, message: message.into(), extra: None }
    }
    fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = match self.extra {
            Some(v) => v,
            None => serde_json::json!({ "type": self.kind, "message": self.message }),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        tracing::error!("store: {e}");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }
}

impl From<SubmitError> for AppError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::UnknownChain(c) => AppError::not_found(&format!("chain {c}")),
            SubmitError::Rejected(be) => rejected(be),
            SubmitError::Gap { expected, got } => {
                AppError::new(StatusCode::CONFLICT, "sequence_gap", format!("expected seq {expected}, got {got}"))
            }
            SubmitError::Conflict(m) => AppError::new(StatusCode::CONFLICT, "conflict", m),
            SubmitError::Store(s) => s.into(),
        }
    }
}

/// 422 with `{type, index, rule, message}`.
fn rejected(be: BatchError) -> AppError {
    let extra = serde_json::to_value(&be).expect("batch errors serialize");
    AppError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        kind: "rejected",
        message: be.message.clone(),
        extra: Some(extra),
    }
}

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
    let api = Router::new()
        .route("/v1/chains", post(create_chain))
        .route("/v1/chains/{chain}", get(get_chain))
        .route("/v1/chains/{chain}/batches", post(submit))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job).delete(cancel_job))
        .route("/v1/jobs/{id}/proof", get(get_proof))
        .route("/v1/devices", get(devices))
        .layer(middleware::from_fn_with_state(cfg.request_timeout, timeout));
    let events = Router::new().route("/v1/jobs/{id}/events", get(job_events));
    let authed = api
        .merge(events)
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(axum::extract::DefaultBodyLimit::max(cfg.max_body_bytes));
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/openapi.json", get(openapi))
        .merge(authed)
        .fallback(|| async { AppError::not_found("route") })
        .layer(middleware::from_fn(count_requests))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
                .into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Answers 408 (JSON) when a request takes longer than the configured timeout.
async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => AppError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the request took too long").into_response(),
    }
}

async fn count_requests(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    let resp = next.run(req).await;
    let route = path.unwrap_or_else(|| "unmatched".into());
    metrics::counter!("statesync_http_requests_total", "method" => method, "route" => route, "status" => resp.status().as_u16().to_string())
        .increment(1);
    resp
}

/// Token buckets per API key.
#[derive(Debug)]
struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    fn new(rate: u32, burst: u32) -> Self {
        Limiter { rate: rate as f64, burst: burst as f64, buckets: Mutex::new(HashMap::new()) }
    }
    fn allow(&self, key: &str) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = b.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// API keys look like `ssk_<id>_<secret>`; only SHA-256(secret) is stored.
pub fn parse_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("ssk_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// SHA-256 of a key's secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Result<Response, AppError> {
    let who = if st.svc.config.open {
        "open".to_string()
    } else {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| req.headers().get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(presented) = presented else {
            return Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an API key is required (Authorization: Bearer ssk_...)",
            ));
        };
        let forbidden = || AppError::new(StatusCode::FORBIDDEN, "forbidden", "invalid or revoked API key");
        let (id, secret) = parse_key(presented.trim()).ok_or_else(forbidden)?;
        let key = st.svc.store.key(id).await?.ok_or_else(forbidden)?;
        let matches: bool = hash_secret(secret).ct_eq(&key.hash).into();
        if !matches || key.revoked_at.is_some() {
            return Err(forbidden());
        }
        key.id
    };
    if !st.limiter.allow(&who) {
        return Err(AppError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; retry later"));
    }
    Ok(next.run(req).await)
}

fn wants_binary(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/octet-stream"))
}

fn is_binary_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"))
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, AppError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body exceeds the size limit")
        } else {
            AppError::bad_request(format!("unreadable body: {e}"))
        }
    })
}

/// `201` body of `POST /v1/chains`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainCreated {
    /// Chain id.
    pub chain_id: String,
    /// Genesis state root.
    pub state_root: String,
}

#[utoipa::path(post, path = "/v1/chains", request_body(content = String, description = "chain config and genesis (CHAIN.json)", content_type = "application/json"),
    responses((status = 201, body = ChainCreated), (status = 400, description = "malformed JSON"), (status = 409, description = "chain exists"), (status = 422, description = "invalid config")))]
pub(crate) async fn create_chain(
    State(st): State<AppState>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let b = body(b)?;
    let text = std::str::from_utf8(&b).map_err(|_| AppError::bad_request("the body is not UTF-8"))?;
    let cfg = ChainConfig::from_json(text).map_err(|e| match e {
        statesync_circuits::error::ConfigError::Json(m) => AppError::bad_request(m),
        other => AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_config", other.to_string()),
    })?;
    let rec = st.svc.create_chain(&cfg).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            AppError::new(StatusCode::CONFLICT, "conflict", format!("chain {} already exists", cfg.chain_id))
        }
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(ChainCreated { chain_id: rec.id, state_root: rec.state_root })).into_response())
}

#[utoipa::path(get, path = "/v1/chains/{chain}", params(("chain" = String, Path)), responses((status = 200, description = "chain config, state root and next seq"), (status = 404)))]
pub(crate) async fn get_chain(State(st): State<AppState>, Path(chain): Path<String>) -> Result<Response, AppError> {
    let rec = st.svc.store.chain(&chain).await?.ok_or_else(|| AppError::not_found(&format!("chain {chain}")))?;
    Ok(Json(rec).into_response())
}

/// `202` body of a batch submission.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmitResponse {
    /// Job id.
    pub job_id: String,
    /// Sequence number.
    pub seq: u64,
    /// State root before.
    pub old_root: String,
    /// State root after.
    pub new_root: String,
}

#[utoipa::path(post, path = "/v1/chains/{chain}/batches", params(("chain" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = String, description = "BATCH.json, or its bincode with Content-Type application/octet-stream"),
    responses((status = 202, body = SubmitResponse), (status = 400, description = "malformed batch"), (status = 404, description = "unknown chain"),
        (status = 409, description = "sequence gap or conflict"), (status = 413), (status = 422, description = "a rule was broken: {type, index, rule, message}")))]
pub(crate) async fn submit(
    State(st): State<AppState>,
    Path(chain): Path<String>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let b = body(b)?;
    let batch =
        if is_binary_body(&headers) { Batch::from_bincode(&b) } else { Batch::from_json(&String::from_utf8_lossy(&b)) }
            .map_err(|e| AppError::bad_request(e.message))?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 200) {
        return Err(AppError::bad_request("Idempotency-Key must be 1..=200 characters"));
    }
    let t = Instant::now();
    let accepted = st.svc.submit(&chain, batch, key).await?;
    metrics::histogram!("statesync_accept_seconds").record(t.elapsed().as_secs_f64());
    let job = accepted.job;
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(SubmitResponse { job_id: job.id, seq: job.seq, old_root: job.old_root, new_root: job.new_root }),
    )
        .into_response();
    if accepted.replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path)), responses((status = 200, body = Job), (status = 404)))]
pub(crate) async fn get_job(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, AppError> {
    Ok(Json(st.svc.store.job(&id).await?.ok_or_else(|| AppError::not_found("job"))?))
}

#[utoipa::path(delete, path = "/v1/jobs/{id}", params(("id" = String, Path)), responses((status = 200, body = Job), (status = 404), (status = 409, description = "already finished")))]
pub(crate) async fn cancel_job(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, AppError> {
    let job = st.svc.store.cancel(&id).await?.ok_or_else(|| AppError::not_found("job"))?;
    if job.state != JobState::Cancelled {
        return Err(AppError::new(StatusCode::CONFLICT, "conflict", format!("job is already {}", job.state.as_str())));
    }
    Ok(Json(job))
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    chain: Option<String>,
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// A page of jobs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Jobs in creation order.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/jobs", params(("chain" = Option<String>, Query), ("state" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = JobPage), (status = 400)))]
pub(crate) async fn list_jobs(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, AppError> {
    let Query(q) = q.map_err(|e| AppError::bad_request(e.body_text()))?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| AppError::bad_request(format!("unknown state {s:?}")))?),
    };
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| AppError::bad_request("invalid cursor"))?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let jobs = st.svc.store.list_jobs(&JobFilter { chain: q.chain, state, after, limit }).await?;
    let next_cursor = (jobs.len() == limit as usize).then(|| jobs.last().map(|j| j.cursor.to_string())).flatten();
    Ok(Json(JobPage { jobs, next_cursor }))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/proof", params(("id" = String, Path)),
    responses((status = 200, description = "proof file: proof, public inputs, verifying-key hash (bincode with Accept application/octet-stream)"), (status = 404), (status = 409, description = "not proven yet")))]
pub(crate) async fn get_proof(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let job = st.svc.store.job(&id).await?.ok_or_else(|| AppError::not_found("job"))?;
    if job.state != JobState::Done {
        return Err(AppError::new(StatusCode::CONFLICT, "not_ready", format!("the job is {}", job.state.as_str())));
    }
    let proof = st.svc.store.proof(&id).await?.ok_or_else(|| AppError::not_found("proof"))?;
    let chain = st.svc.store.chain(&job.chain).await?.ok_or_else(|| AppError::not_found("chain"))?;
    let layout = st.svc.keys.layout(&chain.config.shape).map_err(|e| {
        tracing::error!("layout: {e}");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    })?;
    let file = ProofFile {
        version: PROOF_VERSION,
        chain_id: job.chain.clone(),
        seq: job.seq,
        shape: chain.config.shape.clone(),
        k: layout.k as u32,
        transcript: if proof.transcript == "poseidon" { TranscriptKind::Poseidon } else { TranscriptKind::Blake2b },
        public_inputs: proof.public,
        vk_hash: proof.vk_hash,
        proof: hex::encode(&proof.proof),
    };
    if wants_binary(&headers) {
        let bytes = bincode::serialize(&file).expect("proof files serialize");
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response());
    }
    Ok(Json(file).into_response())
}

#[utoipa::path(get, path = "/v1/jobs/{id}/events", params(("id" = String, Path)), responses((status = 200, description = "text/event-stream of job updates until the job finishes")))]
pub(crate) async fn job_events(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let first = st.svc.store.job(&id).await?.ok_or_else(|| AppError::not_found("job"))?;
    let store = st.svc.store.clone();
    // (last sent, done) — polls the durable store, so events survive restarts
    // and reflect workers in other processes too.
    let stream = futures::stream::unfold((None::<Job>, Some(first), false), move |(last, pending, finished)| {
        let store = store.clone();
        async move {
            if finished {
                return None;
            }
            let mut pending = pending;
            loop {
                let job = match pending.take() {
                    Some(j) => j,
                    None => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        match store.job(&last.as_ref()?.id).await {
                            Ok(Some(j)) => j,
                            _ => return None,
                        }
                    }
                };
                let changed = last.as_ref().is_none_or(|l| {
                    (l.state, &l.stage, l.attempts, l.progress.to_bits())
                        != (job.state, &job.stage, job.attempts, job.progress.to_bits())
                });
                if changed {
                    let ev = Event::default().event(job.state.as_str()).json_data(&job).expect("jobs serialize");
                    let done = job.state.is_terminal();
                    return Some((Ok(ev), (Some(job), None, done)));
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(get, path = "/v1/devices", responses((status = 200, description = "proving devices")))]
pub(crate) async fn devices(State(st): State<AppState>) -> Json<crate::devices::DeviceReport> {
    Json(st.svc.devices.report())
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

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
        .route("/v1/chains/{chain}/epochs", post(request_epoch).get(list_epochs))
        .route("/v1/chains/{chain}/epochs/{id}", get(get_epoch))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job).delete(cancel_job))
        .route("/v1/jobs/{id}/proof", get(get_proof))
        .route("/v1/devices", get(devices))
        .layer(middleware::from_fn_with_state(cfg.request_timeout, timeout));
    let events = Router::new()
        .route("/v1/jobs/{id}/events", get(job_events))
        .route("/v1/chains/{chain}/epochs/{id}/events", get(epoch_events));
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
    let stream = poll_events(
        first,
        move || {
            let (store, id) = (store.clone(), id.clone());
            async move { store.job(&id).await.ok().flatten() }
        },
        |j: &Job| format!("{}/{}/{}/{}", j.state.as_str(), j.stage, j.attempts, j.progress),
        |j: &Job| (j.state.as_str(), j.state.is_terminal()),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Server-sent events of a record that a worker updates: the first state at
/// once, then every change (polled from the durable store every 250 ms, so
/// events survive restarts and see workers in other processes) until a
/// terminal state. `fingerprint` says what counts as a change; `event` names
/// the event and says whether it is the last.
fn poll_events<T, F, Fut>(
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

/// Body of `POST /v1/chains/{chain}/epochs`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EpochRequest {
    /// First batch (inclusive).
    pub first_seq: u64,
    /// Last batch (inclusive); the range spans exactly the server's epoch size.
    pub last_seq: u64,
}

/// An epoch as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EpochView {
    /// Epoch id.
    pub id: String,
    /// Chain id.
    pub chain: String,
    /// First batch (inclusive).
    pub first_seq: u64,
    /// Last batch (inclusive).
    pub last_seq: u64,
    /// State.
    pub state: crate::store::EpochState,
    /// Attempts so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Last error.
    pub error: Option<String>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Finished (unix ms).
    pub finished_at: Option<i64>,
    /// Aggregation time.
    pub proving_ms: Option<u64>,
    /// Hex SHA-256 of the chain's epoch verifying key (done only).
    pub vk_hash: Option<String>,
    /// Public inputs after the accumulator: first old root, last new root,
    /// commitment hash, totals, chain tag (done only).
    #[schema(value_type = Option<Object>)]
    pub public_inputs: Option<statesync_prover::epoch::EpochPublic>,
    /// All instances, accumulator first, 0x-hex (done only).
    pub instances: Option<Vec<String>>,
    /// The proof (EVM transcript), hex (done only).
    pub proof: Option<String>,
    /// Calldata for the chain's verifier contract (`statesync evm-verifier`):
    /// instances then proof, hex (done only).
    pub calldata: Option<String>,
}

impl EpochView {
    fn from_record(e: crate::store::EpochRecord) -> Self {
        let fields: Option<Vec<_>> = e
            .instances
            .as_ref()
            .and_then(|v| v.iter().map(|h| statesync_circuits::witness::fr_hex::from_hex(h)).collect());
        let public_inputs = fields
            .as_ref()
            .filter(|f| f.len() == statesync_prover::epoch::EPOCH_INSTANCES)
            .map(|f| statesync_prover::epoch::EpochPublic::from_fields(&f[statesync_prover::epoch::ACCUMULATOR_LEN..]));
        let calldata = match (&fields, &e.proof) {
            (Some(f), Some(p)) => Some(hex::encode(statesync_prover::evm::calldata(f, p))),
            _ => None,
        };
        EpochView {
            id: e.id,
            chain: e.chain,
            first_seq: e.first_seq,
            last_seq: e.last_seq,
            state: e.state,
            attempts: e.attempts,
            max_attempts: e.max_attempts,
            error: e.error,
            created_at: e.created_at,
            finished_at: e.finished_at,
            proving_ms: e.proving_ms,
            vk_hash: e.vk_hash,
            public_inputs,
            instances: e.instances,
            proof: e.proof.map(hex::encode),
            calldata,
        }
    }
}

impl From<crate::service::EpochRequestError> for AppError {
    fn from(e: crate::service::EpochRequestError) -> Self {
        use crate::service::EpochRequestError as E;
        match e {
            E::UnknownChain(c) => AppError::not_found(&format!("chain {c}")),
            E::Invalid(m) => AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_epoch", m),
            E::Store(s) => s.into(),
        }
    }
}

#[utoipa::path(post, path = "/v1/chains/{chain}/epochs", params(("chain" = String, Path)), request_body = EpochRequest,
    responses((status = 201, body = EpochView, description = "queued"), (status = 200, body = EpochView, description = "the existing epoch of this range"),
        (status = 400), (status = 404, description = "unknown chain"), (status = 422, description = "a range the epoch circuit cannot take")))]
pub(crate) async fn request_epoch(
    State(st): State<AppState>,
    Path(chain): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let b = body(b)?;
    let req: EpochRequest = serde_json::from_slice(&b).map_err(|e| AppError::bad_request(e.to_string()))?;
    let (epoch, created) = st.svc.request_epoch(&chain, req.first_seq, req.last_seq).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(EpochView::from_record(epoch))).into_response())
}

/// Query of `GET /v1/chains/{chain}/epochs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EpochQuery {
    /// Only epochs starting at or after this seq.
    #[serde(default)]
    pub from_seq: u64,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/chains/{chain}/epochs", params(("chain" = String, Path), EpochQuery),
    responses((status = 200, body = Vec<EpochView>), (status = 404)))]
pub(crate) async fn list_epochs(
    State(st): State<AppState>,
    Path(chain): Path<String>,
    q: Result<Query<EpochQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<EpochView>>, AppError> {
    let Query(q) = q.map_err(|e| AppError::bad_request(e.body_text()))?;
    st.svc.store.chain(&chain).await?.ok_or_else(|| AppError::not_found(&format!("chain {chain}")))?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(AppError::bad_request("limit must be 1..=100"));
    }
    let epochs = st.svc.store.list_epochs(&chain, q.from_seq, limit).await?;
    Ok(Json(epochs.into_iter().map(EpochView::from_record).collect()))
}

async fn chain_epoch(st: &AppState, chain: &str, id: &str) -> Result<crate::store::EpochRecord, AppError> {
    st.svc.store.epoch(id).await?.filter(|e| e.chain == chain).ok_or_else(|| AppError::not_found("epoch"))
}

#[utoipa::path(get, path = "/v1/chains/{chain}/epochs/{id}", params(("chain" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = EpochView), (status = 404)))]
pub(crate) async fn get_epoch(
    State(st): State<AppState>,
    Path((chain, id)): Path<(String, String)>,
) -> Result<Json<EpochView>, AppError> {
    Ok(Json(EpochView::from_record(chain_epoch(&st, &chain, &id).await?)))
}

#[utoipa::path(get, path = "/v1/chains/{chain}/epochs/{id}/events", params(("chain" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of epoch updates until it is done or failed")))]
pub(crate) async fn epoch_events(
    State(st): State<AppState>,
    Path((chain, id)): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let first = EpochView::from_record(chain_epoch(&st, &chain, &id).await?);
    let store = st.svc.store.clone();
    let stream = poll_events(
        first,
        move || {
            let (store, id) = (store.clone(), id.clone());
            async move { store.epoch(&id).await.ok().flatten().map(EpochView::from_record) }
        },
        |e: &EpochView| format!("{}/{}", e.state.as_str(), e.attempts),
        |e: &EpochView| (e.state.as_str(), e.state.is_terminal()),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(get, path = "/v1/devices", responses((status = 200, description = "proving devices")))]
pub(crate) async fn devices(State(st): State<AppState>) -> Json<crate::devices::DeviceReport> {
    Json(st.svc.devices.report(st.svc.hal.as_ref()))
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

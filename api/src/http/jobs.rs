//! Jobs: list, get, cancel, the proof file, and the event stream.

use std::convert::Infallible;

use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Json, Router,
};
use futures::Stream;
use serde::{Deserialize, Serialize};

use super::{poll_events, wants_binary, AppError, AppState};
use crate::store::{Job, JobFilter, JobState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job).delete(cancel_job))
        .route("/v1/jobs/{id}/retry", post(retry_job))
        .route("/v1/jobs/{id}/proof", get(get_proof))
}

/// The event stream (no request timeout).
pub(super) fn streams() -> Router<AppState> {
    Router::new().route("/v1/jobs/{id}/events", get(job_events))
}

#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path)), responses((status = 200, body = Job), (status = 404)))]
pub async fn get_job(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, AppError> {
    Ok(Json(st.svc.store.job(&id).await?.ok_or_else(|| AppError::not_found("job"))?))
}

/// Cancels an unfinished job: a running proof stops at its next prover
/// operation and the worker moves on. The batch stays accepted (a chain's
/// state is never rolled back); `POST /v1/jobs/{id}/retry` proves it later.
#[utoipa::path(delete, path = "/v1/jobs/{id}", params(("id" = String, Path)), responses((status = 200, body = Job), (status = 404), (status = 409, description = "already finished")))]
pub async fn cancel_job(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, AppError> {
    let job = st.svc.cancel(&id).await?.ok_or_else(|| AppError::not_found("job"))?;
    if job.state != JobState::Cancelled {
        return Err(AppError::Conflict(format!("job is already {}", job.state.as_str())));
    }
    Ok(Json(job))
}

/// Queues a failed or cancelled job again with a fresh attempt budget: how
/// a hole in a chain's proofs is healed (epochs over it wait for it).
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", params(("id" = String, Path)), responses((status = 200, body = Job), (status = 404), (status = 409, description = "neither failed nor cancelled")))]
pub async fn retry_job(State(st): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, AppError> {
    let before = st.svc.store.job(&id).await?.ok_or_else(|| AppError::not_found("job"))?;
    if !matches!(before.state, JobState::Failed | JobState::Cancelled) {
        let state = before.state.as_str();
        return Err(AppError::Conflict(format!("only a failed or cancelled job is retried; this one is {state}")));
    }
    Ok(Json(st.svc.retry(&id).await?.ok_or_else(|| AppError::not_found("job"))?))
}

/// Query of `GET /v1/jobs`; an empty value is absent.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default, deserialize_with = "super::empty_as_none")]
    chain: Option<String>,
    #[serde(default, deserialize_with = "super::empty_as_none")]
    state: Option<String>,
    #[serde(default, deserialize_with = "super::empty_as_none")]
    cursor: Option<String>,
    #[serde(default, deserialize_with = "super::empty_as_none")]
    limit: Option<u32>,
}

/// The `state` filter of `GET /v1/jobs`: a job state, or empty for any
/// (as every empty query value is absent).
#[derive(Debug)]
pub struct StateFilter;

impl utoipa::PartialSchema for StateFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names = std::iter::once("").chain(JobState::ALL.iter().map(|s| s.as_str()));
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(names))
            .into()
    }
}

impl utoipa::ToSchema for StateFilter {}

/// A page of jobs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Jobs in creation order.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/jobs", params(("chain" = Option<String>, Query, description = "only this chain's jobs"),
        ("state" = Option<StateFilter>, Query, description = "only jobs in this state (empty: any)"),
        ("cursor" = Option<String>, Query, pattern = "^([0-9]{1,18})?$", description = "`next_cursor` of the previous page (empty: the first page)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "page size, 1..=500 (default 50)")),
    responses((status = 200, body = JobPage), (status = 400, description = "an unknown state or a malformed cursor or limit")))]
pub async fn list_jobs(
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
        Some(c) if (1..=18).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()) => c.parse::<i64>().ok(),
        Some(_) => return Err(AppError::bad_request("invalid cursor: pass a next_cursor as it was given")),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::bad_request("limit must be 1..=500"));
    }
    let jobs = st.svc.store.list_jobs(&JobFilter { chain: q.chain, state, after, limit }).await?;
    let next_cursor = (jobs.len() == limit as usize).then(|| jobs.last().map(|j| j.cursor.to_string())).flatten();
    Ok(Json(JobPage { jobs, next_cursor }))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/proof", params(("id" = String, Path)),
    responses((status = 200, content((statesync_prover::batch::ProofFile = "application/json"), (crate::openapi::Bincode = "application/octet-stream")),
        description = "proof file: proof, public inputs, verifying-key hash (bincode with Accept application/octet-stream)"), (status = 404), (status = 409, description = "not proven yet")))]
pub async fn get_proof(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let job = st.svc.store.job(&id).await?.ok_or_else(|| AppError::not_found("job"))?;
    if job.state != JobState::Done {
        return Err(AppError::NotReady(format!("the job is {}", job.state.as_str())));
    }
    let proof = st.svc.store.proof(&id).await?.ok_or_else(|| AppError::not_found("proof"))?;
    let chain = st.svc.store.chain(&job.chain).await?.ok_or_else(|| AppError::not_found("chain"))?;
    let file = st.svc.prover.proof_file(&job.chain, job.seq, &chain.config.shape, &proof)?;
    if wants_binary(&headers) {
        let bytes = bincode::serialize(&file).expect("proof files serialize");
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response());
    }
    Ok(Json(file).into_response())
}

#[utoipa::path(get, path = "/v1/jobs/{id}/events", params(("id" = String, Path)), responses((status = 200, description = "text/event-stream of job updates until the job finishes"), (status = 404)))]
pub async fn job_events(
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
        st.svc.stopping.clone(),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

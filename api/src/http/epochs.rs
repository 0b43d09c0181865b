//! Epochs of a chain: request, list, get, and the event stream.

use std::convert::Infallible;

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::get,
    Json, Router,
};
use futures::Stream;
use serde::{Deserialize, Serialize};

use super::{body, json_text, poll_events, AppError, AppState};
use crate::store::EpochFilter;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chains/{chain}/epochs", axum::routing::post(request_epoch).get(list_epochs))
        .route("/v1/chains/{chain}/epochs/{id}", get(get_epoch))
}

/// The event stream (no request timeout).
pub(super) fn streams() -> Router<AppState> {
    Router::new().route("/v1/chains/{chain}/epochs/{id}/events", get(epoch_events))
}

/// Body of `POST /v1/chains/{chain}/epochs`: a level-1 epoch.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EpochRequest {
    /// First batch (inclusive): the chain's first batch under no level-1
    /// epoch yet (a chain's epochs tile its batches in order).
    pub first_seq: u64,
    /// Last batch (inclusive); the range spans 1 to the server's epoch size
    /// of accepted batches.
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
    /// Level: 1 aggregates batch proofs, L >= 2 the level L - 1 epochs of
    /// its range.
    pub level: u32,
    /// The N of its circuit: it aggregates 1 to N proofs.
    pub size: u32,
    /// Whether this is the wrapper of the level's epoch with the same range:
    /// the proof the base layer verifies (`statesync evm-verifier`).
    pub wrapper: bool,
    /// Its proof's transcript: `poseidon` below the wrapper, `evm` for the
    /// wrapper.
    pub transcript: statesync_prover::snark::TranscriptKind,
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
    /// Hex SHA-256 of the verifying key of its circuit (done only).
    pub vk_hash: Option<String>,
    /// Public inputs after the accumulator: first old root, last new root,
    /// commitment hash, totals, chain tag (done only).
    #[schema(value_type = Option<Object>)]
    pub public_inputs: Option<statesync_prover::epoch::EpochPublic>,
    /// All instances, accumulator first, 0x-hex (done only).
    pub instances: Option<Vec<String>>,
    /// The proof, hex (done only).
    pub proof: Option<String>,
    /// Calldata of the chain's wrapper verifier contract (`statesync
    /// evm-verifier`), and the bytes `StateSync.submit` takes: instances
    /// then proof, hex (done EVM-transcript proofs only: the wrappers).
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
        let calldata = match (&fields, &e.proof, e.transcript) {
            (Some(f), Some(p), statesync_prover::snark::TranscriptKind::Evm) => {
                Some(hex::encode(statesync_prover::evm::calldata(f, p)))
            }
            _ => None,
        };
        EpochView {
            id: e.id,
            chain: e.chain,
            first_seq: e.first_seq,
            last_seq: e.last_seq,
            level: e.level,
            size: e.size,
            wrapper: e.wrapper,
            transcript: e.transcript,
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

#[utoipa::path(post, path = "/v1/chains/{chain}/epochs", params(("chain" = String, Path)), request_body = EpochRequest,
    responses((status = 201, body = EpochView, description = "queued"), (status = 200, body = EpochView, description = "the existing epoch of this range"),
        (status = 400), (status = 404, description = "unknown chain"), (status = 409, description = "not the chain's next range"),
        (status = 422, description = "a range the epoch circuit cannot take")))]
pub async fn request_epoch(
    State(st): State<AppState>,
    Path(chain): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let b = body(b)?;
    let req: EpochRequest = serde_json::from_str(&json_text(&b)?).map_err(|e| AppError::bad_request(e.to_string()))?;
    let (epoch, created) = st.svc.request_epoch(&chain, req.first_seq, req.last_seq).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(EpochView::from_record(epoch))).into_response())
}

/// Query of `GET /v1/chains/{chain}/epochs`; an empty value is absent.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EpochQuery {
    /// Only epochs starting at or after this seq (default 0).
    #[serde(default, deserialize_with = "super::empty_as_none")]
    pub from_seq: Option<u64>,
    /// Only epochs of this level (wrappers carry the level they wrap).
    #[serde(default, deserialize_with = "super::empty_as_none")]
    pub level: Option<u32>,
    /// Only wrappers (`true`) or only the levels' epochs (`false`).
    #[serde(default, deserialize_with = "super::empty_as_none")]
    pub wrapper: Option<bool>,
    /// Page size (1..=100, default 20).
    #[serde(default, deserialize_with = "super::empty_as_none")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/chains/{chain}/epochs", params(("chain" = String, Path), EpochQuery),
    responses((status = 200, body = Vec<EpochView>, description = "by first seq, then level, wrappers after the epoch they wrap"),
        (status = 400, description = "a limit outside 1..=100"), (status = 404)))]
pub async fn list_epochs(
    State(st): State<AppState>,
    Path(chain): Path<String>,
    q: Result<Query<EpochQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<EpochView>>, AppError> {
    let Query(q) = q.map_err(|e| AppError::bad_request(e.body_text()))?;
    st.svc.store.chain(&chain).await?.ok_or_else(|| AppError::not_found(format!("chain {chain}")))?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(AppError::bad_request("limit must be 1..=100"));
    }
    let filter =
        EpochFilter { level: q.level, wrapper: q.wrapper, from_seq: q.from_seq.unwrap_or(0), to_seq: None, limit };
    let epochs = st.svc.store.list_epochs(&chain, &filter).await?;
    Ok(Json(epochs.into_iter().map(EpochView::from_record).collect()))
}

async fn chain_epoch(st: &AppState, chain: &str, id: &str) -> Result<crate::store::EpochRecord, AppError> {
    st.svc.store.epoch(id).await?.filter(|e| e.chain == chain).ok_or_else(|| AppError::not_found("epoch"))
}

#[utoipa::path(get, path = "/v1/chains/{chain}/epochs/{id}", params(("chain" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = EpochView), (status = 404)))]
pub async fn get_epoch(
    State(st): State<AppState>,
    Path((chain, id)): Path<(String, String)>,
) -> Result<Json<EpochView>, AppError> {
    Ok(Json(EpochView::from_record(chain_epoch(&st, &chain, &id).await?)))
}

#[utoipa::path(get, path = "/v1/chains/{chain}/epochs/{id}/events", params(("chain" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of epoch updates until it is done or failed"), (status = 404)))]
pub async fn epoch_events(
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
        st.svc.stopping.clone(),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

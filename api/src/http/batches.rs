//! Batches: `POST /v1/chains/{chain}/batches` (JSON or bincode; applied at
//! once, proven asynchronously).

use std::time::Instant;

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::{Deserialize, Serialize};
use statesync_circuits::transition::Batch;

use super::{body, is_binary_body, json_text, AppError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/chains/{chain}/batches", post(submit))
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

#[utoipa::path(post, path = "/v1/chains/{chain}/batches", params(("chain" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$",
            description = "binds this submission to one job: a retry with the same key returns that job (1 to 200 visible ASCII characters)")),
    request_body(content(
        (Batch = "application/json"),
        (crate::openapi::Bincode = "application/octet-stream")),
        description = "BATCH.json, or its bincode (README: the bincode wire layout) with Content-Type application/octet-stream"),
    responses((status = 202, body = SubmitResponse), (status = 400, description = "malformed batch"), (status = 404, description = "unknown chain"),
        (status = 409, description = "sequence gap or conflict"), (status = 413), (status = 422, body = super::Rejection, description = "a rule was broken (the chain state is unchanged)")))]
pub async fn submit(
    State(st): State<AppState>,
    Path(chain): Path<String>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let b = body(b)?;
    let batch = if is_binary_body(&headers) { Batch::from_bincode(&b) } else { Batch::from_json(&json_text(&b)?) }
        .map_err(|e| AppError::bad_request(e.message))?;
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if (1..=200).contains(&k.len()) => Some(k.to_string()),
        Some(_) => return Err(AppError::bad_request("Idempotency-Key must be 1 to 200 visible ASCII characters")),
    };
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

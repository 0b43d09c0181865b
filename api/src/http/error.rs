//! The API's one error type: every failure a handler or a middleware
//! answers with, mapped to its status and JSON body in exactly one place
//! ([`AppError::into_response`]). Bodies are `{type, message}`, except a
//! rule violation (422), which is the engine's `{type, index, rule,
//! message}`. Store, prover and driver details are logged, never returned.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use statesync_circuits::error::BatchError;
use statesync_prover::ProverError;

use crate::{
    service::{EpochRequestError, SubmitError},
    store::StoreError,
};

/// An API error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// 400: a malformed request (body, query, header).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no API key.
    #[error("an API key is required (Authorization: Bearer ssk_...)")]
    Unauthorized,
    /// 403: an unknown, wrong or revoked API key.
    #[error("invalid or revoked API key")]
    Forbidden,
    /// 404: no such resource (what is missing).
    #[error("{0} not found")]
    NotFound(String),
    /// 408: the request took longer than the configured timeout.
    #[error("the request took too long")]
    Timeout,
    /// 409: the resource exists or was used with other content.
    #[error("{0}")]
    Conflict(String),
    /// 409: a batch whose seq is not the chain's next.
    #[error("expected seq {expected}, got {got}")]
    SequenceGap {
        /// The chain's next seq.
        expected: u64,
        /// The submitted seq.
        got: u64,
    },
    /// 409: a proof asked for before it exists.
    #[error("{0}")]
    NotReady(String),
    /// 413: the body exceeds the configured limit.
    #[error("the request body exceeds the size limit")]
    PayloadTooLarge,
    /// 422: a chain config that is not valid.
    #[error("{0}")]
    InvalidConfig(String),
    /// 422: an epoch range the epoch circuit cannot take.
    #[error("{0}")]
    InvalidEpoch(String),
    /// 422: a batch that breaks a rule.
    #[error("{}", .0.message)]
    Rejected(BatchError),
    /// 429: the key's rate limit.
    #[error("too many requests; retry later")]
    RateLimited,
    /// 500: the details are in the server log.
    #[error("internal error; see the server log")]
    Internal,
}

impl AppError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Timeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Conflict(_) | AppError::SequenceGap { .. } | AppError::NotReady(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::InvalidConfig(_) | AppError::InvalidEpoch(_) | AppError::Rejected(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body's `type`: the error class.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Timeout => "timeout",
            AppError::Conflict(_) => "conflict",
            AppError::SequenceGap { .. } => "sequence_gap",
            AppError::NotReady(_) => "not_ready",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::InvalidConfig(_) => "invalid_config",
            AppError::InvalidEpoch(_) => "invalid_epoch",
            AppError::Rejected(_) => "rejected",
            AppError::RateLimited => "rate_limited",
            AppError::Internal => "internal",
        }
    }

    /// A 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }

    /// A 400 saying `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        AppError::BadRequest(message.into())
    }

    /// A 500 whose cause `e` is logged (as `what`), not returned.
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!("{what}: {e}");
        AppError::Internal
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::Rejected(be) => serde_json::to_value(be).expect("batch errors serialize"),
            other => serde_json::json!({ "type": other.kind(), "message": other.to_string() }),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::internal("store", e)
    }
}

impl From<ProverError> for AppError {
    fn from(e: ProverError) -> Self {
        AppError::internal("prover", e)
    }
}

impl From<SubmitError> for AppError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::UnknownChain(c) => AppError::not_found(format!("chain {c}")),
            SubmitError::Rejected(be) => AppError::Rejected(be),
            SubmitError::Gap { expected, got } => AppError::SequenceGap { expected, got },
            SubmitError::Conflict(m) => AppError::Conflict(m),
            SubmitError::Store(s) => s.into(),
        }
    }
}

impl From<EpochRequestError> for AppError {
    fn from(e: EpochRequestError) -> Self {
        match e {
            EpochRequestError::UnknownChain(c) => AppError::not_found(format!("chain {c}")),
            EpochRequestError::Invalid(m) => AppError::InvalidEpoch(m),
            EpochRequestError::Store(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(e: AppError) -> (StatusCode, Option<HeaderValue>, serde_json::Value) {
        let resp = e.into_response();
        let (status, retry) = (resp.status(), resp.headers().get(header::RETRY_AFTER).cloned());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn each_error_maps_to_its_status_type_and_message() {
        let cases = [
            (AppError::bad_request("limit must be 1..=100"), 400, "bad_request", "limit must be 1..=100"),
            (AppError::Unauthorized, 401, "unauthorized", "an API key is required (Authorization: Bearer ssk_...)"),
            (AppError::Forbidden, 403, "forbidden", "invalid or revoked API key"),
            (AppError::not_found("chain x"), 404, "not_found", "chain x not found"),
            (AppError::Timeout, 408, "timeout", "the request took too long"),
            (AppError::Conflict("seq 3 was already accepted".into()), 409, "conflict", "seq 3 was already accepted"),
            (AppError::SequenceGap { expected: 4, got: 6 }, 409, "sequence_gap", "expected seq 4, got 6"),
            (AppError::NotReady("the job is queued".into()), 409, "not_ready", "the job is queued"),
            (AppError::PayloadTooLarge, 413, "payload_too_large", "the request body exceeds the size limit"),
            (AppError::InvalidConfig("no markets".into()), 422, "invalid_config", "no markets"),
            (AppError::InvalidEpoch("2 batches".into()), 422, "invalid_epoch", "2 batches"),
            (AppError::RateLimited, 429, "rate_limited", "too many requests; retry later"),
            (AppError::Internal, 500, "internal", "internal error; see the server log"),
        ];
        for (e, status, kind, message) in cases {
            let (s, retry, body) = parts(e).await;
            assert_eq!(s.as_u16(), status, "{body}");
            assert_eq!(body, serde_json::json!({ "type": kind, "message": message }));
            assert_eq!(retry.is_some(), status == 429, "Retry-After only on 429");
        }
    }

    #[tokio::test]
    async fn sources_map_without_leaking_details() {
        let be =
            BatchError { index: Some(2), kind: "withdraw".into(), rule: "initial_margin".into(), message: "m".into() };
        let (s, _, body) = parts(SubmitError::Rejected(be).into()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body, serde_json::json!({"type": "withdraw", "index": 2, "rule": "initial_margin", "message": "m"}));
        let (s, _, body) = parts(SubmitError::Gap { expected: 1, got: 3 }.into()).await;
        assert_eq!((s, body["type"].as_str()), (StatusCode::CONFLICT, Some("sequence_gap")));
        let (s, _, body) = parts(SubmitError::UnknownChain("c".into()).into()).await;
        assert_eq!((s, body["message"].as_str()), (StatusCode::NOT_FOUND, Some("chain c not found")));
        let (s, _, body) = parts(EpochRequestError::Invalid("range".into()).into()).await;
        assert_eq!((s, body["type"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_epoch")));
        let secret = "database is locked at /var/lib/statesync/jobs.sqlite";
        let (s, _, body) = parts(StoreError::Corrupt(secret.into()).into()).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("sqlite"), "store details stay in the log: {body}");
        let (s, _, body) = parts(ProverError::Epoch(secret.into()).into()).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("sqlite"));
    }
}

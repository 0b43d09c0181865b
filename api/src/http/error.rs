//! The API's one error type: every failure a handler, a middleware or the
//! framework itself answers with ([`AppError::from_framework`]), mapped to
//! its status and JSON body in exactly one place
//! ([`AppError::into_response`]). Bodies are [`ErrorBody`] `{type,
//! message}`, `type` the error class; a rule violation (422) adds the
//! offending transition's `index`, its kind (`transition`) and the `rule`
//! ([`Rejection`]). Store, prover and driver details are logged, never
//! returned.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
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
    /// 405: the route exists, the method does not (the response keeps `Allow`).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 413: the body exceeds the configured limit.
    #[error("the request body exceeds the size limit")]
    PayloadTooLarge,
    /// 414: the request target is longer than [`super::MAX_URI_BYTES`].
    #[error("the request URI is too long")]
    UriTooLong,
    /// 415: a body of a media type the route does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
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
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UriTooLong => StatusCode::URI_TOO_LONG,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
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
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::UriTooLong => "uri_too_long",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
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

    /// The error of a response the framework made itself (an extractor's
    /// rejection, the router's 404 and 405): `status` and its plain-text
    /// body, as the API's error. A status the API has no class for is an
    /// internal error (logged).
    pub fn from_framework(status: StatusCode, text: &str) -> Self {
        let text = text.trim();
        let said = |fallback: &str| if text.is_empty() { fallback.to_string() } else { text.to_string() };
        match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                AppError::BadRequest(said("malformed request"))
            }
            StatusCode::UNAUTHORIZED => AppError::Unauthorized,
            StatusCode::FORBIDDEN => AppError::Forbidden,
            StatusCode::NOT_FOUND => AppError::not_found("route"),
            StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => AppError::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            StatusCode::URI_TOO_LONG => AppError::UriTooLong,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(said("unsupported media type")),
            StatusCode::TOO_MANY_REQUESTS => AppError::RateLimited,
            other => AppError::internal("framework response", format!("{other}: {text}")),
        }
    }

    /// A 500 whose cause `e` is logged (as `what`), not returned.
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!("{what}: {e}");
        AppError::Internal
    }
}

/// The body of every error response but a rule violation's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error class: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `timeout`, `conflict`,
    /// `sequence_gap`, `not_ready`, `payload_too_large`, `uri_too_long`,
    /// `unsupported_media_type`, `invalid_config`, `invalid_epoch`,
    /// `rate_limited`, `internal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// The body of a 422 for a batch that breaks a rule (also what `statesync
/// apply` prints): the first broken rule; the chain state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Always `rejected`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending transition's position in the batch (null for a
    /// batch-level error).
    pub index: Option<usize>,
    /// The offending transition's kind (e.g. `withdraw`), or `batch`.
    pub transition: String,
    /// The rule, machine-readable (e.g. `initial_margin`).
    pub rule: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl From<&BatchError> for Rejection {
    fn from(be: &BatchError) -> Self {
        Rejection {
            kind: "rejected".into(),
            index: be.index,
            transition: be.kind.clone(),
            rule: be.rule.clone(),
            message: be.message.clone(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::Rejected(be) => serde_json::to_value(Rejection::from(be)),
            other => serde_json::to_value(ErrorBody { kind: other.kind().into(), message: other.to_string() }),
        }
        .expect("error bodies serialize");
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
            EpochRequestError::Conflict(m) => AppError::Conflict(m),
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
            (AppError::MethodNotAllowed, 405, "method_not_allowed", "method not allowed on this route"),
            (AppError::PayloadTooLarge, 413, "payload_too_large", "the request body exceeds the size limit"),
            (AppError::UriTooLong, 414, "uri_too_long", "the request URI is too long"),
            (AppError::UnsupportedMediaType("JSON expected".into()), 415, "unsupported_media_type", "JSON expected"),
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
    async fn framework_responses_become_the_apis_errors() {
        let cases = [
            (
                StatusCode::BAD_REQUEST,
                "Invalid URL: Cannot parse `%ff`",
                400,
                "bad_request",
                "Invalid URL: Cannot parse `%ff`",
            ),
            (StatusCode::BAD_REQUEST, "", 400, "bad_request", "malformed request"),
            (StatusCode::NOT_FOUND, "", 404, "not_found", "route not found"),
            (StatusCode::METHOD_NOT_ALLOWED, "", 405, "method_not_allowed", "method not allowed on this route"),
            (StatusCode::URI_TOO_LONG, "", 414, "uri_too_long", "the request URI is too long"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Expected JSON", 415, "unsupported_media_type", "Expected JSON"),
            (StatusCode::IM_A_TEAPOT, "secret detail", 500, "internal", "internal error; see the server log"),
        ];
        for (status, text, code, kind, message) in cases {
            let (s, _, body) = parts(AppError::from_framework(status, text)).await;
            assert_eq!((s.as_u16(), body), (code, serde_json::json!({ "type": kind, "message": message })));
        }
    }

    #[tokio::test]
    async fn sources_map_without_leaking_details() {
        let be =
            BatchError { index: Some(2), kind: "withdraw".into(), rule: "initial_margin".into(), message: "m".into() };
        let (s, _, body) = parts(SubmitError::Rejected(be).into()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body,
            serde_json::json!({"type": "rejected", "index": 2, "transition": "withdraw", "rule": "initial_margin", "message": "m"})
        );
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

//! The layers every request passes: JSON bodies for every error, API-key
//! authentication, the rate limit per key, the request timeout and the
//! request counter.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderMap},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AppError, AppState, MAX_URI_BYTES};

/// Gives every error response the API's JSON body: a response the
/// framework made itself (an extractor's plain-text rejection, the router's
/// empty 405) becomes the [`AppError`] of its status
/// ([`AppError::from_framework`]), keeping `Allow`; a request target longer
/// than [`MAX_URI_BYTES`] is refused with 414 before routing.
pub(super) async fn json_errors(req: Request, next: Next) -> Response {
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return AppError::UriTooLong.into_response();
    }
    let resp = next.run(req).await;
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // the framework's messages are short; a longer one is cut, not an error
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut out = AppError::from_framework(status, &text.unwrap_or_default()).into_response();
    if let Some(allow) = parts.headers.remove(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

/// Answers 408 (JSON) when a request takes longer than the configured timeout.
pub(super) async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => AppError::Timeout.into_response(),
    }
}

/// Counts requests by method, matched route and status.
pub(super) async fn count_requests(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let resp = next.run(req).await;
    let route = path.unwrap_or_else(|| "unmatched".into());
    metrics::counter!("statesync_http_requests_total", "method" => method, "route" => route, "status" => resp.status().as_u16().to_string())
        .increment(1);
    resp
}

/// Token buckets per API key: `rate` tokens a second, at most `burst`.
#[derive(Debug)]
pub(super) struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub(super) fn new(rate: u32, burst: u32) -> Self {
        Limiter { rate: rate as f64, burst: burst as f64, buckets: Mutex::new(HashMap::new()) }
    }

    /// Whether `key` may make a request now (taking a token if so).
    pub(super) fn allow(&self, key: &str) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn allow_at(&self, key: &str, now: Instant) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = b.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
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

/// The API key a request presents: `Authorization: Bearer …` (the scheme
/// in any case, as RFC 9110 has it), else the `X-API-Key` header.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Authenticates the request's API key (unless the service is open) and
/// applies its rate limit.
pub(super) async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Result<Response, AppError> {
    let who = if st.svc.config.open {
        "open".to_string()
    } else {
        let presented = presented_key(req.headers()).ok_or(AppError::Unauthorized)?;
        let (id, secret) = parse_key(presented).ok_or(AppError::Forbidden)?;
        let key = st.svc.store.key(id).await?.ok_or(AppError::Forbidden)?;
        let matches: bool = hash_secret(secret).ct_eq(&key.hash).into();
        if !matches || key.revoked_at.is_some() {
            return Err(AppError::Forbidden);
        }
        key.id
    };
    tracing::Span::current().record("key", who.as_str());
    if !st.limiter.allow(&who) {
        return Err(AppError::RateLimited);
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn keys_parse_and_are_found_in_either_header() {
        assert_eq!(parse_key("ssk_ab12_s3cret"), Some(("ab12", "s3cret")));
        assert_eq!(parse_key("ssk_ab12_s3c_ret"), Some(("ab12", "s3c_ret")), "the secret may hold underscores");
        for bad in ["", "ssk_", "ssk__secret", "ssk_id_", "ssk_idonly", "sk_ab12_s3cret", "Bearer ssk_a_b"] {
            assert_eq!(parse_key(bad), None, "{bad:?}");
        }
        assert_ne!(hash_secret("a"), hash_secret("b"));
        assert_eq!(hash_secret("a").len(), 32);

        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static("ssk_x_y"));
        assert_eq!(presented_key(&h), Some("ssk_x_y"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  ssk_a_b "));
        assert_eq!(presented_key(&h), Some("ssk_a_b"), "the bearer token wins, trimmed");
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("{scheme} ssk_c_d")).unwrap());
            assert_eq!(presented_key(&h), Some("ssk_c_d"), "the scheme is case-insensitive: {scheme}");
        }
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwdw=="));
        assert_eq!(presented_key(&h), Some("ssk_x_y"), "another scheme is not a key");
    }

    #[test]
    fn the_limiter_allows_a_burst_then_refills_at_its_rate_per_key() {
        let l = Limiter::new(2, 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| l.allow_at("a", t0)), "a burst of 3");
        assert!(!l.allow_at("a", t0), "the 4th at once is refused");
        assert!(l.allow_at("b", t0), "each key has its own bucket");
        assert!(!l.allow_at("a", t0 + Duration::from_millis(400)), "0.8 tokens after 400 ms");
        assert!(l.allow_at("a", t0 + Duration::from_millis(500)), "1 token after 500 ms at 2/s");
        assert!(!l.allow_at("a", t0 + Duration::from_millis(500)));
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| l.allow_at("a", later)) && !l.allow_at("a", later), "refills to the burst, no more");
        assert!(l.allow_at("a", t0 + Duration::from_secs(61)), "2 tokens a second later");
        assert!(l.allow_at("a", t0), "an earlier clock reading refills nothing and takes the last token");
        assert!(!l.allow_at("a", t0));
    }
}

//! A Rust client of the HTTP API: submits batches (retrying 5xx and 429 with
//! backoff — resubmission is idempotent), reads jobs and proofs, and follows a
//! job's server-sent events.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use statesync_circuits::transition::Batch;

use crate::{http::batches::SubmitResponse, store::Job};

/// Client errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error; `body` is its JSON.
    #[error("HTTP {status}: {body}")]
    Api {
        /// Status.
        status: u16,
        /// The JSON error.
        body: serde_json::Value,
    },
    /// Transport.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The event stream ended before the job finished.
    #[error("the event stream ended early")]
    StreamEnded,
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
    /// Attempts for retryable failures.
    pub attempts: u32,
}

impl Client {
    /// A client of `base` (e.g. `http://127.0.0.1:8080`) with an optional API key.
    pub fn new(base: &str, key: Option<String>) -> Self {
        Client { base: base.trim_end_matches('/').to_string(), key, http: reqwest::Client::new(), attempts: 6 }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        mk: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let result = mk().send().await;
            let retryable = match &result {
                Ok(r) => r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS,
                Err(e) => e.is_connect() || e.is_timeout(),
            };
            if retryable && attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
                continue;
            }
            let resp = result?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp.json().await?);
            }
            let body = resp.json().await.unwrap_or(serde_json::Value::Null);
            return Err(ClientError::Api { status: status.as_u16(), body });
        }
    }

    /// Submits a batch to `chain`.
    pub async fn submit(
        &self,
        chain: &str,
        batch: &Batch,
        idempotency_key: Option<&str>,
    ) -> Result<SubmitResponse, ClientError> {
        let path = format!("/v1/chains/{chain}/batches");
        self.send_json(|| {
            let r = self.req(reqwest::Method::POST, &path).json(batch);
            match idempotency_key {
                Some(k) => r.header("Idempotency-Key", k),
                None => r,
            }
        })
        .await
    }

    /// A job.
    pub async fn job(&self, id: &str) -> Result<Job, ClientError> {
        let path = format!("/v1/jobs/{id}");
        self.send_json(|| self.req(reqwest::Method::GET, &path)).await
    }

    /// A done job's proof file.
    pub async fn proof(&self, id: &str) -> Result<statesync_prover::batch::ProofFile, ClientError> {
        let path = format!("/v1/jobs/{id}/proof");
        self.send_json(|| self.req(reqwest::Method::GET, &path)).await
    }

    /// Follows a job's events until it finishes; returns its final state.
    pub async fn wait(&self, id: &str, mut on_event: impl FnMut(&Job)) -> Result<Job, ClientError> {
        let resp = self.req(reqwest::Method::GET, &format!("/v1/jobs/{id}/events")).send().await?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(ClientError::Api { status, body: resp.json().await.unwrap_or(serde_json::Value::Null) });
        }
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data: String = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                if data.is_empty() {
                    continue;
                }
                if let Ok(job) = serde_json::from_str::<Job>(&data) {
                    on_event(&job);
                    if job.state.is_terminal() {
                        return Ok(job);
                    }
                }
            }
        }
        Err(ClientError::StreamEnded)
    }
}

//! What every decoder of outside input must do with any bytes, checked on
//! one input: the fuzz targets under `fuzz/` (cargo-fuzz, `scripts/fuzz`)
//! call these, and `tests/fuzz_regressions.rs` replays every input under
//! `fuzz/regressions/` through them in the normal suite.
//!
//! Each check panics when the property fails: a decoder that panics, an
//! accepted input that does not survive re-encoding, a config that
//! validates but cannot build its genesis state, a request answered with a
//! 500 or with an error body that is not the API's JSON.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{Request, StatusCode},
    Router,
};
use statesync_circuits::{config::ChainConfig, transition::Batch};
use statesync_prover::batch::ProofFile;
use tower::ServiceExt;

use crate::{config::ServeArgs, http, service::Service, store::sql::SqlStore};

/// A JSON batch (`POST /v1/chains/{chain}/batches`, `statesync apply`):
/// refused with a message, or accepted and the same after JSON and bincode
/// round trips.
pub fn batch_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Batch::from_json(text) {
        Ok(b) => round_trips(&b),
        Err(e) => assert!(!e.message.is_empty(), "a refusal says why"),
    }
}

/// A bincode batch: refused with a message, or accepted and the same after
/// both round trips.
pub fn batch_bincode(data: &[u8]) {
    match Batch::from_bincode(data) {
        Ok(b) => round_trips(&b),
        Err(e) => assert!(!e.message.is_empty(), "a refusal says why"),
    }
}

fn round_trips(b: &Batch) {
    assert_eq!(Batch::from_bincode(&b.to_bincode()).as_ref(), Ok(b), "bincode round trip");
    let json = serde_json::to_string(b).expect("batches serialize");
    assert_eq!(Batch::from_json(&json).as_ref(), Ok(b), "JSON round trip");
}

/// A chain config (`POST /v1/chains`, every CLI command's `--chain`):
/// refused, or valid, the same after a round trip, and able to build its
/// genesis state.
pub fn chain_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = ChainConfig::from_json(text) {
        let json = serde_json::to_string(&cfg).expect("configs serialize");
        assert_eq!(ChainConfig::from_json(&json).as_ref(), Ok(&cfg), "JSON round trip");
        let _ = cfg.genesis_state().root();
    }
}

/// A proof file (`statesync verify`): refused, or its proof decodes.
pub fn proof_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(f) = ProofFile::from_json(text) {
        let _ = f.batch_proof();
        let json = serde_json::to_string(&f).expect("proof files serialize");
        assert_eq!(ProofFile::from_json(&json).ok().as_ref(), Some(&f), "JSON round trip");
    }
}

/// Requests through the whole router (open mode, no workers, one chain
/// `tiny`) on a store in a fresh temporary directory.
#[derive(Debug)]
pub struct HttpCheck {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

/// The routes requests are aimed at (`{}` takes a segment from the input).
const PATHS: [&str; 12] = [
    "/v1/chains",
    "/v1/chains/{}",
    "/v1/chains/{}/batches",
    "/v1/chains/tiny/batches",
    "/v1/chains/{}/vk",
    "/v1/chains/tiny/epochs",
    "/v1/chains/{}/epochs/{}",
    "/v1/jobs",
    "/v1/jobs/{}",
    "/v1/jobs/{}/retry",
    "/v1/jobs/{}/proof",
    "/{}",
];

impl HttpCheck {
    /// The router of a fresh service.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let dir = std::env::temp_dir().join(format!("statesync-fuzz-{}", uuid::Uuid::new_v4().simple()));
        let args = ServeArgs { data_dir: Some(dir.clone()), workers: Some(0), open: true, ..Default::default() };
        let cfg = args.resolve().expect("the defaults resolve");
        let router = runtime.block_on(async {
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let store = SqlStore::sqlite(&cfg.database).await.expect("a store");
            let svc = Arc::new(Service::new(Arc::new(store), cfg, Arc::new(statesync_prover::hal::CpuHal)));
            let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
            let tiny = statesync_circuits::examples::tiny_chain("tiny", 1, 3);
            svc.create_chain(&tiny).await.expect("the tiny chain");
            http::router(svc, metrics)
        });
        HttpCheck { runtime, router }
    }

    /// One request read from `data`: a method, a route with segments, a
    /// content type, a query and a body. Nothing is answered with a 500,
    /// and every error is `{type, message}` JSON. The status, when `data`
    /// makes a request.
    pub fn check(&self, data: &[u8]) -> Option<StatusCode> {
        let [m, p, c, rest @ ..] = data else { return None };
        let method = ["GET", "POST", "PUT", "DELETE", "PATCH"][*m as usize % 5];
        let text = String::from_utf8_lossy(rest);
        let mut parts = text.splitn(4, '\u{1}');
        let (a, b, query, body) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or_default());
        let segment = |s: Option<&str>| -> String {
            s.unwrap_or("x").bytes().map(|b| format!("%{b:02X}")).collect::<String>().chars().take(600).collect()
        };
        let path = PATHS[*p as usize % PATHS.len()].replacen("{}", &segment(a), 1).replacen("{}", &segment(b), 1);
        let uri = match query {
            Some(q) => format!("{path}?{}", q.replace(['#', ' '], "")),
            None => path,
        };
        let content_type = ["application/json", "application/octet-stream", "text/plain"][*c as usize % 3];
        let Ok(request) = Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", content_type)
            .body(Body::from(body.as_bytes().to_vec()))
        else {
            return None;
        };
        let (status, bytes) = self.runtime.block_on(async {
            let resp = self.router.clone().oneshot(request).await.expect("the router answers");
            let status = resp.status();
            (status, axum::body::to_bytes(resp.into_body(), 1 << 24).await.expect("a body"))
        });
        assert!(status.as_u16() < 500, "{method} {uri}: {status}");
        if status.is_client_error() {
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{method} {uri}: {status} is not JSON ({e})"));
            assert!(v["type"].is_string() && v["message"].is_string(), "{method} {uri}: {status} {v}");
        }
        Some(status)
    }
}

impl Default for HttpCheck {
    fn default() -> Self {
        Self::new()
    }
}

//! The real `statesync serve` process on a loopback port: the whole path, every
//! error case, a `kill -9` mid-proof, and concurrent sequencers.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    poly::{kzg::commitment::ParamsKZG, EvaluationDomain},
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use statesync_api::client::Client;
use statesync_api::{
    config::ServeArgs,
    devices::DEVICE_FAILURE_LIMIT,
    service::{run_worker, EpochRequestError, Service},
    store::{sql::SqlStore, EpochFilter, JobState},
};
use statesync_circuits::{config::ChainConfig, examples, transition::Transition};
use statesync_prover::{
    hal::{Backend, Bases, CpuHal, Hal},
    ProverError,
};
use statesync_testkit::kernels::KernelError;
use statesync_testkit::{deposit_batch, test_cache_dir, test_prover};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_statesync");

/// The tiny chain as the service takes it: proofs take about a second.
fn tiny_chain(id: &str, capacity: usize, depth: usize) -> Value {
    serde_json::to_value(examples::tiny_chain(id, capacity, depth)).unwrap()
}

/// A batch of one deposit of `amount` into account 1.
fn deposit(chain: &str, seq: u64, amount: u64) -> Value {
    serde_json::to_value(deposit_batch(chain, seq, 1, amount as i64)).unwrap()
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// `statesync serve` on a free loopback port, over `data`.
    fn start(data: &Path, extra: &[&str]) -> Server {
        let args = [&["serve", "--bind", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()][..], extra].concat();
        Server::launch(data, &args, "statesync listening on ")
    }

    /// A `statesync worker` on `url`'s PostgreSQL, its operations port on a
    /// free loopback port (the returned URL).
    fn worker(data: &Path, url: &str, extra: &[&str]) -> Server {
        let args = [&["worker", "--bind", "127.0.0.1:0", "--database-url", url][..], extra].concat();
        Server::launch(data, &args, "operations port ")
    }

    /// Runs the binary with `args` (logs in `data`) until it prints a line
    /// with `marker` and the URL after it.
    fn launch(data: &Path, args: &[&str], marker: &str) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .env("STATESYNC_CACHE_DIR", test_cache_dir!())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(data.join(format!("{}-{}.log", args[0], uuid::Uuid::new_v4().simple()))).unwrap(),
            )
            .spawn()
            .expect("the process starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("the process printed its address").unwrap();
            if let Some((_, url)) = line.split_once(marker) {
                break url.to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, url }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn add_key(data: &Path) -> String {
    let out = Command::new(BIN).args(["keys", "add", "--name", "test", "--data-dir"]).arg(data).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["key"].as_str().unwrap().to_string()
}

/// A server on a fresh data directory, an API key and a client: the data
/// directory (kept alive by the returned guard) serves a restart too.
fn fresh_server(extra: &[&str]) -> (tempfile::TempDir, String, Server, Api) {
    let tmp = tempfile::tempdir().unwrap();
    let key = add_key(tmp.path());
    let server = Server::start(tmp.path(), extra);
    let api = Api::new(&server, &key);
    (tmp, key, server, api)
}

struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    fn new(server: &Server, key: &str) -> Api {
        Api { http: reqwest::Client::new(), url: server.url.clone(), key: key.to_string() }
    }

    /// Waits (at most 5 minutes) until job `id` is in one of `states`; it
    /// must not finish first.
    async fn wait_state(&self, id: &str, states: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (_, job) = self.get(&format!("/v1/jobs/{id}")).await;
            if states.iter().any(|s| job["state"] == *s) {
                return;
            }
            assert_ne!(job["state"], "done", "the job finished before it could be interrupted");
            assert!(Instant::now() < deadline, "job {id} never reached {states:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut r = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.key);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        let resp = r.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
    }
    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (s, v, _) = self.send(reqwest::Method::POST, path, Some(body.to_string().into_bytes()), &[]).await;
        (s, v)
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.send(reqwest::Method::GET, path, None, &[]).await;
        (s, v)
    }
}

/// A PostgreSQL schema of one test's own (`scripts/test` starts the local
/// server), with the URL that selects it.
struct PgSchema {
    admin: sqlx::AnyPool,
    name: String,
    url: String,
}

impl PgSchema {
    async fn create() -> PgSchema {
        let base = statesync_testkit::postgres_url();
        let name = format!("s{}", uuid::Uuid::new_v4().simple());
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.expect("PostgreSQL (scripts/test starts the local server)");
        sqlx::raw_sql(&format!("CREATE SCHEMA {name}")).execute(&admin).await.unwrap();
        let url = format!("{base}?options=-c%20search_path%3D{name}");
        PgSchema { admin, name, url }
    }

    /// An API key, added with `statesync keys --database-url`.
    fn add_key(&self) -> String {
        let out =
            Command::new(BIN).args(["keys", "add", "--name", "pg", "--database-url", &self.url]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"].as_str().unwrap().to_string()
    }

    async fn drop_schema(self) {
        sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.name)).execute(&self.admin).await.unwrap();
    }
}

async fn wait_done(client: &Client, job: &str) -> statesync_api::store::Job {
    tokio::time::timeout(Duration::from_secs(600), client.wait(job, |_| {}))
        .await
        .expect("job finishes in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequencer_session_and_every_error() {
    let (_tmp, key, server, api) = fresh_server(&["--max-body-bytes", "65536"]);

    // authentication
    let anon = reqwest::Client::new();
    assert_eq!(anon.get(format!("{}/v1/jobs", server.url)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let wrong = anon.get(format!("{}/v1/jobs", server.url)).bearer_auth(format!("{key}x")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["type"], "forbidden");

    // chains
    let chain = tiny_chain("tiny", 2, 3);
    let (s, created) = api.post("/v1/chains", &chain).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(api.post("/v1/chains", &chain).await.0, StatusCode::CONFLICT);
    let (s, v, _) = api.send(reqwest::Method::POST, "/v1/chains", Some(b"{\"version\": 1,".to_vec()), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("line 1"), "{v}");
    let (s, v) = api.get("/v1/chains/tiny").await;
    assert_eq!(
        (s, v["state_root"].clone(), v["next_seq"].clone()),
        (StatusCode::OK, created["state_root"].clone(), json!(0))
    );
    assert_eq!(api.get("/v1/chains/nope").await.0, StatusCode::NOT_FOUND);
    // chain ids have a charset; JSON bodies must be UTF-8; empty query
    // values are absent; the bearer scheme is case-insensitive
    let mut evil = chain.clone();
    evil["chain_id"] = json!("../evil/x");
    let (s, v) = api.post("/v1/chains", &evil).await;
    assert_eq!((s, v["type"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{v}");
    let (s, v, _) = api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(vec![b'{', 0xff, b'}']), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("UTF-8"), "{v}");
    assert_eq!(api.get("/v1/jobs?chain=&state=&cursor=&limit=").await.0, StatusCode::OK);
    assert_eq!(api.get("/v1/chains/tiny/epochs?from_seq=&limit=").await.0, StatusCode::OK);
    let lower = anon.get(format!("{}/v1/jobs", server.url)).header("authorization", format!("bearer {key}"));
    assert_eq!(lower.send().await.unwrap().status(), StatusCode::OK);
    // the framework's own rejections answer the API's JSON too
    for (method, path, status, kind) in [
        (reqwest::Method::GET, "/v1/chains/%ff".to_string(), StatusCode::BAD_REQUEST, "bad_request"),
        (reqwest::Method::GET, "/v1/nowhere".to_string(), StatusCode::NOT_FOUND, "not_found"),
        (reqwest::Method::PUT, "/v1/jobs".to_string(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (reqwest::Method::GET, format!("/v1/chains/{}", "x".repeat(10_000)), StatusCode::URI_TOO_LONG, "uri_too_long"),
    ] {
        let (s, v, headers) = api.send(method.clone(), &path, None, &[]).await;
        assert_eq!((s, v["type"].as_str()), (status, Some(kind)), "{method} {}: {v}", &path[..20.min(path.len())]);
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(headers.contains_key("allow"), status == StatusCode::METHOD_NOT_ALLOWED);
    }
    assert_eq!(api.post("/v1/chains/nope/batches", &deposit("nope", 0, 1)).await.0, StatusCode::NOT_FOUND);

    // batches: malformed, too large, rule broken, gap
    let (s, v, _) = api
        .send(
            reqwest::Method::POST,
            "/v1/chains/tiny/batches",
            Some(b"{\"version\":1,\"chain_id\":\"tiny\",\"seq\":0,\"transitions\":[{\"type\":\"warp\"}]}".to_vec()),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("column"), "{v}");
    let (s, v, _) = api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(vec![b' '; 100_000]), &[]).await;
    assert_eq!((s, v["type"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    // signed by account 1's key: the margin rule is what refuses it
    let tag = serde_json::from_value::<ChainConfig>(chain.clone()).unwrap().tag();
    let signed = Transition::withdraw(1, "1000000".parse().unwrap(), 0, &examples::secret(1), tag);
    let withdraw = json!({"version": 1, "chain_id": "tiny", "seq": 0, "transitions": [
        {"type": "deposit", "account": 1, "amount": "1"}, signed]});
    let (s, v) = api.post("/v1/chains/tiny/batches", &withdraw).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (v["type"].as_str(), v["index"].as_u64(), v["transition"].as_str(), v["rule"].as_str()),
        (Some("rejected"), Some(1), Some("withdraw"), Some("initial_margin"))
    );
    assert_eq!(
        api.get("/v1/chains/tiny").await.1["state_root"],
        created["state_root"],
        "a rejected batch changes nothing"
    );
    let (s, v) = api.post("/v1/chains/tiny/batches", &deposit("tiny", 3, 1)).await;
    assert_eq!((s, v["type"].as_str()), (StatusCode::CONFLICT, Some("sequence_gap")));

    // accepted, then replayed (same Idempotency-Key, and same seq + content)
    let b0 = deposit("tiny", 0, 5).to_string().into_bytes();
    let idem = [("idempotency-key", "batch-0"), ("content-type", "application/json")];
    let (s, first, _) = api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(b0.clone()), &idem).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, again, h) = api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(b0.clone()), &idem).await;
    assert_eq!((s, again["job_id"].clone()), (StatusCode::ACCEPTED, first["job_id"].clone()));
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    let (_, again, _) = api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(b0.clone()), &[]).await;
    assert_eq!(again["job_id"], first["job_id"], "same chain + seq + content is the same job");
    // a replay's new key is bound to that job: the key cannot name another batch
    let late = [("idempotency-key", "late-key")];
    let (_, again, _) = api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(b0), &late).await;
    assert_eq!(again["job_id"], first["job_id"]);
    let b1_json = deposit("tiny", 1, 7).to_string().into_bytes();
    let (s, v, _) = api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(b1_json), &late).await;
    assert_eq!((s, v["type"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{v}");
    let other = deposit("tiny", 0, 6).to_string().into_bytes();
    assert_eq!(
        api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(other.clone()), &idem).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.send(reqwest::Method::POST, "/v1/chains/tiny/batches", Some(other), &[]).await.0,
        StatusCode::CONFLICT
    );

    // bincode submission of seq 1
    let b1: statesync_circuits::transition::Batch = serde_json::from_value(deposit("tiny", 1, 7)).unwrap();
    let (s, second, _) = api
        .send(
            reqwest::Method::POST,
            "/v1/chains/tiny/batches",
            Some(b1.to_bincode()),
            &[("content-type", "application/octet-stream")],
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{second}");
    assert_eq!(second["old_root"], first["new_root"]);

    // follow the events to the end and check the proof with halo2-axiom's verifier
    let client = Client::new(&server.url, Some(key.clone()));
    let mut stages = vec![];
    let job = tokio::time::timeout(
        Duration::from_secs(600),
        client.wait(first["job_id"].as_str().unwrap(), |j| stages.push(j.stage.clone())),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(job.state, statesync_api::store::JobState::Done, "{job:?}");
    assert_eq!(stages.last().map(String::as_str), Some("done"));
    let job1 = wait_done(&client, second["job_id"].as_str().unwrap()).await;
    assert_eq!(job1.state, statesync_api::store::JobState::Done);
    let file = client.proof(&job.id).await.unwrap();
    assert_eq!(file.public_inputs.transitions, 1);
    let cfg: statesync_circuits::config::ChainConfig = serde_json::from_value(chain.clone()).unwrap();
    let prover = test_prover!(CpuHal);
    assert_eq!(prover.batch_verifier(&cfg.shape).unwrap().vk_hash, file.vk_hash);
    let proof = file.batch_proof().unwrap();
    assert!(prover.verify_batch(&cfg.shape, &proof).unwrap(), "the served proof verifies");
    let mut bad = proof.clone();
    bad.proof[64] ^= 1;
    assert!(!prover.verify_batch(&cfg.shape, &bad).unwrap(), "a tampered byte does not");
    let bin = api
        .http
        .get(format!("{}/v1/jobs/{}/proof", server.url, job.id))
        .bearer_auth(&key)
        .header("accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(bin.headers().get("content-type").unwrap(), "application/octet-stream");
    let decoded: statesync_prover::batch::ProofFile = bincode::deserialize(&bin.bytes().await.unwrap()).unwrap();
    assert_eq!(decoded, file);

    // the served bodies are instances of the document's schemas
    let doc: Value = anon.get(format!("{}/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    let (_, served_job) = api.get(&format!("/v1/jobs/{}", job.id)).await;
    let (_, served_chain) = api.get("/v1/chains/tiny").await;
    let (s, keys) = api.get("/v1/chains/tiny/vk").await;
    assert_eq!(s, StatusCode::OK, "{keys}");
    for (name, body) in
        [("Job", &served_job), ("ChainRecord", &served_chain), ("ProofFile", &json!(file)), ("ChainKeys", &keys)]
    {
        assert_eq!(errors(&validator(&doc, name), body), Vec::<String>::new(), "{name}: {body}");
    }

    // verifying with the served keys alone: no SRS, no key generation
    assert_eq!(keys["batch"]["vk_hash"].as_str(), Some(file.vk_hash.as_str()));
    assert!(keys["epoch"].is_null(), "no epoch key is made yet: {}", keys["epoch"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let vk_file = elsewhere.path().join("vk.json");
    std::fs::write(&vk_file, keys.to_string()).unwrap();
    let mut tampered = file.clone();
    tampered.proof.replace_range(128..130, if &file.proof[128..130] == "00" { "01" } else { "00" });
    for (name, proof, valid) in [("proof.json", &file, true), ("tampered.json", &tampered, false)] {
        let path = elsewhere.path().join(name);
        std::fs::write(&path, serde_json::to_string(proof).unwrap()).unwrap();
        let t = Instant::now();
        let out = Command::new(BIN)
            .args(["verify", "--vk"])
            .arg(&vk_file)
            .arg(&path)
            .current_dir(elsewhere.path())
            .env("STATESYNC_CACHE_DIR", elsewhere.path().join("cache"))
            .output()
            .unwrap();
        let code = out.status.code();
        assert_eq!(code, Some(if valid { 0 } else { 1 }), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("verify --vk {name}: exit {code:?} in {:.2?}", t.elapsed());
    }
    let made: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(made.len(), 3, "verify --vk wrote nothing (no SRS, no keys, no data directory): {made:?}");

    // jobs: list, filter, pagination, cancel
    let (s, page) = api.get("/v1/jobs?chain=tiny&limit=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page2) = api.get(&format!("/v1/jobs?chain=tiny&limit=1&cursor={cursor}")).await;
    assert_eq!(page2["jobs"][0]["seq"], 1);
    assert_eq!(api.get("/v1/jobs?state=sleeping").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(api.get("/v1/jobs?cursor=abc").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(api.get("/v1/jobs/nope").await.0, StatusCode::NOT_FOUND);
    let (s, _, _) = api.send(reqwest::Method::DELETE, &format!("/v1/jobs/{}", job.id), None, &[]).await;
    assert_eq!(s, StatusCode::CONFLICT, "a finished job cannot be cancelled");

    // operations
    assert_eq!(anon.get(format!("{}/healthz", server.url)).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(anon.get(format!("{}/readyz", server.url)).send().await.unwrap().status(), StatusCode::OK);
    let metrics = anon.get(format!("{}/metrics", server.url)).send().await.unwrap().text().await.unwrap();
    for m in [
        "statesync_jobs{state=\"done\"} 2",
        "statesync_proofs_total 2",
        "statesync_job_stage_seconds",
        "statesync_http_requests_total",
    ] {
        assert!(metrics.contains(m), "{m} missing from /metrics");
    }
    let spec: Value = anon.get(format!("{}/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    assert!(spec["paths"]["/v1/chains/{chain}/batches"]["post"].is_object());
    let (_, devices) = api.get("/v1/devices").await;
    assert_eq!((devices["backend"].as_str(), devices["gpus"].as_array().map(Vec::len)), (Some("cpu"), Some(0)));
    assert_eq!(api.get("/no/such/route").await.0, StatusCode::NOT_FOUND);
}

/// A validator of the document's schema `name` (its references resolve
/// within the document), for request and response bodies alike.
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    root["$ref"] = format!("#/components/schemas/{name}").into();
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("schema {name} compiles: {e}"))
}

/// Why `value` is not an instance of `v` (nothing when it is).
fn errors(v: &jsonschema::Validator, value: &Value) -> Vec<String> {
    v.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path)).collect()
}

/// The document's bodies are the decoders' formats: `examples/` are valid
/// instances, and what the decoders refuse as malformed the schemas refuse.
#[test]
fn the_examples_are_valid_bodies_and_malformed_ones_are_not() {
    use statesync_circuits::examples::{BATCH_INVALID_JSON, BATCH_VALID_JSON, CHAIN_JSON, INVALID_BY_RULE};
    let doc = serde_json::to_value(statesync_api::openapi::spec()).unwrap();
    let body = |path: &str| doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
    assert_eq!(body("/v1/chains")["$ref"], "#/components/schemas/ChainConfig");
    assert_eq!(body("/v1/chains/{chain}/batches")["$ref"], "#/components/schemas/Batch");
    let (chain, batch) = (validator(&doc, "ChainConfig"), validator(&doc, "Batch"));
    let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    assert_eq!(errors(&chain, &json(CHAIN_JSON)), Vec::<String>::new(), "examples/chain.json");
    let batches = [BATCH_VALID_JSON, BATCH_INVALID_JSON].into_iter().chain(INVALID_BY_RULE.iter().map(|e| e.2));
    for (i, text) in batches.enumerate() {
        assert_eq!(errors(&batch, &json(text)), Vec::<String>::new(), "example batch {i}");
    }
    // what the decoders refuse as malformed, the schemas refuse too
    let edit = |text: &str, f: &dyn Fn(&mut Value)| {
        let mut v = json(text);
        f(&mut v);
        v
    };
    let bad_chains = [
        edit(CHAIN_JSON, &|v| v["colour"] = "red".into()),
        edit(CHAIN_JSON, &|v| v["chain_id"] = "../evil/x".into()),
        edit(CHAIN_JSON, &|v| v["markets"][0]["mark_price"] = "1.0000001".into()),
        edit(CHAIN_JSON, &|v| v["oracles"]["keys"][0] = "0xnothex".into()),
        edit(CHAIN_JSON, &|v| v.as_object_mut().unwrap().remove("shape").map(drop).unwrap()),
    ];
    for v in &bad_chains {
        assert!(!chain.is_valid(v), "{v}");
        assert!(statesync_circuits::config::ChainConfig::from_json(&v.to_string()).is_err(), "{v}");
    }
    let bad_batches = [
        edit(BATCH_VALID_JSON, &|v| v["transitions"][0]["type"] = "bogus".into()),
        edit(BATCH_VALID_JSON, &|v| v["transitions"][0]["extra"] = 1.into()),
        edit(BATCH_VALID_JSON, &|v| v["transitions"][0]["amount"] = 1.5.into()),
        edit(BATCH_VALID_JSON, &|v| v.as_object_mut().unwrap().remove("seq").map(drop).unwrap()),
    ];
    for v in &bad_batches {
        assert!(!batch.is_valid(v), "{v}");
        assert!(statesync_circuits::transition::Batch::from_json(&v.to_string()).is_err(), "{v}");
    }
    // a decimal's pattern is what the parser reads
    let decimal = validator(&doc, "Decimal6");
    for text in
        ["64250.25", "-0.5", ".5", "+7", "1.", "0.000001", "", "-", ".", "1e5", "1.2.3", "--1", "1.0000001", " 1"]
    {
        let parsed = text.parse::<statesync_circuits::fixed::Fx6>().is_ok();
        assert_eq!(decimal.is_valid(&text.into()), parsed, "{text:?}");
    }
    assert!(decimal.is_valid(&7.into()) && !decimal.is_valid(&7.5.into()), "whole units as a JSON integer");
}

/// schemathesis (installed into `.tools/` by `scripts/tools`) against the
/// document the server serves: every check, about two minutes, any failure
/// fails the test with schemathesis's report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_against_the_served_document() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let st = here.join("../.tools/schemathesis/bin/st");
    assert!(st.exists(), "{} is missing: run scripts/tools", st.display());
    let (_tmp, key, server, api) =
        fresh_server(&["--workers", "0", "--rate-limit", "1000000", "--rate-burst", "1000000"]);
    // a chain and a batch, so that their routes have something to find
    assert_eq!(api.post("/v1/chains", &tiny_chain("tiny", 1, 3)).await.0, StatusCode::CREATED);
    assert_eq!(api.post("/v1/chains/tiny/batches", &deposit("tiny", 0, 5)).await.0, StatusCode::ACCEPTED);
    let out = tokio::process::Command::new(st)
        .arg("--config-file")
        .arg(here.join("tests/schemathesis.toml"))
        .args(["--no-color", "run", &format!("{}/v1/openapi.json", server.url), "--checks", "all"])
        .args(["--max-time", "100", "--seed", "20261203", "--workers", "1", "--request-timeout", "45"])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found failures (report above)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429() {
    let (_tmp, _key, _server, api) = fresh_server(&["--rate-limit", "1", "--rate-burst", "3"]);
    let mut statuses = vec![];
    for _ in 0..6 {
        statuses.push(api.send(reqwest::Method::GET, "/v1/jobs", None, &[]).await);
    }
    let limited =
        statuses.iter().find(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS).expect("the burst is exhausted");
    assert_eq!(limited.1["type"], "rate_limited");
    assert!(limited.2.get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_proof_then_restart_proves_once() {
    let lease = ["--lease-secs", "2"];
    let (tmp, key, mut server, api) = fresh_server(&lease);
    let data = tmp.path();
    // a larger shape, so that proving lasts long enough to be interrupted
    assert_eq!(api.post("/v1/chains", &tiny_chain("slow", 4, 8)).await.0, StatusCode::CREATED);
    let (s, accepted) = api.post("/v1/chains/slow/batches", &deposit("slow", 0, 5)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let id = accepted["job_id"].as_str().unwrap().to_string();
    api.wait_state(&id, &["proving"]).await;
    server.kill9();

    let server = Server::start(data, &lease);
    let client = Client::new(&server.url, Some(key.clone()));
    let job = wait_done(&client, &id).await;
    assert_eq!(job.state, statesync_api::store::JobState::Done, "{job:?}");
    assert_eq!(job.attempts, 2, "the interrupted attempt counts, the job is proven by the second");
    assert!(client.proof(&id).await.is_ok());
    let api = Api::new(&server, &key);
    let (_, page) = api.get("/v1/jobs?chain=slow").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "nothing duplicated");
    // the chain state survived too: the next batch chains on
    let (s, next) = api.post("/v1/chains/slow/batches", &deposit("slow", 1, 5)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(next["old_root"], accepted["new_root"]);
}

/// The service on PostgreSQL (`--database-url`, a schema of its own, its API
/// key added there by `statesync keys --database-url`): a
/// batch accepted and proven, the process killed with -9, and the restarted
/// one continuing the chain from the database (no SQLite file is written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_on_postgresql_proves_and_keeps_its_chain() {
    let pg = PgSchema::create().await;
    let (url, key) = (pg.url.clone(), pg.add_key());
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--database-url", url.as_str()];
    let mut server = Server::start(tmp.path(), &args);
    let api = Api::new(&server, &key);
    let anon = reqwest::Client::new();
    let unauthorized = anon.get(format!("{}/v1/jobs", server.url)).send().await.unwrap().status();
    assert_eq!(unauthorized, StatusCode::UNAUTHORIZED, "keys are checked against PostgreSQL");
    assert_eq!(api.post("/v1/chains", &tiny_chain("pg", 1, 3)).await.0, StatusCode::CREATED);
    let (s, first) = api.post("/v1/chains/pg/batches", &deposit("pg", 0, 5)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let client = Client::new(&server.url, Some(key.clone()));
    let job = wait_done(&client, first["job_id"].as_str().unwrap()).await;
    assert_eq!(job.state, statesync_api::store::JobState::Done, "{job:?}");
    server.kill9();

    let server = Server::start(tmp.path(), &args);
    let api = Api::new(&server, &key);
    let (_, chain) = api.get("/v1/chains/pg").await;
    assert_eq!((chain["next_seq"].as_u64(), &chain["state_root"]), (Some(1), &first["new_root"]), "{chain}");
    let (s, next) = api.post("/v1/chains/pg/batches", &deposit("pg", 1, 5)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{next}");
    assert_eq!(next["old_root"], first["new_root"]);
    let client = Client::new(&server.url, Some(key));
    assert!(client.proof(first["job_id"].as_str().unwrap()).await.is_ok(), "the proof is in PostgreSQL");
    assert!(!tmp.path().join("statesync.db").exists(), "no SQLite database beside it");
    drop(server);
    pg.drop_schema().await;
}

/// Cancelling a running job stops its proof and frees the worker within
/// seconds; the batch stays accepted, and a retry proves it (the hole
/// healed); a finished job is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_proof_frees_the_worker_and_retry_heals_the_hole() {
    let (_tmp, key, server, api) = fresh_server(&[]);
    assert_eq!(api.post("/v1/chains", &tiny_chain("hole", 4, 8)).await.0, StatusCode::CREATED);
    let (_, first) = api.post("/v1/chains/hole/batches", &deposit("hole", 0, 5)).await;
    let (_, second) = api.post("/v1/chains/hole/batches", &deposit("hole", 1, 6)).await;
    let (a, b) = (first["job_id"].as_str().unwrap().to_string(), second["job_id"].as_str().unwrap().to_string());
    api.wait_state(&a, &["proving"]).await;
    let cancelled_at = Instant::now();
    let (s, v, _) = api.send(reqwest::Method::DELETE, &format!("/v1/jobs/{a}"), None, &[]).await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("cancelled")), "{v}");
    // the only worker takes the next job: the cancelled proof stopped
    loop {
        let (_, job) = api.get(&format!("/v1/jobs/{b}")).await;
        if job["state"] != "queued" {
            break;
        }
        assert!(cancelled_at.elapsed() < Duration::from_secs(10), "the worker is still busy with the cancelled job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("cancel to the worker's next claim: {:?}", cancelled_at.elapsed());
    let client = Client::new(&server.url, Some(key));
    assert_eq!(wait_done(&client, &b).await.state, statesync_api::store::JobState::Done);
    assert_eq!(api.get(&format!("/v1/jobs/{a}")).await.1["state"], "cancelled", "no late proof revived it");
    // the hole is healed by a retry; a done job is not retried
    let (s, v) = api.post(&format!("/v1/jobs/{a}/retry"), &json!({})).await;
    assert_eq!((s, v["state"].as_str(), v["attempts"].as_u64()), (StatusCode::OK, Some("queued"), Some(0)), "{v}");
    let job = wait_done(&client, &a).await;
    assert_eq!((job.state, job.attempts), (statesync_api::store::JobState::Done, 1));
    let proof = client.proof(&a).await.unwrap();
    let public = serde_json::to_value(proof.public_inputs).unwrap();
    assert_eq!((proof.seq, &public["new_root"]), (0, &first["new_root"]), "the accepted batch, proven");
    assert_eq!(api.post(&format!("/v1/jobs/{b}/retry"), &json!({})).await.0, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sequencers_on_four_chains() {
    const CHAINS: usize = 4;
    const PER_CHAIN: u64 = 8;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let key = add_key(data);
    let server = Server::start(data, &["--rate-burst", "10000", "--rate-limit", "10000"]);
    let api = std::sync::Arc::new(Api::new(&server, &key));
    for c in 0..CHAINS {
        assert_eq!(api.post("/v1/chains", &tiny_chain(&format!("c{c}"), 1, 3)).await.0, StatusCode::CREATED);
    }
    // each sequencer submits its batches in order, every one twice at once
    let mut tasks = vec![];
    for c in 0..CHAINS {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let chain = format!("c{c}");
            let mut ids = vec![];
            for seq in 0..PER_CHAIN {
                let batch = deposit(&chain, seq, seq + 1);
                let path = format!("/v1/chains/{chain}/batches");
                let (a, b) = tokio::join!(api.post(&path, &batch), api.post(&path, &batch));
                assert_eq!((a.0, b.0), (StatusCode::ACCEPTED, StatusCode::ACCEPTED), "{} {}", a.1, b.1);
                assert_eq!(a.1["job_id"], b.1["job_id"], "a duplicate is the same job");
                ids.push(a.1["job_id"].as_str().unwrap().to_string());
            }
            ids
        }));
    }
    let mut all = std::collections::HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(all.insert(id), "job ids are unique");
        }
    }
    assert_eq!(all.len(), CHAINS * PER_CHAIN as usize);

    // every job is proven, in sequence order per chain
    let deadline = Instant::now() + Duration::from_secs(1500);
    loop {
        let (_, page) = api.get("/v1/jobs?state=done&limit=500").await;
        if page["jobs"].as_array().unwrap().len() == all.len() {
            break;
        }
        assert!(Instant::now() < deadline, "not all jobs were proven in time");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for c in 0..CHAINS {
        let (_, page) = api.get(&format!("/v1/jobs?chain=c{c}&limit=500")).await;
        let jobs = page["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), PER_CHAIN as usize);
        let mut last_finish = 0;
        for (seq, j) in jobs.iter().enumerate() {
            assert_eq!((j["seq"].as_u64(), j["attempts"].as_u64()), (Some(seq as u64), Some(1)));
            let started = j["started_at"].as_i64().unwrap();
            assert!(
                started >= last_finish,
                "chain c{c}: seq {seq} started before seq {} finished",
                seq.saturating_sub(1)
            );
            last_finish = j["finished_at"].as_i64().unwrap();
        }
        let (_, chain) = api.get(&format!("/v1/chains/c{c}")).await;
        assert_eq!(chain["next_seq"], PER_CHAIN);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_the_running_job_back() {
    let (tmp, key, server, api) = fresh_server(&[]);
    let data = tmp.path();
    assert_eq!(api.post("/v1/chains", &tiny_chain("term", 4, 8)).await.0, StatusCode::CREATED);
    let (_, accepted) = api.post("/v1/chains/term/batches", &deposit("term", 0, 5)).await;
    let id = accepted["job_id"].as_str().unwrap().to_string();
    api.wait_state(&id, &["witness", "proving"]).await;
    // a client following the job's events keeps its stream open
    let events = api.http.get(format!("{}/v1/jobs/{id}/events", server.url)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let stream = tokio::spawn(tokio::time::timeout(Duration::from_secs(30), events.text()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut server = server;
    let signalled = Instant::now();
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        (s, server)
    })
    .await
    .unwrap();
    let took = signalled.elapsed();
    assert!(exit.0.success(), "graceful shutdown exits 0: {:?}", exit.0);
    assert!(took < Duration::from_secs(10), "exited {took:?} after SIGTERM with an event stream open");
    eprintln!("SIGTERM to exit with an event stream open: {took:?}");
    let text = stream.await.unwrap().expect("the stream ends at shutdown").unwrap();
    assert!(text.contains("event: shutdown"), "the stream's last event says why it ends: {text}");

    let server = Server::start(data, &[]);
    let api = Api::new(&server, &key);
    let (_, job) = api.get(&format!("/v1/jobs/{id}")).await;
    // not finished: waiting, or taken again by the new process (setup is the
    // first stage of a shape's first job since stop 31)
    assert!(["queued", "setup", "witness", "proving"].iter().any(|s| job["state"] == *s), "{job}");
    let job = wait_done(&Client::new(&server.url, Some(key)), &id).await;
    assert_eq!(
        (job.state, job.attempts),
        (statesync_api::store::JobState::Done, 1),
        "the released attempt is not counted"
    );
}

/// Finality through the service on a quiet chain: automatic epochs (N = 2,
/// one level under the wrapper, a maximum wait of 2 s). Its one batch is
/// sealed by time into a level-1 epoch of one batch (Poseidon transcript,
/// no calldata), which is wrapped (EVM transcript, calldata). `statesync
/// verify --vk` verifies both with the keys the service serves. On an EVM
/// with Ethereum's size limits, the verifier that `statesync evm-verifier`
/// writes deploys, and `StateSync` (written beside it, deployed with the
/// constructor arguments it prints) refuses a tampered proof and short
/// calldata, takes the service's calldata and then refuses it replayed. Refused requests too.
/// (The tree above level 1 and its sealing: the store's and
/// `epochs_seal_by_count_and_by_time_into_a_tree`; level-2 proofs: the
/// prover's epoch test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_chains_batch_is_wrapped_by_time_and_synced_on_the_evm() {
    use statesync_circuits::witness::fr_hex;
    use statesync_prover::evm::{
        compile_solidity, selector, solcjs, state_sync_constructor_args, submit_calldata, word, Evm,
    };

    let dir = tempfile::tempdir().unwrap();
    let key = add_key(dir.path());
    let flags = ["--auto-epochs", "--epoch-size", "2", "--epoch-levels", "1", "--epoch-max-wait", "2"];
    let server = Server::start(dir.path(), &flags);
    let api = Api::new(&server, &key);
    let client = Client::new(&server.url, Some(key.clone()));
    // the prover's epoch test wraps this chain's epochs too: one key
    let chain = tiny_chain("epoch-chain", 1, 3);
    assert_eq!(api.post("/v1/chains", &chain).await.0, StatusCode::CREATED);
    let (s, v) = api.post("/v1/chains/epoch-chain/batches", &deposit("epoch-chain", 0, 5)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let job = v["job_id"].as_str().unwrap().to_string();

    // refused requests
    let range = |a: u64, b: u64| json!({"first_seq": a, "last_seq": b});
    let (s, v) = api.post("/v1/chains/epoch-chain/epochs", &range(0, 2)).await;
    assert_eq!((s, v["type"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_epoch")), "{v}");
    let (s, v) = api.post("/v1/chains/epoch-chain/epochs", &range(1, 1)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "batch 1 is not accepted yet: {v}");
    assert_eq!(api.post("/v1/chains/nope/epochs", &range(0, 0)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.post("/v1/chains/epoch-chain/epochs", &json!({"first": 0})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(api.get("/v1/chains/epoch-chain/epochs?level=x").await.0, StatusCode::BAD_REQUEST);

    let batch = wait_done(&client, &job).await;
    // sealed by time: a level-1 epoch of one batch, and its wrapper
    let deadline = Instant::now() + Duration::from_secs(60);
    let wrapper = loop {
        let (s, v) = api.get("/v1/chains/epoch-chain/epochs?wrapper=true").await;
        assert_eq!(s, StatusCode::OK);
        if let Some(e) = v.as_array().unwrap().first() {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "nothing sealed by time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id = wrapper["id"].as_str().unwrap().to_string();
    let resp = api
        .http
        .get(format!("{}/v1/chains/epoch-chain/epochs/{id}/events", server.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = tokio::time::timeout(Duration::from_secs(2400), resp.text()).await.expect("wrapped in time").unwrap();
    assert!(text.contains("event: done"), "{text}");
    let (_, all) = api.get("/v1/chains/epoch-chain/epochs").await;
    let [epoch, w] = &all.as_array().unwrap()[..] else { panic!("one epoch and its wrapper: {all}") };
    for (e, wrapper, transcript) in [(epoch, false, "poseidon"), (w, true, "evm")] {
        assert_eq!(e["state"], "done", "{e}");
        assert_eq!((e["first_seq"].as_u64(), e["last_seq"].as_u64()), (Some(0), Some(0)), "{e}");
        assert_eq!((e["level"].as_u64(), e["size"].as_u64()), (Some(1), Some(2)), "{e}");
        assert_eq!((e["wrapper"].as_bool(), e["transcript"].as_str()), (Some(wrapper), Some(transcript)), "{e}");
        assert_eq!(e["public_inputs"]["old_root"].as_str(), Some(batch.old_root.as_str()));
        assert_eq!(e["public_inputs"]["new_root"].as_str(), Some(batch.new_root.as_str()));
        assert_eq!(
            (e["public_inputs"]["transitions"].as_u64(), e["public_inputs"]["batches"].as_u64()),
            (Some(1), Some(1))
        );
    }
    assert!(epoch["calldata"].is_null(), "only the wrapper's proof is for the EVM");
    assert_eq!(w["id"].as_str(), Some(id.as_str()));
    // requesting the sealed range returns its epoch
    let (s, v) = api.post("/v1/chains/epoch-chain/epochs", &range(0, 0)).await;
    assert_eq!((s, &v["id"]), (StatusCode::OK, &epoch["id"]));
    assert_eq!(api.get(&format!("/v1/chains/other/epochs/{id}")).await.0, StatusCode::NOT_FOUND);

    // both verify with the keys the service serves, and nothing else
    let (s, keys) = api.get("/v1/chains/epoch-chain/vk").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys["epoch"]["vk_hash"], epoch["vk_hash"], "{}", keys["epoch"]);
    assert_eq!(keys["wrapper"]["vk_hash"], w["vk_hash"], "{}", keys["wrapper"]);
    let vk_file = dir.path().join("vk.json");
    std::fs::write(&vk_file, keys.to_string()).unwrap();
    let mut wrong_root = w.clone();
    let mut root = wrong_root["instances"][12].as_str().unwrap().to_string(); // the old root
    let last = if root.ends_with('0') { "1" } else { "0" };
    root.replace_range(root.len() - 1.., last);
    wrong_root["instances"][12] = root.into();
    for (name, e, code) in [("epoch.json", epoch, 0), ("wrapper.json", w, 0), ("wrong-root.json", &wrong_root, 1)] {
        let path = dir.path().join(name);
        std::fs::write(&path, e.to_string()).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args(["verify", "--vk"])
            .arg(&vk_file)
            .arg(&path)
            .current_dir(elsewhere.path())
            .env("STATESYNC_CACHE_DIR", elsewhere.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let calldata = hex::decode(w["calldata"].as_str().unwrap()).unwrap();
    let proof = hex::decode(w["proof"].as_str().unwrap()).unwrap();
    let instances = statesync_prover::epoch::EPOCH_INSTANCES;
    assert_eq!(calldata.len(), instances * 32 + proof.len(), "the {instances} instances, then the proof");

    // the chain's contracts from the CLI, sharing the server's SRS and key caches
    let chain_file = dir.path().join("chain.json");
    std::fs::write(&chain_file, chain.to_string()).unwrap();
    let sol = dir.path().join("Verifier.sol");
    let out = Command::new(BIN)
        .args(["evm-verifier", "--epoch-size", "2", "--epoch-levels", "1", "--chain"])
        .arg(&chain_file)
        .arg("--out")
        .arg(&sol)
        .arg("--data-dir")
        .arg(dir.path())
        .env("STATESYNC_CACHE_DIR", test_cache_dir!())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["verifier_vk_sha256"], w["vk_hash"], "{printed}");
    assert_eq!(printed["constructor"]["chainTag"], keys["chain_tag"], "{printed}");
    let word_of = |v: &Value| fr_hex::from_hex(v.as_str().unwrap()).unwrap();
    let genesis = word_of(&printed["constructor"]["genesisRoot"]);
    assert_eq!(fr_hex::to_hex(&genesis), batch.old_root, "StateSync starts at the chain's genesis root");
    let compiled =
        |path: &std::path::Path| compile_solidity(&solcjs().unwrap(), &std::fs::read_to_string(path).unwrap());
    let mut evm = Evm::new(); // EIP-170 and EIP-3860 enforced
    let verifier = evm.deploy(compiled(&sol).unwrap()).unwrap();
    eprintln!("wrapper verifier: {} bytes deployed", evm.code_size(verifier));
    let mut code = compiled(&sol.with_file_name("StateSync.sol")).unwrap();
    code.extend(state_sync_constructor_args(
        verifier.into_array(),
        word_of(&printed["constructor"]["chainTag"]),
        genesis,
        0,
    ));
    let sync = evm.deploy(code).unwrap();
    let mut tampered = calldata.clone();
    let end = tampered.len() - 1;
    tampered[end] ^= 1;
    let refused = evm.call(sync, submit_calldata(&tampered)).unwrap();
    assert!(!refused.success && refused.output.starts_with(&selector("InvalidProof()")), "{refused:?}");
    // fewer bytes than the 20 public inputs
    let short = evm.call(sync, submit_calldata(&calldata[..20 * 32 - 1])).unwrap();
    assert!(!short.success && short.output.starts_with(&selector("ShortProof()")), "{short:?}");
    let ok = evm.call(sync, submit_calldata(&calldata)).unwrap();
    assert!(ok.success, "StateSync takes the service's calldata: {ok:?}");
    eprintln!("StateSync.submit of the service's wrapper: {} gas", ok.gas_used);
    let root = evm.call(sync, selector("stateRoot()").to_vec()).unwrap();
    assert_eq!(root.output, word(fr_hex::from_hex(&batch.new_root).unwrap()));
    let replay = evm.call(sync, submit_calldata(&calldata)).unwrap();
    assert!(!replay.success && replay.output.starts_with(&selector("WrongStart(uint256,uint256)")), "{replay:?}");
}

/// A cluster's database and API nodes: a PostgreSQL schema of its own, an
/// API key in it, and `nodes` API nodes on it that prove nothing (`--workers
/// 0`), with their logs in the returned directory.
async fn api_nodes(nodes: usize) -> (PgSchema, String, tempfile::TempDir, Vec<Server>) {
    let pg = PgSchema::create().await;
    let key = pg.add_key();
    let tmp = tempfile::tempdir().unwrap();
    let servers =
        (0..nodes).map(|_| Server::start(tmp.path(), &["--database-url", &pg.url, "--workers", "0"])).collect();
    (pg, key, tmp, servers)
}

/// A chain's jobs in seq order, checked to be one per seq from 0 and to
/// chain their roots (each batch starts at the state the one before left).
async fn chained_jobs(api: &Api, chain: &str) -> Vec<Value> {
    let (s, page) = api.get(&format!("/v1/jobs?chain={chain}&limit=500")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let mut jobs = page["jobs"].as_array().unwrap().clone();
    jobs.sort_by_key(|j| j["seq"].as_u64());
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(job["seq"].as_u64(), Some(i as u64), "one job per seq of {chain}, none missing");
        if i > 0 {
            assert_eq!(job["old_root"], jobs[i - 1]["new_root"], "{chain} seq {i} starts where {} ended", i - 1);
        }
    }
    jobs
}

/// The value of an unlabelled counter in a Prometheus text page (0 if absent).
async fn counter(url: &str, name: &str) -> f64 {
    let page = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// A cluster on PostgreSQL: one API node that does not prove (`--workers
/// 0`) and two `statesync worker` processes prove 40 jobs of two chains,
/// each exactly once (one attempt, one proof, counted by the workers'
/// metrics) and in seq order per chain (a job starts after the one before
/// it finished).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_prove_every_job_once_in_order() {
    let (pg, key, tmp, mut nodes) = api_nodes(1).await;
    let node = nodes.remove(0);
    let api = Api::new(&node, &key);
    let workers: Vec<Server> =
        (0..2).map(|_| Server::worker(tmp.path(), &pg.url, &["--backend", "cpu", "--lease-secs", "10"])).collect();
    let devices: Value = reqwest::get(format!("{}/v1/devices", workers[0].url)).await.unwrap().json().await.unwrap();
    assert_eq!(devices["proving"][0]["label"], "cpu", "{devices}");
    assert_eq!(devices["proving"][0]["in_rotation"], true, "{devices}");
    let chains = ["east", "west"];
    for c in chains {
        assert_eq!(api.post("/v1/chains", &tiny_chain(c, 1, 3)).await.0, StatusCode::CREATED);
    }
    // two sequencers, one per chain, 20 batches each
    let submit = |chain: &'static str| {
        let api = Api { http: reqwest::Client::new(), url: api.url.clone(), key: key.clone() };
        async move {
            for seq in 0..20 {
                let (s, v) = api.post(&format!("/v1/chains/{chain}/batches"), &deposit(chain, seq, 1 + seq)).await;
                assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            }
        }
    };
    tokio::join!(submit(chains[0]), submit(chains[1]));
    let client = Client::new(&node.url, Some(key.clone()));
    for c in chains {
        for job in chained_jobs(&api, c).await {
            let done = wait_done(&client, job["id"].as_str().unwrap()).await;
            assert_eq!(done.state, statesync_api::store::JobState::Done, "{done:?}");
            assert_eq!(done.attempts, 1, "proven once: {done:?}");
        }
        let jobs = chained_jobs(&api, c).await;
        assert_eq!(jobs.len(), 20);
        for pair in jobs.windows(2) {
            assert!(
                pair[1]["started_at"].as_i64() >= pair[0]["finished_at"].as_i64(),
                "seq order on {c}: {} started before {} finished",
                pair[1]["seq"],
                pair[0]["seq"]
            );
        }
    }
    let mut proofs = vec![];
    for w in &workers {
        proofs.push(counter(&w.url, "statesync_proofs_total").await);
    }
    assert_eq!(proofs.iter().sum::<f64>(), 40.0, "40 proofs in all, none twice: {proofs:?}");
    assert!(proofs.iter().all(|&n| n > 0.0), "both workers proved: {proofs:?}");
    drop((node, workers));
    pg.drop_schema().await;
}

/// `kill -9` of a worker process mid-proof: the other worker proves the job
/// once its lease expires (attempt 2, one job, one proof).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_proof_leaves_its_job_to_the_other() {
    let (pg, key, tmp, mut nodes) = api_nodes(1).await;
    let node = nodes.remove(0);
    let api = Api::new(&node, &key);
    let worker_args = ["--backend", "cpu", "--lease-secs", "2"];
    let mut first = Server::worker(tmp.path(), &pg.url, &worker_args);
    // a larger shape, so that proving lasts long enough to be interrupted
    assert_eq!(api.post("/v1/chains", &tiny_chain("slow", 4, 8)).await.0, StatusCode::CREATED);
    let (s, accepted) = api.post("/v1/chains/slow/batches", &deposit("slow", 0, 5)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["job_id"].as_str().unwrap().to_string();
    api.wait_state(&id, &["proving"]).await;
    let second = Server::worker(tmp.path(), &pg.url, &worker_args);
    first.kill9();
    let job = wait_done(&Client::new(&node.url, Some(key.clone())), &id).await;
    assert_eq!(job.state, statesync_api::store::JobState::Done, "{job:?}");
    assert_eq!(job.attempts, 2, "the killed attempt counts, the other worker's proves it: {job:?}");
    assert_eq!(chained_jobs(&api, "slow").await.len(), 1, "nothing duplicated");
    assert_eq!(counter(&second.url, "statesync_proofs_total").await, 1.0);
    assert_eq!(counter(&second.url, "statesync_lease_expiries_total").await, 1.0, "the survivor requeued it");
    drop((node, second));
    pg.drop_schema().await;
}

/// Two API nodes on one database take the same chain's batches at once:
/// each seq is accepted exactly once. The same batch sent to both is one
/// job (the second answer a replay of it); different batches with one seq:
/// one is accepted, the other refused (409). A node whose cached state is
/// behind (the other node accepted the last batches alone) follows the
/// database: its next acceptance chains on the other's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_nodes_accept_each_seq_exactly_once() {
    let (pg, key, _tmp, nodes) = api_nodes(2).await;
    let (a, b) = (Api::new(&nodes[0], &key), Api::new(&nodes[1], &key));
    assert_eq!(a.post("/v1/chains", &tiny_chain("twin", 1, 3)).await.0, StatusCode::CREATED);
    let path = "/v1/chains/twin/batches";
    let mut accepted = 0;
    for seq in 0..24u64 {
        let same = seq % 2 == 0;
        let (ba, bb) = (deposit("twin", seq, 1 + seq), deposit("twin", seq, if same { 1 + seq } else { 100 + seq }));
        let ((sa, va), (sb, vb)) = tokio::join!(a.post(path, &ba), b.post(path, &bb));
        if same {
            assert_eq!((sa, sb), (StatusCode::ACCEPTED, StatusCode::ACCEPTED), "seq {seq}: {va} {vb}");
            assert_eq!(va["job_id"], vb["job_id"], "seq {seq}: one job for the same batch");
        } else {
            let mut statuses = [sa, sb];
            statuses.sort();
            assert_eq!(statuses, [StatusCode::ACCEPTED, StatusCode::CONFLICT], "seq {seq}: {va} {vb}");
        }
        accepted += 1;
    }
    // node A alone moves the chain on; node B's cache is behind and must follow
    for seq in 24..27u64 {
        assert_eq!(a.post(path, &deposit("twin", seq, 1)).await.0, StatusCode::ACCEPTED);
    }
    let (s, v) = b.post(path, &deposit("twin", 27, 1)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "node B checks its cached state against the database: {v}");
    accepted += 4;
    let jobs = chained_jobs(&a, "twin").await;
    assert_eq!(jobs.len(), accepted, "every seq exactly once");
    for api in [&a, &b] {
        let (_, chain) = api.get("/v1/chains/twin").await;
        assert_eq!(chain["next_seq"].as_u64(), Some(accepted as u64));
        assert_eq!(chain["state_root"], jobs.last().unwrap()["new_root"]);
    }
    drop(nodes);
    pg.drop_schema().await;
}

/// `kill -9` of an API node while a sequencer submits as fast as it is
/// answered: after the restart the chain is whole. Every acknowledged
/// batch is stored; the state, the job and the next seq moved together
/// (the jobs chain their roots up to the stored root, the stored accounts
/// hash to it, and the next batch is accepted on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_node_killed_mid_acceptance_leaves_no_half_batch() {
    let (pg, key, tmp, mut nodes) = api_nodes(1).await;
    let mut node = nodes.remove(0);
    let api = Api::new(&node, &key);
    let args = ["--database-url", pg.url.as_str(), "--workers", "0"];
    assert_eq!(api.post("/v1/chains", &tiny_chain("crash", 1, 3)).await.0, StatusCode::CREATED);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sequencer = {
        let (acked, url, key) = (acked.clone(), node.url.clone(), key.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for seq in 0.. {
                let sent = http
                    .post(format!("{url}/v1/chains/crash/batches"))
                    .bearer_auth(&key)
                    .json(&deposit("crash", seq, 1 + seq))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::ACCEPTED => {
                        acked.store(seq + 1, std::sync::atomic::Ordering::SeqCst)
                    }
                    _ => return,
                }
            }
        })
    };
    while acked.load(std::sync::atomic::Ordering::SeqCst) < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(137)).await;
    node.kill9();
    sequencer.await.unwrap();
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst);

    let node = Server::start(tmp.path(), &args);
    let api = Api::new(&node, &key);
    let (_, chain) = api.get("/v1/chains/crash").await;
    let next = chain["next_seq"].as_u64().unwrap();
    assert!(
        next == acked || next == acked + 1,
        "acknowledged {acked}, stored {next}: only the batch in flight may differ"
    );
    let jobs = chained_jobs(&api, "crash").await;
    assert_eq!(jobs.len() as u64, next, "a job for every accepted seq and no other");
    assert_eq!(chain["state_root"], jobs.last().unwrap()["new_root"], "the stored state is the last job's");
    // the restarted node loads the stored accounts (checked against the stored root) and chains on
    let (s, v) = api.post("/v1/chains/crash/batches", &deposit("crash", next, 7)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["old_root"], chain["state_root"]);
    drop(node);
    pg.drop_schema().await;
}

/// A GPU that was lost: every operation fails with a driver error.
#[derive(Debug)]
struct LostGpu;

impl LostGpu {
    fn fail<T>() -> Result<T, ProverError> {
        Err(ProverError::Device(KernelError::Driver("CUDA_ERROR_ILLEGAL_ADDRESS: the device was lost".into())))
    }
}

impl Hal for LostGpu {
    fn name(&self) -> String {
        "cuda (lost)".into()
    }
    fn backend(&self) -> Backend {
        Backend::Cuda
    }
    fn commit(&self, _: &ParamsKZG<Bn256>, _: Bases, _: &[&[Fr]]) -> Result<Vec<G1Affine>, ProverError> {
        Self::fail()
    }
    fn lagrange_to_coeff(&self, _: &EvaluationDomain<Fr>, _: &mut [Vec<Fr>]) -> Result<(), ProverError> {
        Self::fail()
    }
    fn commit_and_interpolate(
        &self,
        _: &ParamsKZG<Bn256>,
        _: &EvaluationDomain<Fr>,
        _: &mut [Vec<Fr>],
    ) -> Result<Vec<G1Affine>, ProverError> {
        Self::fail()
    }
    fn coeff_to_extended_part(
        &self,
        _: &EvaluationDomain<Fr>,
        _: &[&[Fr]],
        _: Fr,
    ) -> Result<Vec<Vec<Fr>>, ProverError> {
        Self::fail()
    }
    fn coeff_to_extended_parts(
        &self,
        _: &EvaluationDomain<Fr>,
        _: &[&[Fr]],
        _: &[Fr],
        _: &mut dyn FnMut(usize, Vec<Vec<Fr>>) -> Result<(), ProverError>,
    ) -> Result<(), ProverError> {
        Self::fail()
    }
    fn quotient_to_coeff(&self, _: &EvaluationDomain<Fr>, _: Vec<Vec<Fr>>) -> Result<Vec<Fr>, ProverError> {
        Self::fail()
    }
    fn batch_invert(&self, _: &mut [Fr]) -> Result<(), ProverError> {
        Self::fail()
    }
}

/// The sealing sweep, without proving: level-1 epochs seal at N accepted
/// batches, or with fewer once their first batch has waited the maximum;
/// level 2 seals at N level-1 epochs or by time the same way; each
/// level-2 epoch gets its wrapper; a request seals the open level-1 epoch
/// early, and one that is not the chain's next range is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_seal_by_count_and_by_time_into_a_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(&tmp.path().join("s.db")).await.unwrap();
    let cfg = ServeArgs {
        data_dir: Some(tmp.path().into()),
        workers: Some(0),
        auto_epochs: true,
        epoch_size: Some(2),
        epoch_levels: Some(2),
        epoch_max_wait: Some(1),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let svc = Service::new(Arc::new(store), cfg, Arc::new(CpuHal));
    svc.create_chain(&examples::tiny_chain("tree", 1, 3)).await.unwrap();
    let submit = |seq: u64| svc.submit("tree", deposit_batch("tree", seq, 1, 5), None);
    let tree = || async {
        let all = EpochFilter { level: None, wrapper: None, from_seq: 0, to_seq: None, limit: 100 };
        let epochs = svc.store.list_epochs("tree", &all).await.unwrap();
        epochs.iter().map(|e| (e.level, e.wrapper, e.first_seq, e.last_seq)).collect::<Vec<_>>()
    };
    let waited = || tokio::time::sleep(Duration::from_millis(1100));
    for seq in 0..3 {
        submit(seq).await.unwrap();
    }
    svc.seal_epochs("tree").await.unwrap();
    assert_eq!(tree().await, [(1, false, 0, 1)], "by count; batch 2 and level 2 have not waited");
    waited().await;
    svc.seal_epochs("tree").await.unwrap();
    let sealed = [(1, false, 0, 1), (2, false, 0, 2), (2, true, 0, 2), (1, false, 2, 2)];
    assert_eq!(tree().await, sealed, "batch 2 by time, level 2 by count (two epochs), its wrapper");
    svc.seal_epochs("tree").await.unwrap();
    assert_eq!(tree().await, sealed, "a sweep seals each range once");
    // a quiet chain's last batch: every level by time
    submit(3).await.unwrap();
    svc.seal_epochs("tree").await.unwrap();
    assert_eq!(tree().await.len(), 4, "batch 3 has not waited");
    waited().await;
    svc.seal_all().await.unwrap();
    let quiet = [(1, false, 3, 3), (2, false, 3, 3), (2, true, 3, 3)];
    assert_eq!(tree().await[4..], quiet);
    assert!(svc.store.unwrapped_chains().await.unwrap().is_empty());
    // requests: the open range seals early; the same range returns its epoch
    submit(4).await.unwrap();
    submit(5).await.unwrap();
    let conflict = svc.request_epoch("tree", 5, 5).await;
    assert!(matches!(&conflict, Err(EpochRequestError::Conflict(m)) if m.contains("starts at seq 4")), "{conflict:?}");
    assert!(matches!(svc.request_epoch("tree", 4, 6).await, Err(EpochRequestError::Invalid(_))), "three batches");
    assert!(matches!(svc.request_epoch("tree", 6, 6).await, Err(EpochRequestError::Invalid(_))), "not accepted");
    let (e, created) = svc.request_epoch("tree", 4, 4).await.unwrap();
    assert!(created && (e.level, e.first_seq, e.last_seq) == (1, 4, 4));
    let (same, created) = svc.request_epoch("tree", 4, 4).await.unwrap();
    assert!(!created && same.id == e.id);
}

/// A device whose every operation fails: each attempt on it fails (the
/// job goes back to the queue at once, its attempt counted), the device
/// leaves the rotation after `DEVICE_FAILURE_LIMIT` errors in a row (its
/// loop ends, `/v1/devices` says so), and a healthy device of the same
/// process proves the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_device_leaves_the_rotation_and_another_proves_its_job() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(&tmp.path().join("s.db")).await.unwrap();
    let cfg = ServeArgs {
        data_dir: Some(tmp.path().into()),
        cache_dir: Some(test_cache_dir!().into()),
        max_attempts: Some(6),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let svc = Arc::new(Service::new(Arc::new(store), cfg, Arc::new(CpuHal)));
    svc.create_chain(&examples::tiny_chain("dev", 1, 3)).await.unwrap();
    let id = svc.submit("dev", deposit_batch("dev", 0, 1, 5), None).await.unwrap().job.id;
    let lost = svc.add_device("cuda:1", svc.prover.with_hal(Arc::new(LostGpu)), 1);
    let lost_loop = tokio::spawn(run_worker(svc.clone(), "w-lost".into(), lost.clone(), svc.stopping.clone()));
    tokio::time::timeout(Duration::from_secs(120), lost_loop).await.expect("the lost device's loop ends").unwrap();
    assert!(!lost.in_rotation());
    let job = svc.store.job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, DEVICE_FAILURE_LIMIT), "{job:?}");
    assert!(job.error.as_deref().unwrap().contains("device was lost"), "{job:?}");
    let report = svc.device_report();
    let lost_report = &report.proving[0];
    assert_eq!((lost_report.label.as_str(), lost_report.in_rotation), ("cuda:1", false), "{report:?}");
    assert_eq!(lost_report.device_failures, u64::from(DEVICE_FAILURE_LIMIT));
    assert!(lost_report.last_error.as_deref().unwrap().contains("device was lost"));

    let cpu = svc.add_device("cpu", svc.prover.clone(), 1);
    tokio::spawn(run_worker(svc.clone(), "w-cpu".into(), cpu.clone(), svc.stopping.clone()));
    let deadline = Instant::now() + Duration::from_secs(300);
    let job = loop {
        let job = svc.store.job(&id).await.unwrap().unwrap();
        if job.state.is_terminal() {
            break job;
        }
        assert!(Instant::now() < deadline, "the healthy device proves the job: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((job.state, job.attempts), (JobState::Done, DEVICE_FAILURE_LIMIT + 1), "{job:?}");
    assert!(svc.store.proof(&id).await.unwrap().is_some());
    let report = svc.device_report();
    assert_eq!(report.proving.iter().map(|d| d.in_rotation).collect::<Vec<_>>(), [false, true], "{report:?}");
    assert_eq!(report.proving[1].failures_in_a_row, 0);
    svc.stopping.cancel();
}

/// A PostgreSQL server of one test's own (initdb in a temporary directory,
/// a free loopback port, trust authentication), so that it can be stopped
/// and started without disturbing the tests that share the local server.
/// As root, its commands run as the `postgres` user (initdb refuses root).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).max()
            })
            .unwrap_or_default(); // else initdb and pg_ctl from PATH
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePostgres { dir, bin, port };
        if pg.as_root() {
            let out = Command::new("chown").args(["-R", "postgres"]).arg(pg.dir.path()).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        pg.run("initdb", &["-A", "trust", "-U", "postgres", "-D", &pg.data()]);
        pg.ctl("start");
        pg
    }

    fn as_root(&self) -> bool {
        Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a PostgreSQL program (as `postgres` when root); it must succeed.
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = if self.as_root() {
            let line = std::iter::once(program.to_str().unwrap())
                .chain(args.iter().copied())
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ");
            let mut c = Command::new("su");
            c.args(["postgres", "-s", "/bin/sh", "-c", &line]);
            c
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl start` (waiting until it accepts connections) or `stop` (fast).
    fn ctl(&self, action: &str) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let log = self.dir.path().join("server.log");
        match action {
            "start" => {
                self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", log.to_str().unwrap(), "-w", "start"])
            }
            _ => self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]),
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.ctl("stop")));
    }
}

/// PostgreSQL restarted while a sequencer submits and a worker proves: the
/// API node answers 500 while the database is down (the client retries with
/// the same `Idempotency-Key`), both processes reconnect by themselves, and
/// nothing is lost or doubled: one job per seq, chained, every one proven.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_under_load_loses_nothing() {
    let pg = std::sync::Arc::new(PrivatePostgres::start());
    let url = pg.url();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["keys", "add", "--name", "pg", "--database-url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"].as_str().unwrap().to_string();
    let node = Server::start(tmp.path(), &["--database-url", &url, "--workers", "0"]);
    let _worker = Server::worker(tmp.path(), &url, &["--backend", "cpu", "--lease-secs", "3"]);
    let api = Api::new(&node, &key);
    assert_eq!(api.post("/v1/chains", &tiny_chain("steady", 1, 3)).await.0, StatusCode::CREATED);
    let client = Client::new(&node.url, Some(key.clone()));
    let restart = {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(800));
            pg.ctl("stop");
            std::thread::sleep(Duration::from_millis(1500));
            pg.ctl("start");
        })
    };
    let batches = 16u64;
    let mut slowest = Duration::ZERO;
    for seq in 0..batches {
        let batch = deposit_batch("steady", seq, 1, 1 + seq as i64);
        let t = Instant::now();
        let accepted = client.submit("steady", &batch, Some(&format!("steady-{seq}"))).await;
        assert!(accepted.is_ok(), "seq {seq}: {accepted:?}");
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(restart.is_finished(), "the restart happened while the sequencer submitted");
    restart.await.unwrap();
    assert!(slowest > Duration::from_millis(500), "a submission waited out the outage ({slowest:?})");
    let jobs = chained_jobs(&api, "steady").await;
    assert_eq!(jobs.len() as u64, batches, "one job per seq");
    for job in &jobs {
        let done = wait_done(&client, job["id"].as_str().unwrap()).await;
        assert_eq!(done.state, JobState::Done, "{done:?}");
    }
    let (_, chain) = api.get("/v1/chains/steady").await;
    assert_eq!(chain["next_seq"].as_u64(), Some(batches));
}

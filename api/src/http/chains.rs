//! Chains: `POST /v1/chains` (create at genesis), `GET /v1/chains/{chain}`,
//! `GET /v1/chains/{chain}/vk` (the verifying keys of its proofs).

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use statesync_circuits::{config::ChainConfig, error::ConfigError, witness::fr_hex};
use statesync_prover::{
    epoch::{EpochSpec, EPOCH_K},
    vkfile::VerifyingKeyFile,
};

use super::{body, json_text, AppError, AppState};
use crate::store::StoreError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chains", post(create_chain))
        .route("/v1/chains/{chain}", get(get_chain))
        .route("/v1/chains/{chain}/vk", get(get_vk))
}

/// `201` body of `POST /v1/chains`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainCreated {
    /// Chain id.
    pub chain_id: String,
    /// Genesis state root.
    pub state_root: String,
}

#[utoipa::path(post, path = "/v1/chains", request_body(content = ChainConfig, description = "chain config and genesis (CHAIN.json)", content_type = "application/json"),
    responses((status = 201, body = ChainCreated), (status = 400, description = "malformed JSON, or a chain id outside its charset and length"), (status = 409, description = "chain exists"), (status = 422, description = "invalid config")))]
pub async fn create_chain(State(st): State<AppState>, b: Result<Bytes, BytesRejection>) -> Result<Response, AppError> {
    let b = body(b)?;
    let cfg = ChainConfig::from_json(&json_text(&b)?).map_err(|e| match e {
        ConfigError::Json(m) | ConfigError::ChainId(m) => AppError::bad_request(m),
        other => AppError::InvalidConfig(other.to_string()),
    })?;
    let rec = st.svc.create_chain(&cfg).await.map_err(|e| match e {
        StoreError::Conflict(_) => AppError::Conflict(format!("chain {} already exists", cfg.chain_id)),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(ChainCreated { chain_id: rec.id, state_root: rec.state_root })).into_response())
}

#[utoipa::path(get, path = "/v1/chains/{chain}", params(("chain" = String, Path)), responses((status = 200, body = crate::store::ChainRecord, description = "chain config, state root and next seq"), (status = 404)))]
pub async fn get_chain(State(st): State<AppState>, Path(chain): Path<String>) -> Result<Response, AppError> {
    let rec = st.svc.store.chain(&chain).await?.ok_or_else(|| AppError::not_found(format!("chain {chain}")))?;
    Ok(Json(rec).into_response())
}

/// `200` body of `GET /v1/chains/{chain}/vk`: what a verifier of the
/// chain's proofs needs, and nothing it would have to generate
/// (`statesync verify --vk FILE PROOF` reads one of the two files).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainKeys {
    /// Chain id.
    pub chain_id: String,
    /// The chain tag every proof of the chain carries as a public input (0x-hex).
    pub chain_tag: String,
    /// The batch circuit's verifying key and parameters (the key is made
    /// on first use, as for the chain's first proof).
    pub batch: VerifyingKeyFile,
    /// The level-1 epoch circuit's (`epoch_size` batches) once this
    /// process has proven an epoch of the chain since it started (the key
    /// needs the k = 20 SRS, which a request does not load); null before.
    pub epoch: Option<VerifyingKeyFile>,
    /// The wrapper circuit's (over the top level's epochs), what the base
    /// layer's verifier contract holds, once this process has proven a
    /// wrapper of the chain since it started; null before. `statesync
    /// evm-verifier` makes it offline.
    pub wrapper: Option<VerifyingKeyFile>,
}

/// How long `GET …/vk` waits for keys that are being loaded or made before
/// it answers 409 `not_ready` (the work goes on; a later request finds them).
const VK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[utoipa::path(get, path = "/v1/chains/{chain}/vk", params(("chain" = String, Path)),
    responses((status = 200, body = ChainKeys), (status = 404, description = "unknown chain"),
        (status = 409, description = "`not_ready`: the SRS or the verifying key is being loaded or made (the first time a shape is used); retry later")))]
pub async fn get_vk(State(st): State<AppState>, Path(chain): Path<String>) -> Result<Response, AppError> {
    let rec = st.svc.store.chain(&chain).await?.ok_or_else(|| AppError::not_found(format!("chain {chain}")))?;
    let not_ready = || {
        AppError::NotReady(format!(
            "the verifying key of shape {} is being made or loaded (SRS and key generation on its first use): retry later",
            rec.config.shape.id()
        ))
    };
    // One request does the work at a time; the others answer at once.
    let Ok(busy) = st.svc.vk_work.clone().try_lock_owned() else { return Err(not_ready()) };
    let svc = st.svc.clone();
    let cfg = rec.config.clone();
    let work = tokio::task::spawn_blocking(move || -> Result<ChainKeys, AppError> {
        let _busy = busy;
        let spec = EpochSpec::epoch(1, svc.config.epoch_size, EPOCH_K);
        Ok(ChainKeys {
            chain_id: cfg.chain_id.clone(),
            chain_tag: fr_hex::to_hex(&cfg.tag()),
            batch: svc.prover.batch_vk_file(&cfg.shape)?,
            epoch: svc.prover.cached_epoch_vk_file(&cfg, &spec)?,
            wrapper: svc.prover.cached_epoch_vk_file(&cfg, &svc.config.wrapper_spec())?,
        })
    });
    let keys = tokio::time::timeout(VK_WAIT, work)
        .await
        .map_err(|_| not_ready())?
        .map_err(|e| AppError::internal("verifying keys", e))??;
    Ok(Json(keys).into_response())
}

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
    /// The epoch circuit's (level 1, `epoch_size` batches, the service's
    /// epochs), once its keys were made by the chain's first epoch; null
    /// before (`statesync evm-verifier` makes them offline).
    pub epoch: Option<VerifyingKeyFile>,
}

#[utoipa::path(get, path = "/v1/chains/{chain}/vk", params(("chain" = String, Path)),
    responses((status = 200, body = ChainKeys), (status = 404, description = "unknown chain")))]
pub async fn get_vk(State(st): State<AppState>, Path(chain): Path<String>) -> Result<Response, AppError> {
    let rec = st.svc.store.chain(&chain).await?.ok_or_else(|| AppError::not_found(format!("chain {chain}")))?;
    let svc = st.svc.clone();
    let keys = tokio::task::spawn_blocking(move || -> Result<ChainKeys, AppError> {
        let cfg = rec.config;
        let spec = EpochSpec { level: 1, n: svc.config.epoch_size, k: EPOCH_K };
        Ok(ChainKeys {
            chain_id: cfg.chain_id.clone(),
            chain_tag: fr_hex::to_hex(&cfg.tag()),
            batch: svc.prover.batch_vk_file(&cfg.shape)?,
            epoch: svc.prover.cached_epoch_vk_file(&cfg, &spec)?,
        })
    })
    .await
    .map_err(|e| AppError::internal("verifying keys", e))??;
    Ok(Json(keys).into_response())
}

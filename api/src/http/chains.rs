//! Chains: `POST /v1/chains` (create at genesis), `GET /v1/chains/{chain}`.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use statesync_circuits::config::ChainConfig;

use super::{body, utf8, AppError, AppState};
use crate::{service::check_chain_id, store::StoreError};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/chains", post(create_chain)).route("/v1/chains/{chain}", get(get_chain))
}

/// `201` body of `POST /v1/chains`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainCreated {
    /// Chain id.
    pub chain_id: String,
    /// Genesis state root.
    pub state_root: String,
}

#[utoipa::path(post, path = "/v1/chains", request_body(content = String, description = "chain config and genesis (CHAIN.json)", content_type = "application/json"),
    responses((status = 201, body = ChainCreated), (status = 400, description = "malformed JSON, or a chain id outside its charset and length"), (status = 409, description = "chain exists"), (status = 422, description = "invalid config")))]
pub async fn create_chain(State(st): State<AppState>, b: Result<Bytes, BytesRejection>) -> Result<Response, AppError> {
    let b = body(b)?;
    let cfg = ChainConfig::from_json(utf8(&b)?).map_err(|e| match e {
        statesync_circuits::error::ConfigError::Json(m) => AppError::bad_request(m),
        other => AppError::InvalidConfig(other.to_string()),
    })?;
    check_chain_id(&cfg.chain_id).map_err(AppError::bad_request)?;
    let rec = st.svc.create_chain(&cfg).await.map_err(|e| match e {
        StoreError::Conflict(_) => AppError::Conflict(format!("chain {} already exists", cfg.chain_id)),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(ChainCreated { chain_id: rec.id, state_root: rec.state_root })).into_response())
}

#[utoipa::path(get, path = "/v1/chains/{chain}", params(("chain" = String, Path)), responses((status = 200, description = "chain config, state root and next seq"), (status = 404)))]
pub async fn get_chain(State(st): State<AppState>, Path(chain): Path<String>) -> Result<Response, AppError> {
    let rec = st.svc.store.chain(&chain).await?.ok_or_else(|| AppError::not_found(format!("chain {chain}")))?;
    Ok(Json(rec).into_response())
}

//! The OpenAPI document of the HTTP API (`GET /v1/openapi.json`).

use utoipa::OpenApi;

use crate::{http, store};

#[derive(OpenApi)]
#[openapi(
    info(title = "statesync", description = "Proofs of derivatives-protocol state transitions"),
    paths(
        http::create_chain,
        http::get_chain,
        http::submit,
        http::list_jobs,
        http::get_job,
        http::cancel_job,
        http::get_proof,
        http::job_events,
        http::request_epoch,
        http::list_epochs,
        http::get_epoch,
        http::epoch_events,
        http::devices
    ),
    components(schemas(
        http::ChainCreated,
        http::SubmitResponse,
        http::JobPage,
        store::Job,
        store::JobState,
        store::Timings,
        store::EpochState,
        http::EpochRequest,
        http::EpochView
    ))
)]
struct ApiDoc;

/// The document.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

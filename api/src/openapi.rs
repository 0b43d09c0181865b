//! The OpenAPI document of the HTTP API (`GET /v1/openapi.json`).

use utoipa::OpenApi;

use crate::{http, store};

#[derive(OpenApi)]
#[openapi(
    info(title = "statesync", version = "1.1.0", description = "Proofs of derivatives-protocol state transitions"),
    paths(
        http::chains::create_chain,
        http::chains::get_chain,
        http::batches::submit,
        http::jobs::list_jobs,
        http::jobs::get_job,
        http::jobs::cancel_job,
        http::jobs::retry_job,
        http::jobs::get_proof,
        http::jobs::job_events,
        http::epochs::request_epoch,
        http::epochs::list_epochs,
        http::epochs::get_epoch,
        http::epochs::epoch_events,
        http::ops::devices
    ),
    components(schemas(
        http::chains::ChainCreated,
        http::batches::SubmitResponse,
        http::jobs::JobPage,
        store::Job,
        store::JobState,
        store::Timings,
        store::EpochState,
        http::epochs::EpochRequest,
        http::epochs::EpochView,
        http::ErrorBody,
        http::Rejection
    ))
)]
struct ApiDoc;

/// The document.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

//! The OpenAPI document of the HTTP API (`GET /v1/openapi.json`).

use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use crate::{http, store};

#[derive(OpenApi)]
#[openapi(
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = [])),
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

/// The API key schemes: `Authorization: Bearer ssk_…`, or `X-API-Key`.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("ssk_<id>_<secret>").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

/// The document.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_has_the_key_schemes_error_bodies_and_every_route() {
        let doc = serde_json::to_value(super::spec()).unwrap();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(
            (schemes["api_key"]["in"].as_str(), schemes["api_key"]["name"].as_str()),
            (Some("header"), Some("X-API-Key"))
        );
        assert_eq!(doc["security"].as_array().map(Vec::len), Some(2), "either scheme");
        for schema in ["ErrorBody", "Rejection", "Job", "EpochView"] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
        assert!(doc["paths"]["/v1/jobs/{id}/retry"]["post"].is_object());
        assert_eq!(doc["info"]["version"], "1.1.0");
    }
}

//! The OpenAPI document of the HTTP API (`GET /v1/openapi.json`).

use utoipa::{
    openapi::{
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
        Content, Ref, RefOr, Response,
    },
    Modify, OpenApi,
};

use crate::{http, store};

#[derive(OpenApi)]
#[openapi(
    modifiers(&Security, &ErrorResponses, &ClosedTransitions),
    security(("bearer" = []), ("api_key" = [])),
    info(title = "statesync", version = "1.2.0", description = "Proofs of derivatives-protocol state transitions"),
    paths(
        http::chains::create_chain,
        http::chains::get_chain,
        http::chains::get_vk,
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
        http::jobs::StateFilter,
        Bincode,
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

/// Every operation's error answers, as the service gives them: the
/// statuses any authenticated request can meet (401, 403, 408, 413, 414,
/// 429, 500) added where an operation does not name them, and every error
/// status answering an [`crate::http::ErrorBody`] (a 422 that names another
/// schema, [`crate::http::Rejection`], keeps it).
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        const COMMON: [(&str, &str); 7] = [
            ("401", "no API key"),
            ("403", "an unknown, wrong or revoked API key"),
            ("408", "the request took longer than the timeout"),
            ("413", "the body exceeds the size limit"),
            ("414", "the path and query exceed 8 KiB"),
            ("429", "the key's rate limit (Retry-After says when to come back)"),
            ("500", "an internal error (details in the server log)"),
        ];
        let error = || Content::new(Some(Ref::from_schema_name("ErrorBody")));
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                for (status, what) in COMMON {
                    responses.entry(status.into()).or_insert_with(|| RefOr::T(Response::new(what)));
                }
                for (status, response) in responses.iter_mut() {
                    if let (true, RefOr::T(r)) = (status.starts_with('4') || status.starts_with('5'), response) {
                        if r.content.is_empty() {
                            r.content.insert("application/json".into(), error());
                        }
                    }
                }
            }
        }
    }
}

/// Each transition type is a closed object, as the decoder reads it
/// (`deny_unknown_fields`; utoipa does not carry it into an internally
/// tagged enum's variants).
struct ClosedTransitions;

impl Modify for ClosedTransitions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AdditionalProperties, Schema};
        let Some(components) = doc.components.as_mut() else { return };
        if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut("Transition") {
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(variant)) = item {
                    variant.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}

/// A bincode body (`application/octet-stream`): bytes, laid out as the
/// README's bincode table says.
#[derive(Debug)]
pub struct Bincode;

impl utoipa::PartialSchema for Bincode {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary)))
            .description(Some("bincode bytes (README: the bincode wire layout)".to_string()))
            .into()
    }
}

impl utoipa::ToSchema for Bincode {}

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
        assert_eq!(doc["info"]["version"], "1.2.0");
        // every error answer of every operation has a JSON body schema
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for status in ["401", "403", "429", "500"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
                for (status, r) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
                    let schema = &r["content"]["application/json"]["schema"]["$ref"];
                    assert!(
                        schema.as_str().is_some_and(|s| s.ends_with("/ErrorBody") || s.ends_with("/Rejection")),
                        "{method} {path} {status}: {r}"
                    );
                }
            }
        }
        let list = &doc["paths"]["/v1/chains/{chain}/epochs"]["get"]["parameters"];
        for p in list.as_array().unwrap().iter().filter(|p| p["name"] != "chain") {
            assert_eq!(p["in"], "query", "{p}");
        }
        let jobs = doc["paths"]["/v1/jobs"]["get"]["parameters"].as_array().unwrap();
        let state = jobs.iter().find(|p| p["name"] == "state").unwrap();
        assert!(state["schema"].to_string().contains("StateFilter"), "state is the enum: {state}");
    }
}

//! Confluent REST Proxy's v2 API.

pub mod consumers;
pub mod instances;
pub mod produce;
pub mod topics;

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::error::{RestError, RestResult};
use crate::media::{self, EmbeddedFormat, JSON, V2};
use crate::Proxy;

pub fn router(proxy: Arc<Proxy>) -> Router {
    let instance = "/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/", get(root).post(root))
        .route("/v2/openapi.yaml", get(openapi))
        .route("/topics", get(topics::list_topics))
        .route(
            "/topics/{topic}",
            get(topics::get_topic).post(produce::to_topic),
        )
        .route("/topics/{topic}/partitions", get(topics::list_partitions))
        .route(
            "/topics/{topic}/partitions/{partition}",
            get(topics::get_partition).post(produce::to_partition),
        )
        .route(
            "/topics/{topic}/partitions/{partition}/offsets",
            get(topics::partition_offsets),
        )
        .route("/brokers", get(topics::list_brokers))
        .route("/consumers/{group}", post(consumers::create))
        .route(instance, axum::routing::delete(consumers::delete))
        .route(
            &format!("{instance}/subscription"),
            post(consumers::subscribe)
                .get(consumers::subscription)
                .delete(consumers::unsubscribe),
        )
        .route(
            &format!("{instance}/assignments"),
            post(consumers::assign).get(consumers::assignments),
        )
        .route(&format!("{instance}/positions"), post(consumers::seek))
        .route(
            &format!("{instance}/positions/beginning"),
            post(consumers::seek_to_beginning),
        )
        .route(
            &format!("{instance}/positions/end"),
            post(consumers::seek_to_end),
        )
        .route(&format!("{instance}/records"), get(consumers::records))
        .route(
            &format!("{instance}/offsets"),
            post(consumers::commit).get(consumers::committed),
        )
        .method_not_allowed_fallback(|| async { RestError::method_not_allowed() })
        .with_state(proxy)
}

/// strom's OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../../openapi/v2.yaml");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/yaml")],
        OPENAPI,
    )
        .into_response()
}

/// v2's root answers an empty object, as Confluent's does.
async fn root(headers: HeaderMap) -> RestResult<Response> {
    respond(&headers, StatusCode::OK, &json!({}))
}

/// The response type of a v2 resource: Confluent's v2 type, or plain JSON if asked for.
pub fn response_type(headers: &HeaderMap) -> RestResult<&'static str> {
    media::negotiate(headers, &[V2, JSON])
}

pub fn respond(
    headers: &HeaderMap,
    status: StatusCode,
    body: &serde_json::Value,
) -> RestResult<Response> {
    Ok(media::json(status, response_type(headers)?, body))
}

/// Request bodies of the consumer resources: a v2 type (any embedded format), or none
/// when the body is empty.
pub fn check_body_type(headers: &HeaderMap, body: &[u8]) -> RestResult<()> {
    match media::content_type(headers) {
        None if body.iter().all(u8::is_ascii_whitespace) => Ok(()),
        Some(essence) if essence == V2 || EmbeddedFormat::from_media_type(&essence).is_some() => {
            Ok(())
        }
        _ => Err(RestError::unsupported_media_type()),
    }
}

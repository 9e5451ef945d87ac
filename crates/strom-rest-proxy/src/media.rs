//! Content types: the v2 API's `application/vnd.kafka[.FORMAT].v2+json`, v3's
//! `application/json`; request bodies parsed as JSON with rest-utils' 400/422 split.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::RestError;

/// The largest request body read (Confluent's produce requests are bounded the same way).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub const V2: &str = "application/vnd.kafka.v2+json";
pub const JSON: &str = "application/json";

/// How keys and values are written in v2 JSON bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedFormat {
    /// base64 strings of the bytes.
    Binary,
    /// Any JSON value, stored as its JSON text.
    Json,
    /// Registry formats: JSON values checked against and encoded with a schema.
    Avro,
    JsonSchema,
    Protobuf,
}

impl EmbeddedFormat {
    pub const ALL: [EmbeddedFormat; 5] = [
        EmbeddedFormat::Binary,
        EmbeddedFormat::Json,
        EmbeddedFormat::Avro,
        EmbeddedFormat::JsonSchema,
        EmbeddedFormat::Protobuf,
    ];

    /// The name in v2 consumer configs (`"format": "binary"`) and in media types.
    pub fn name(self) -> &'static str {
        match self {
            EmbeddedFormat::Binary => "binary",
            EmbeddedFormat::Json => "json",
            EmbeddedFormat::Avro => "avro",
            EmbeddedFormat::JsonSchema => "jsonschema",
            EmbeddedFormat::Protobuf => "protobuf",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    pub fn media_type(self) -> &'static str {
        match self {
            EmbeddedFormat::Binary => "application/vnd.kafka.binary.v2+json",
            EmbeddedFormat::Json => "application/vnd.kafka.json.v2+json",
            EmbeddedFormat::Avro => "application/vnd.kafka.avro.v2+json",
            EmbeddedFormat::JsonSchema => "application/vnd.kafka.jsonschema.v2+json",
            EmbeddedFormat::Protobuf => "application/vnd.kafka.protobuf.v2+json",
        }
    }

    pub fn from_media_type(essence: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.media_type() == essence)
    }

    /// Whether values go through the schema registry.
    pub fn needs_schema(self) -> bool {
        !matches!(self, EmbeddedFormat::Binary | EmbeddedFormat::Json)
    }
}

/// The lower-cased `type/subtype` of a header's media type, without parameters.
pub fn essence(value: &HeaderValue) -> String {
    value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE).map(essence)
}

/// The first of `offered` (most preferred first) that `Accept` allows; 406 otherwise.
pub fn negotiate(headers: &HeaderMap, offered: &[&'static str]) -> Result<&'static str, RestError> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(offered[0]);
    };
    let accept = accept.to_str().unwrap_or_default();
    let mut best: Option<(usize, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        for (rank, produced) in offered.iter().enumerate() {
            let matches = media == *produced
                || media.is_empty()
                || media == "*/*"
                || media
                    .strip_suffix("/*")
                    .is_some_and(|kind| produced.split('/').next() == Some(kind));
            let better = best.is_none_or(|(r, bq)| q > bq || (q == bq && rank < r));
            if matches && better {
                best = Some((rank, q));
            }
        }
    }
    best.map(|(rank, _)| offered[rank])
        .ok_or_else(RestError::not_acceptable)
}

/// A JSON body with the given status and content type.
pub fn json(status: StatusCode, content_type: &'static str, body: &serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A request body as JSON: malformed JSON is 400, a body of the wrong shape 422, as
/// rest-utils' Jackson mappers answer.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(RestError::unprocessable(422, "Request body is empty."));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => RestError::unprocessable(422, e.to_string()),
        _ => RestError::bad_request(e.to_string()),
    })
}

/// Unknown paths: rest-utils' plain 404.
pub async fn fallback() -> RestError {
    RestError::not_found()
}

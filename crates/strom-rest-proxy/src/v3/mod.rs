//! Confluent REST Proxy's v3 API: resources under `/v3/clusters/{cluster_id}`, each with its
//! `kind`, `metadata` (`self` URL and `resource_name` CRN) and `related` links built from the
//! request's Host, plain `application/json` bodies, and `{error_code, message}` errors.

pub mod acls;
pub mod clusters;
pub mod configs;
pub mod groups;
pub mod records;
pub mod topics;

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use strom_client::{ClusterInfo, TopicMetadata};

use crate::error::{RestError, RestResult};
use crate::media::{self, JSON};
use crate::Proxy;

/// strom's OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../../openapi/v3.yaml");

pub fn router(proxy: Arc<Proxy>) -> Router {
    let c = "/v3/clusters/{cluster_id}";
    let r = |path: &str| format!("{c}{path}");
    Router::new()
        .route("/v3/openapi.yaml", get(openapi))
        .route("/v3/clusters", get(clusters::list))
        .route(c, get(clusters::get))
        .route(&r("/brokers"), get(clusters::list_brokers))
        .route(&r("/brokers/{broker_id}"), get(clusters::get_broker))
        .route(
            &r("/brokers/{broker_id}/partition-replicas"),
            get(topics::replicas_of_broker),
        )
        .route(&r("/brokers/-/configs"), get(configs::list_all_brokers))
        .route(
            &r("/brokers/{broker_id}/configs"),
            get(configs::list_broker),
        )
        .route(
            &r("/brokers/{broker_id}/configs/{name}"),
            get(configs::get_broker)
                .put(configs::update_broker)
                .delete(configs::reset_broker),
        )
        .route(
            &r("/brokers/{broker_id}/configs:alter"),
            post(configs::alter_broker),
        )
        .route(&r("/broker-configs"), get(configs::list_cluster))
        .route(
            &r("/broker-configs/{name}"),
            get(configs::get_cluster)
                .put(configs::update_cluster)
                .delete(configs::reset_cluster),
        )
        .route(&r("/broker-configs:alter"), post(configs::alter_cluster))
        .route(
            &r("/topics"),
            get(topics::list).post(topics::create),
        )
        .route(&r("/topics/-/configs"), get(configs::list_all_topics))
        .route(
            &r("/topics/{topic}"),
            get(topics::get)
                .delete(topics::delete)
                .patch(topics::update_partitions),
        )
        .route(&r("/topics/{topic}/configs"), get(configs::list_topic))
        .route(
            &r("/topics/{topic}/configs/{name}"),
            get(configs::get_topic)
                .put(configs::update_topic)
                .delete(configs::reset_topic),
        )
        .route(
            &r("/topics/{topic}/configs:alter"),
            post(configs::alter_topic),
        )
        .route(&r("/topics/{topic}/partitions"), get(topics::list_partitions))
        .route(
            &r("/topics/{topic}/partitions/{partition}"),
            get(topics::get_partition),
        )
        .route(
            &r("/topics/{topic}/partitions/{partition}/offset"),
            get(topics::partition_offsets),
        )
        .route(
            &r("/topics/{topic}/partitions/{partition}/replicas"),
            get(topics::list_replicas),
        )
        .route(
            &r("/topics/{topic}/partitions/{partition}/replicas/{broker_id}"),
            get(topics::get_replica),
        )
        .route(
            &r("/topics/-/partitions/-/reassignment"),
            get(topics::list_all_reassignments),
        )
        .route(
            &r("/topics/{topic}/partitions/-/reassignment"),
            get(topics::list_topic_reassignments),
        )
        .route(
            &r("/topics/{topic}/partitions/{partition}/reassignment"),
            get(topics::get_reassignment),
        )
        .route(&r("/topics/{topic}/records"), post(records::produce))
        .route(
            &r("/topics/{topic}/records:batch"),
            post(records::produce_batch),
        )
        .route(&r("/consumer-groups"), get(groups::list))
        .route(&r("/consumer-groups/{group}"), get(groups::get))
        .route(
            &r("/consumer-groups/{group}/consumers"),
            get(groups::list_consumers),
        )
        .route(
            &r("/consumer-groups/{group}/consumers/{consumer}"),
            get(groups::get_consumer),
        )
        .route(
            &r("/consumer-groups/{group}/consumers/{consumer}/assignments"),
            get(groups::list_assignments),
        )
        .route(
            &r("/consumer-groups/{group}/consumers/{consumer}/assignments/{topic}/partitions/{partition}"),
            get(groups::get_assignment),
        )
        .route(
            &r("/consumer-groups/{group}/lag-summary"),
            get(groups::lag_summary),
        )
        .route(&r("/consumer-groups/{group}/lags"), get(groups::list_lags))
        .route(
            &r("/consumer-groups/{group}/lags/{topic}/partitions/{partition}"),
            get(groups::get_lag),
        )
        .route(
            &r("/acls"),
            get(acls::search).post(acls::create).delete(acls::delete),
        )
        .route(&r("/acls:batch"), post(acls::create_batch))
        .method_not_allowed_fallback(|| async { RestError::method_not_allowed() })
        .with_state(proxy)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

/// What every v3 request needs: the cluster it names (checked) and the base of its URLs.
pub struct Ctx {
    pub base: String,
    pub cluster: ClusterInfo,
}

impl Ctx {
    /// Checks the Accept header and that `cluster_id` is this cluster's.
    pub async fn new(proxy: &Proxy, headers: &HeaderMap, cluster_id: &str) -> RestResult<Self> {
        let ctx = Self::unchecked(proxy, headers).await?;
        if ctx.cluster.cluster_id != cluster_id {
            return Err(RestError::cluster_not_found(cluster_id));
        }
        Ok(ctx)
    }

    /// For `/v3/clusters` itself, which names no cluster.
    pub async fn unchecked(proxy: &Proxy, headers: &HeaderMap) -> RestResult<Self> {
        media::negotiate(headers, &[JSON])?;
        let mut admin = proxy.admins.get().await?;
        let cluster = admin.describe_cluster().await;
        admin.release();
        Ok(Self {
            base: base_url(headers),
            cluster: cluster?,
        })
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster.cluster_id
    }

    /// The URL of a resource under this cluster.
    pub fn url(&self, segments: &[&str]) -> String {
        let mut url = format!("{}/v3/clusters/{}", self.base, encode(self.cluster_id()));
        for segment in segments {
            url.push('/');
            url.push_str(&encode(segment));
        }
        url
    }

    /// A `{"related": url}` link.
    pub fn related(&self, segments: &[&str]) -> Value {
        json!({ "related": self.url(segments) })
    }

    /// The resource name of something in this cluster, e.g. `crn:///kafka=ID/topic=t`.
    pub fn crn(&self, parts: &[(&str, &str)]) -> String {
        let mut crn = format!("crn:///kafka={}", self.cluster_id());
        for (kind, name) in parts {
            // A part without a name (e.g. a group's `lag-summary`) is its kind alone.
            if name.is_empty() {
                crn.push_str(&format!("/{kind}"));
            } else {
                crn.push_str(&format!("/{kind}={name}"));
            }
        }
        crn
    }

    /// A resource: `kind`, `metadata`, then `fields` in order.
    pub fn resource(&self, kind: &str, url: String, crn: Option<String>, fields: Value) -> Value {
        let mut out = Map::new();
        out.insert("kind".into(), kind.into());
        let mut metadata = Map::new();
        metadata.insert("self".into(), url.into());
        if let Some(crn) = crn {
            metadata.insert("resource_name".into(), crn.into());
        }
        out.insert("metadata".into(), metadata.into());
        if let Value::Object(fields) = fields {
            out.extend(fields);
        }
        Value::Object(out)
    }

    /// A collection: `kind`, `metadata` with `self` and `next` (always null: no paging),
    /// and `data`.
    pub fn collection(&self, kind: &str, url: String, data: Vec<Value>) -> Value {
        json!({
            "kind": kind,
            "metadata": {"self": url, "next": null},
            "data": data,
        })
    }

    /// Metadata of one topic; Kafka's UNKNOWN_TOPIC_OR_PARTITION when it does not exist.
    pub async fn topic(&self, proxy: &Proxy, topic: &str) -> RestResult<TopicMetadata> {
        let mut admin = proxy.admins.get().await?;
        let described = admin.describe_topics(&[topic.to_owned()]).await;
        admin.release();
        let meta = described?
            .into_iter()
            .find(|t| t.name == topic)
            .ok_or_else(RestError::unknown_topic_or_partition)?;
        match meta.error_code {
            0 => Ok(meta),
            // UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION
            3 | 17 => Err(RestError::unknown_topic_or_partition()),
            _ => meta.check().map(|()| meta).map_err(RestError::from),
        }
    }

    pub fn has_broker(&self, broker_id: i32) -> bool {
        self.cluster.brokers.iter().any(|b| b.id == broker_id)
    }
}

/// The scheme the request came by and its Host: `https` over TLS (`strom-http` marks
/// such requests with X-Forwarded-Proto, as a load balancer in front would), else `http`.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let scheme = match headers
        .get(strom_http::server::FORWARDED_PROTO)
        .and_then(|p| p.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// Percent-encodes a path segment (RFC 3986 unreserved characters stay as they are).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A v3 JSON response.
pub fn respond(status: StatusCode, body: &Value) -> Response {
    media::json(status, JSON, body)
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A v3 request body: `application/json` only (415 otherwise), parsed with rest-utils'
/// 400/422 split.
pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> RestResult<T> {
    if media::content_type(headers).as_deref() != Some(JSON) {
        return Err(RestError::unsupported_media_type());
    }
    media::parse_body(body)
}

/// A numeric path segment (partition, broker id); anything else names no resource.
pub fn parse_id(text: &str) -> RestResult<i32> {
    text.parse().map_err(|_| RestError::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_router_builds_with_every_route() {
        let config = crate::ProxyConfig::new(Vec::new(), "127.0.0.1:1".to_owned());
        let _router = crate::router(crate::Proxy::new(config));
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode("my-topic_1.x"), "my-topic_1.x");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn the_base_url_comes_from_the_host_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "proxy:8082".parse().unwrap());
        assert_eq!(base_url(&headers), "http://proxy:8082");
        assert_eq!(base_url(&HeaderMap::new()), "http://localhost");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(&headers), "https://proxy:8082");
        headers.insert("x-forwarded-proto", "gopher".parse().unwrap());
        assert_eq!(base_url(&headers), "http://proxy:8082");
    }
}

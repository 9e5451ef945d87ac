//! Confluent's Schema Registry REST API over the store: routes, parameters, bodies and
//! error responses (`{"error_code": ..., "message": ...}`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::compatibility::CompatibilityLevel;
use crate::error::RegistryError;
use crate::forward;
use crate::leader::Leader;
use crate::records::{ConfigValue, SchemaReference, SchemaValue};
use crate::schema::{ParsedSchema, SchemaType};
use crate::state::{context_of, Mode, NewSchema, VersionSelector, DEFAULT_CONTEXT};
use crate::store::Store;
use std::time::Duration;
use tokio::sync::watch;

/// The content type of every response, as Confluent's registry answers.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Params = Query<HashMap<String, String>>;
type Reply = Result<Response, RegistryError>;

/// Where writes go when this registry does not lead, and how to reach an https leader.
#[derive(Clone)]
pub struct Forwarding {
    pub leader: watch::Receiver<Leader>,
    pub tls: Option<tokio_rustls::TlsConnector>,
}

pub fn router(store: Arc<Store>, forwarding: Forwarding) -> Router {
    Router::new()
        .route("/", get(|| async { reply(json!({})) }))
        .route("/schemas", get(list_schemas))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_with_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_with_all),
        )
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route("/mode", get(get_global_mode).put(put_global_mode))
        .route(
            "/mode/{subject}",
            get(get_subject_mode)
                .put(put_subject_mode)
                .delete(delete_subject_mode),
        )
        .route("/contexts", get(list_contexts))
        .route("/contexts/{context}", delete(delete_context))
        .route("/v1/metadata/id", get(metadata_id))
        .route("/v1/metadata/version", get(metadata_version))
        .fallback(|| async { RegistryError::NotFound.into_response() })
        .method_not_allowed_fallback(|| async { RegistryError::MethodNotAllowed.into_response() })
        .layer(axum::middleware::from_fn_with_state(
            forwarding,
            route_writes,
        ))
        .layer(axum::middleware::from_fn(negotiate))
        .with_state(store)
}

/// How long a write waits for an election under way (or a new leader) before 50004/50003.
const ELECTION_WAIT: Duration = Duration::from_secs(25);
/// The largest write body sent on to the leader.
const MAX_FORWARDED_BODY: usize = 16 << 20;

/// Writes (registering, deleting, setting configs and modes) run on the elected leader: here
/// when this registry leads, sent on to the leader's URL otherwise. Reads, lookups and
/// compatibility checks are answered by every registry from its own state.
async fn route_writes(
    State(Forwarding { mut leader, tls }): State<Forwarding>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !is_write(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let deadline = tokio::time::Instant::now() + ELECTION_WAIT;
    let url = match known_leader(&mut leader, deadline, None).await {
        Some(Leader::This) => return next.run(request).await,
        Some(Leader::Other { url }) => url,
        _ => return RegistryError::UnknownLeader.into_response(),
    };
    if request.headers().contains_key(forward::FORWARDED_HEADER) {
        // Sent on by a registry that took us for the leader: no second hop.
        return RegistryError::ForwardingFailed(format!(
            "this registry is not the leader ({url} is)"
        ))
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_FORWARDED_BODY).await {
        Ok(body) => body,
        Err(e) => return RegistryError::BadRequest(e.to_string()).into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut url = url;
    loop {
        let sent = forward::forward(
            &url,
            tls.as_ref(),
            parts.method.clone(),
            &path,
            &parts.headers,
            body.clone(),
        );
        let why = match sent.await {
            Ok(answer) => {
                let mut response = (answer.status, answer.body).into_response();
                if let Some(content_type) = answer.content_type {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, content_type);
                }
                return response;
            }
            Err(why) => why,
        };
        // A leader that cannot be reached has most likely gone: wait for the next one.
        match known_leader(&mut leader, deadline, Some(&url)).await {
            Some(Leader::Other { url: next_url }) => url = next_url,
            Some(Leader::This) => {
                let request =
                    axum::extract::Request::from_parts(parts, axum::body::Body::from(body));
                return next.run(request).await;
            }
            _ => return RegistryError::ForwardingFailed(format!("{url}: {why}")).into_response(),
        }
    }
}

/// The elected leader once known (and other than `not`), waiting until `deadline`.
async fn known_leader(
    leader: &mut watch::Receiver<Leader>,
    deadline: tokio::time::Instant,
    not: Option<&str>,
) -> Option<Leader> {
    let wanted = |l: &Leader| match l {
        Leader::Unknown => false,
        Leader::This => true,
        Leader::Other { url } => Some(url.as_str()) != not,
    };
    tokio::time::timeout_at(deadline, leader.wait_for(wanted))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|l| l.clone())
}

/// PUT and DELETE change state everywhere in the API; a POST does only to register.
fn is_write(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    match *method {
        Method::PUT | Method::DELETE => true,
        Method::POST => {
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            matches!(segments.as_slice(), ["subjects", _, "versions"])
        }
        _ => false,
    }
}

/// The media types responses can take, with Confluent's preference for each.
const PRODUCED: [(&str, f32); 3] = [
    (CONTENT_TYPE, 1.0),
    ("application/vnd.schemaregistry+json", 0.9),
    ("application/json", 0.5),
];

/// Picks the response's media type from `Accept` (406 when none fits) and sets it.
async fn negotiate(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*")
        .to_owned();
    let Some(chosen) = choose_media_type(&accept) else {
        return RegistryError::NotAcceptable.into_response();
    };
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(chosen),
    );
    response
}

fn choose_media_type(accept: &str) -> Option<&'static str> {
    let mut best: Option<(&'static str, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        for (produced, preference) in PRODUCED {
            let matches =
                media == produced || media == "*/*" || media.is_empty() || media == "application/*";
            let score = q * preference;
            if matches && q > 0.0 && best.is_none_or(|(_, b)| score > b) {
                best = Some((produced, score));
            }
        }
    }
    best.map(|(media, _)| media)
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = self.codes();
        let body = json!({"error_code": code, "message": self.to_string()});
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}

fn reply(body: impl Serialize) -> Reply {
    let text = serde_json::to_string(&body).map_err(|e| RegistryError::Store(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// `schema.search.default.limit` and `schema.search.max.limit` (Confluent's 1000); the other
/// lists (subjects, versions, contexts) are unlimited by default, as in Confluent.
const SCHEMA_SEARCH_LIMIT: usize = 1000;

/// One page of a list: `offset` items skipped, then at most `limit` (a `limit` that is not
/// positive or over `max` is `max`). A value that is not an integer is a 404, as Jersey answers.
fn page<T>(items: Vec<T>, params: &Params, max: usize) -> Result<Vec<T>, RegistryError> {
    let int = |name: &str| -> Result<Option<i64>, RegistryError> {
        params
            .get(name)
            .map(|v| v.trim().parse::<i64>().map_err(|_| RegistryError::NotFound))
            .transpose()
    };
    let offset = usize::try_from(int("offset")?.unwrap_or(0)).unwrap_or(0);
    let limit = match int("limit")?.and_then(|l| usize::try_from(l).ok()) {
        Some(l) if l > 0 && l <= max => l,
        _ => max,
    };
    Ok(items.into_iter().skip(offset).take(limit).collect())
}

fn flag(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Request bodies must be JSON: Confluent's content types, `application/json`, or none.
fn json_body<T: for<'a> Deserialize<'a>>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, RegistryError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let accepted = [
            "application/vnd.schemaregistry.v1+json",
            "application/vnd.schemaregistry+json",
            "application/json",
            "application/octet-stream",
        ];
        if !accepted.contains(&essence.as_str()) {
            return Err(RegistryError::UnsupportedMediaType);
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(RegistryError::Unprocessable(
            "request body must not be null (was null)".to_owned(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| RegistryError::BadRequest(e.to_string()))
}

/// A non-numeric id matches no route in Confluent's registry: a plain 404.
fn parse_id(text: &str) -> Result<i32, RegistryError> {
    text.parse().map_err(|_| RegistryError::NotFound)
}

/// The context a `subject` query parameter names (`:.ctx:` or `:.ctx:name`).
fn context_param(params: &Params) -> String {
    params
        .get("subject")
        .map(|s| context_of(s).to_owned())
        .unwrap_or_else(|| DEFAULT_CONTEXT.to_owned())
}

// --- bodies --------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct RegisterBody {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<SchemaReference>,
    id: Option<i32>,
    version: Option<i32>,
    metadata: Option<Value>,
    #[serde(rename = "ruleSet")]
    rule_set: Option<Value>,
}

impl RegisterBody {
    fn into_request(self) -> Result<NewSchema, RegistryError> {
        let schema = self
            .schema
            .ok_or_else(|| RegistryError::InvalidSchema("Empty schema".to_owned()))?;
        Ok(NewSchema {
            schema,
            schema_type: self.schema_type,
            references: self.references,
            id: self.id,
            version: self.version,
            metadata: self.metadata,
            rule_set: self.rule_set,
        })
    }
}

/// A version as `GET /subjects/{s}/versions/{v}` shows it.
#[derive(Serialize)]
struct VersionBody<'a> {
    subject: &'a str,
    version: i32,
    id: i32,
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    references: &'a [SchemaReference],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Value>,
    #[serde(rename = "ruleSet", skip_serializing_if = "Option::is_none")]
    rule_set: Option<&'a Value>,
    schema: &'a str,
}

impl<'a> VersionBody<'a> {
    fn of(value: &'a SchemaValue) -> VersionBody<'a> {
        VersionBody {
            subject: &value.subject,
            version: value.version,
            id: value.id,
            schema_type: value.schema_type.as_deref(),
            references: &value.references,
            metadata: value.metadata.as_ref(),
            rule_set: value.rule_set.as_ref(),
            schema: &value.schema,
        }
    }
}

// --- schemas -------------------------------------------------------------------------

async fn schema_types() -> Reply {
    reply(SchemaType::ALL.map(SchemaType::name))
}

async fn list_schemas(State(store): State<Arc<Store>>, params: Params) -> Reply {
    let prefix = params.get("subjectPrefix").cloned().unwrap_or_default();
    let bodies: Vec<Value> = store.read(|registry| {
        registry
            .schemas(
                Some(&prefix),
                flag(&params, "deleted"),
                flag(&params, "latestOnly"),
            )
            .into_iter()
            .map(|v| serde_json::to_value(VersionBody::of(v)).unwrap_or_default())
            .collect()
    });
    reply(page(bodies, &params, SCHEMA_SEARCH_LIMIT)?)
}

/// A Protobuf schema as a base64 `FileDescriptorProto` when the request asks for
/// `format=serialized` (what confluent-kafka's Protobuf serializers ask for).
fn serialized(
    registry: &crate::state::Registry,
    params: &Params,
    subject: &str,
    schema_type: Option<String>,
    schema: &str,
    references: &[crate::records::SchemaReference],
) -> Option<String> {
    if params.get("format").map(String::as_str) != Some("serialized") {
        return None;
    }
    let schema_type = SchemaType::from_name(schema_type.as_deref()).ok()?;
    match registry
        .parse(subject, schema_type, schema, references)
        .ok()?
    {
        ParsedSchema::Protobuf(p) => Some(p.serialized()),
        _ => None,
    }
}

async fn schema_by_id(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    params: Params,
) -> Reply {
    let id = parse_id(&id)?;
    let context = context_param(&params);
    let (entry, max_id) = store.read(|r| (r.schema_by_id(&context, id), r.max_id(&context)));
    let entry = entry.ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
    let mut body = serde_json::Map::new();
    if let Some(t) = entry.schema_type.field() {
        body.insert("schemaType".into(), t.into());
    }
    let schema = store
        .read(|r| {
            serialized(
                r,
                &params,
                params
                    .get("subject")
                    .map(String::as_str)
                    .unwrap_or_default(),
                entry.schema_type.field(),
                &entry.schema,
                &entry.references,
            )
        })
        .unwrap_or_else(|| entry.schema.clone());
    body.insert("schema".into(), schema.into());
    if !entry.references.is_empty() {
        body.insert(
            "references".into(),
            serde_json::to_value(&entry.references).unwrap_or_default(),
        );
    }
    if flag(&params, "fetchMaxId") {
        body.insert("maxId".into(), max_id.into());
    }
    reply(Value::Object(body))
}

async fn raw_schema_by_id(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    params: Params,
) -> Reply {
    let id = parse_id(&id)?;
    let context = context_param(&params);
    let entry = store
        .read(|r| r.schema_by_id(&context, id))
        .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], entry.schema).into_response())
}

async fn subjects_by_id(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    params: Params,
) -> Reply {
    let id = parse_id(&id)?;
    let context = context_param(&params);
    let users = store
        .read(|r| r.id_users(&context, id, flag(&params, "deleted")))
        .ok_or_else(|| RegistryError::SchemaNotFound(String::new()))?;
    let mut subjects: Vec<String> = users.into_iter().map(|(s, _)| s).collect();
    subjects.dedup();
    reply(page(subjects, &params, usize::MAX)?)
}

async fn versions_by_id(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    params: Params,
) -> Reply {
    let id = parse_id(&id)?;
    let context = context_param(&params);
    let users = store
        .read(|r| r.id_users(&context, id, flag(&params, "deleted")))
        .ok_or_else(|| RegistryError::SchemaNotFound(String::new()))?;
    let versions = users
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    reply(page(versions, &params, usize::MAX)?)
}

// --- subjects ------------------------------------------------------------------------

async fn list_subjects(State(store): State<Arc<Store>>, params: Params) -> Reply {
    // Without a prefix every context is listed (Confluent's default prefix `:*:`).
    let prefix = params
        .get("subjectPrefix")
        .filter(|p| p.as_str() != ":*:")
        .map(String::as_str);
    let subjects = store.read(|r| {
        r.subjects(
            prefix,
            flag(&params, "deleted"),
            flag(&params, "deletedOnly"),
        )
    });
    reply(page(subjects, &params, usize::MAX)?)
}

async fn list_versions(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
) -> Reply {
    let versions = store.read(|r| {
        r.versions(
            &subject,
            flag(&params, "deleted"),
            flag(&params, "deletedOnly"),
        )
    })?;
    reply(page(versions, &params, usize::MAX)?)
}

async fn get_version(
    State(store): State<Arc<Store>>,
    Path((subject, version)): Path<(String, String)>,
    params: Params,
) -> Reply {
    let selector = VersionSelector::parse(&version)?;
    let body = store.read(|r| {
        r.version(&subject, selector, flag(&params, "deleted"))
            .map(|v| {
                let mut body = serde_json::to_value(VersionBody::of(v)).unwrap_or_default();
                if let Some(text) = serialized(
                    r,
                    &params,
                    &v.subject,
                    v.schema_type.clone(),
                    &v.schema,
                    &v.references,
                ) {
                    body["schema"] = text.into();
                }
                body
            })
    })?;
    reply(body)
}

async fn raw_version(
    State(store): State<Arc<Store>>,
    Path((subject, version)): Path<(String, String)>,
    params: Params,
) -> Reply {
    let selector = VersionSelector::parse(&version)?;
    let schema = store.read(|r| {
        r.version(&subject, selector, flag(&params, "deleted"))
            .map(|v| v.schema.clone())
    })?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], schema).into_response())
}

async fn referenced_by(
    State(store): State<Arc<Store>>,
    Path((subject, version)): Path<(String, String)>,
    params: Params,
) -> Reply {
    let selector = VersionSelector::parse(&version)?;
    let ids = store.read(|r| {
        r.version(&subject, selector, true)
            .map(|v| r.referenced_by(&subject, v.version, flag(&params, "deleted")))
    })?;
    reply(page(ids, &params, SCHEMA_SEARCH_LIMIT)?)
}

async fn register(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let request = json_body::<RegisterBody>(&headers, &body)?.into_request()?;
    let normalize = flag(&params, "normalize");
    let id = store
        .write(|r| r.register(&subject, &request, normalize))
        .await?;
    reply(json!({ "id": id }))
}

async fn lookup(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let request = json_body::<RegisterBody>(&headers, &body)?.into_request()?;
    let body = store.read(|r| {
        r.lookup(
            &subject,
            &request,
            flag(&params, "normalize"),
            flag(&params, "deleted"),
        )
        .map(|value| serde_json::to_value(VersionBody::of(value)).unwrap_or_default())
    })?;
    reply(body)
}

async fn delete_subject(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
) -> Reply {
    let permanent = flag(&params, "permanent");
    let versions = store
        .write(|r| r.delete_subject(&subject, permanent))
        .await?;
    reply(versions)
}

async fn delete_version(
    State(store): State<Arc<Store>>,
    Path((subject, version)): Path<(String, String)>,
    params: Params,
) -> Reply {
    let selector = VersionSelector::parse(&version)?;
    let permanent = flag(&params, "permanent");
    let version = store
        .write(|r| r.delete_version(&subject, selector, permanent))
        .await?;
    reply(version)
}

// --- compatibility -------------------------------------------------------------------

async fn compatibility_with_version(
    State(store): State<Arc<Store>>,
    Path((subject, version)): Path<(String, String)>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let selector = VersionSelector::parse(&version)?;
    compatibility(store, subject, Some(selector), params, headers, body)
}

async fn compatibility_with_all(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    compatibility(store, subject, None, params, headers, body)
}

fn compatibility(
    store: Arc<Store>,
    subject: String,
    against: Option<VersionSelector>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let request = json_body::<RegisterBody>(&headers, &body)?.into_request()?;
    let verbose = flag(&params, "verbose");
    let errors = match store
        .read(|r| r.test_compatibility(&subject, &request, against, flag(&params, "normalize")))
    {
        Ok(errors) => errors,
        // With `verbose`, an invalid schema is an incompatible one, with its reason.
        Err(e @ RegistryError::InvalidSchema(_)) if verbose => vec![e.to_string()],
        Err(e) => return Err(e),
    };
    let mut body = json!({"is_compatible": errors.is_empty()});
    if verbose {
        body["messages"] = json!(errors);
    }
    reply(body)
}

// --- config --------------------------------------------------------------------------

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
    normalize: Option<bool>,
}

/// A config as GET shows it; a level left unset is the default level.
fn config_response(value: &ConfigValue) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(alias) = &value.alias {
        body.insert("alias".into(), alias.as_str().into());
    }
    if let Some(n) = value.normalize {
        body.insert("normalize".into(), n.into());
    }
    body.insert(
        "compatibilityLevel".into(),
        value
            .compatibility_level
            .clone()
            .unwrap_or_else(|| CompatibilityLevel::DEFAULT.name().to_owned())
            .into(),
    );
    Value::Object(body)
}

async fn get_global_config(State(store): State<Arc<Store>>) -> Reply {
    reply(store.read(|r| config_response(&r.stored_config(None).cloned().unwrap_or_default())))
}

async fn get_subject_config(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
) -> Reply {
    let body = store.read(|r| match r.stored_config(Some(&subject)) {
        Some(value) => Ok(config_response(value)),
        None if flag(&params, "defaultToGlobal") => {
            Ok(config_response(&r.effective_config(&subject)))
        }
        None => Err(RegistryError::SubjectCompatibilityNotConfigured(
            subject.clone(),
        )),
    })?;
    reply(body)
}

async fn put_config(
    store: Arc<Store>,
    subject: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let request: ConfigBody = json_body(&headers, &body)?;
    let level = request
        .compatibility
        .as_deref()
        .map(CompatibilityLevel::from_name)
        .transpose()?;
    let stored = store
        .write(|r| r.set_config(subject.as_deref(), level, request.normalize))
        .await?;
    // PUT answers with `compatibility`, where GET says `compatibilityLevel`.
    let mut body = serde_json::Map::new();
    if let Some(n) = stored.normalize {
        body.insert("normalize".into(), n.into());
    }
    if let Some(level) = stored.compatibility_level {
        body.insert("compatibility".into(), level.into());
    }
    reply(Value::Object(body))
}

async fn put_global_config(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    put_config(store, None, headers, body).await
}

async fn put_subject_config(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    put_config(store, Some(subject), headers, body).await
}

async fn delete_global_config(State(store): State<Arc<Store>>) -> Reply {
    let old = store.write(|r| r.delete_config(None)).await?;
    reply(config_response(&old))
}

async fn delete_subject_config(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
) -> Reply {
    let old = store.write(|r| r.delete_config(Some(&subject))).await?;
    reply(config_response(&old))
}

// --- mode ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct ModeBody {
    mode: String,
}

async fn get_global_mode(State(store): State<Arc<Store>>) -> Reply {
    let mode = store
        .read(|r| r.stored_mode(None))
        .unwrap_or(Mode::ReadWrite);
    reply(json!({"mode": mode.name()}))
}

async fn get_subject_mode(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
) -> Reply {
    let mode = store.read(|r| match r.stored_mode(Some(&subject)) {
        Some(mode) => Ok(mode),
        None if flag(&params, "defaultToGlobal") => Ok(r.effective_mode(&subject)),
        None => Err(RegistryError::SubjectModeNotConfigured(subject.clone())),
    })?;
    reply(json!({"mode": mode.name()}))
}

async fn put_mode(
    store: Arc<Store>,
    subject: Option<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let request: ModeBody = json_body(&headers, &body)?;
    let mode = Mode::from_name(&request.mode)?;
    let force = flag(&params, "force");
    store
        .write(|r| r.set_mode(subject.as_deref(), mode, force))
        .await?;
    // Confluent answers with the request as it came (`import` stays lower case).
    reply(json!({"mode": request.mode}))
}

async fn put_global_mode(
    State(store): State<Arc<Store>>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    put_mode(store, None, params, headers, body).await
}

async fn put_subject_mode(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    put_mode(store, Some(subject), params, headers, body).await
}

async fn delete_subject_mode(
    State(store): State<Arc<Store>>,
    Path(subject): Path<String>,
) -> Reply {
    let old = store.write(|r| r.delete_mode(&subject)).await?;
    reply(json!({"mode": old.name()}))
}

// --- contexts and metadata -------------------------------------------------------------

async fn list_contexts(State(store): State<Arc<Store>>, params: Params) -> Reply {
    let mut contexts = store.read(|r| r.contexts());
    if let Some(prefix) = params.get("contextPrefix").filter(|p| !p.is_empty()) {
        contexts.retain(|c| c.starts_with(prefix.as_str()));
    }
    reply(page(contexts, &params, usize::MAX)?)
}

/// `DELETE /contexts/{context}`: 204 once the (empty) context is forgotten.
async fn delete_context(State(store): State<Arc<Store>>, Path(context): Path<String>) -> Reply {
    let delimited = crate::contexts::delimited(&context)?;
    store.write(|r| r.delete_context(&delimited)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn metadata_id() -> Reply {
    reply(json!({"scope": {"path": [], "clusters": {}}}))
}

async fn metadata_version() -> Reply {
    reply(json!({"version": env!("CARGO_PKG_VERSION"), "commitId": ""}))
}

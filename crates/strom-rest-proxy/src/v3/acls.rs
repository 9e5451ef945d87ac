//! `/acls`: search (GET), create (POST, and `acls:batch`), delete (DELETE) by Kafka's ACL
//! filters given as query parameters, as kafka-rest's AclsResource.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use strom_client::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclResourceType, PatternType,
};

use super::{encode, no_content, parse, respond, Ctx};
use crate::error::{RestError, RestResult};
use crate::Proxy;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(params: Params) -> RestResult<HashMap<String, String>> {
    params
        .map(|Query(p)| p)
        .map_err(|e| RestError::bad_request(e.body_text()))
}

/// An enum query parameter: its default when absent, `Unknown` for "unknown", and for a
/// name that is none of the values a 404 (Jersey's answer to an unconvertible parameter).
fn param<T: Copy>(
    params: &HashMap<String, String>,
    name: &str,
    default: T,
    unknown: T,
    parse: fn(&str) -> Option<T>,
) -> RestResult<T> {
    match params.get(name) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("unknown") => Ok(unknown),
        Some(v) => parse(v).ok_or_else(RestError::not_found),
    }
}

fn pick<T>(default_any: bool, any: T, unknown: T) -> T {
    if default_any {
        any
    } else {
        unknown
    }
}

fn text_param(params: &HashMap<String, String>, name: &str) -> Option<String> {
    params.get(name).filter(|v| !v.is_empty()).cloned()
}

/// A filter from query parameters, each defaulting to `default_any` (search: ANY) or to
/// UNKNOWN (delete: every enum must be given).
fn filter(params: &HashMap<String, String>, default_any: bool) -> RestResult<AclBindingFilter> {
    let f = AclBindingFilter {
        resource_type: param(
            params,
            "resource_type",
            pick(default_any, AclResourceType::Any, AclResourceType::Unknown),
            AclResourceType::Unknown,
            AclResourceType::parse,
        )?,
        resource_name: text_param(params, "resource_name"),
        pattern_type: param(
            params,
            "pattern_type",
            pick(default_any, PatternType::Any, PatternType::Unknown),
            PatternType::Unknown,
            PatternType::parse,
        )?,
        principal: text_param(params, "principal"),
        host: text_param(params, "host"),
        operation: param(
            params,
            "operation",
            pick(default_any, AclOperation::Any, AclOperation::Unknown),
            AclOperation::Unknown,
            AclOperation::parse,
        )?,
        permission: param(
            params,
            "permission",
            pick(default_any, AclPermission::Any, AclPermission::Unknown),
            AclPermission::Unknown,
            AclPermission::parse,
        )?,
    };
    let unknown = |what: &str| {
        Err(RestError::v3_bad_request(if default_any {
            format!("{what} cannot be UNKNOWN")
        } else {
            format!("{what} cannot be unspecified or UNKNOWN")
        }))
    };
    if f.resource_type == AclResourceType::Unknown {
        return unknown("resource_type");
    }
    if f.pattern_type == PatternType::Unknown {
        return unknown("pattern_type");
    }
    if f.operation == AclOperation::Unknown {
        return unknown("operation");
    }
    if f.permission == AclPermission::Unknown {
        return unknown("permission");
    }
    Ok(f)
}

/// The ACL list's URL for these filter values, as kafka-rest builds it.
fn acls_url(ctx: &Ctx, fields: [(&str, &str); 7]) -> String {
    let query: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("{}?{}", ctx.url(&["acls"]), query.join("&"))
}

fn filter_url(ctx: &Ctx, f: &AclBindingFilter) -> String {
    acls_url(
        ctx,
        [
            ("resource_type", f.resource_type.name()),
            ("resource_name", f.resource_name.as_deref().unwrap_or("")),
            ("pattern_type", f.pattern_type.name()),
            ("principal", f.principal.as_deref().unwrap_or("")),
            ("host", f.host.as_deref().unwrap_or("")),
            ("operation", f.operation.name()),
            ("permission", f.permission.name()),
        ],
    )
}

fn binding_url(ctx: &Ctx, b: &AclBinding) -> String {
    acls_url(
        ctx,
        [
            ("resource_type", b.resource_type.name()),
            ("resource_name", &b.resource_name),
            ("pattern_type", b.pattern_type.name()),
            ("principal", &b.principal),
            ("host", &b.host),
            ("operation", b.operation.name()),
            ("permission", b.permission.name()),
        ],
    )
}

fn acl_json(ctx: &Ctx, b: &AclBinding) -> Value {
    ctx.resource(
        "KafkaAcl",
        binding_url(ctx, b),
        None,
        json!({
            "cluster_id": ctx.cluster_id(),
            "resource_type": b.resource_type.name(),
            "resource_name": b.resource_name,
            "pattern_type": b.pattern_type.name(),
            "principal": b.principal,
            "host": b.host,
            "operation": b.operation.name(),
            "permission": b.permission.name(),
        }),
    )
}

/// Sorted as kafka-rest sorts them (by each field in turn).
fn sorted(mut acls: Vec<AclBinding>) -> Vec<AclBinding> {
    acls.sort();
    acls
}

pub async fn search(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    query: Params,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let f = filter(&params(query)?, true)?;
    let mut admin = proxy.admins.get().await?;
    let found = admin.describe_acls(&f).await;
    admin.release();
    let data = sorted(found?).iter().map(|b| acl_json(&ctx, b)).collect();
    let body = ctx.collection("KafkaAclList", filter_url(&ctx, &f), data);
    Ok(respond(StatusCode::OK, &body))
}

#[derive(Debug, Deserialize)]
struct CreateAcl {
    resource_type: String,
    resource_name: String,
    pattern_type: String,
    principal: String,
    host: String,
    operation: String,
    permission: String,
}

#[derive(Debug, Deserialize)]
struct CreateAclBatch {
    data: Vec<CreateAcl>,
}

/// An enum field of a request body; a name that is none of the values is a 400.
fn field<T>(value: &str, name: &str, parse: fn(&str) -> Option<T>) -> RestResult<T> {
    parse(value).ok_or_else(|| {
        RestError::bad_request(format!("Cannot deserialize {name} from \"{value}\""))
    })
}

fn binding(request: &CreateAcl) -> RestResult<AclBinding> {
    Ok(AclBinding {
        resource_type: field(
            &request.resource_type,
            "resource_type",
            AclResourceType::parse,
        )?,
        resource_name: request.resource_name.clone(),
        pattern_type: field(&request.pattern_type, "pattern_type", PatternType::parse)?,
        principal: request.principal.clone(),
        host: request.host.clone(),
        operation: field(&request.operation, "operation", AclOperation::parse)?,
        permission: field(&request.permission, "permission", AclPermission::parse)?,
    })
}

async fn create_all(proxy: &Proxy, bindings: &[AclBinding]) -> RestResult<()> {
    let mut admin = proxy.admins.get().await?;
    let created = admin.create_acls(bindings).await;
    admin.release();
    for result in created? {
        result?;
    }
    Ok(())
}

pub async fn create(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let request: CreateAcl = parse(&headers, &body)?;
    let acl = binding(&request)?;
    create_all(&proxy, std::slice::from_ref(&acl)).await?;
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(location) = HeaderValue::from_str(&binding_url(&ctx, &acl)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn create_batch(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    Ctx::new(&proxy, &headers, &cluster_id).await?;
    let request: CreateAclBatch = parse(&headers, &body)?;
    let acls = request
        .data
        .iter()
        .map(binding)
        .collect::<RestResult<Vec<_>>>()?;
    create_all(&proxy, &acls).await?;
    Ok(no_content())
}

pub async fn delete(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    query: Params,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let f = filter(&params(query)?, false)?;
    let mut admin = proxy.admins.get().await?;
    let deleted = admin.delete_acls(std::slice::from_ref(&f)).await;
    admin.release();
    let mut acls = Vec::new();
    for result in deleted? {
        acls.extend(result?);
    }
    let data: Vec<Value> = sorted(acls).iter().map(|b| acl_json(&ctx, b)).collect();
    Ok(respond(StatusCode::OK, &json!({ "data": data })))
}

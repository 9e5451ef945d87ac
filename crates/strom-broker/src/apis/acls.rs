//! CreateAcls (key 30), DescribeAcls (29) and DeleteAcls (31): the ACLs of Kafka's
//! StandardAuthorizer, kept in the metadata log (`strom_metadata::acls`). Creating and
//! deleting needs ALTER on the cluster and is forwarded to the active controller;
//! describing needs DESCRIBE on it and reads this node's image. Without
//! `authorizer.class.name` all three answer SECURITY_DISABLED, as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::acls::{create_acls, delete_acls};
use strom_security::acl::{AclBinding, AclFilter};
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

/// Kafka 4 serves versions 1 to 3 of the three ACL APIs (KIP-896 removed 0).
const ACL_VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Why a request is refused as a whole: not allowed, or no authorizer to keep ACLs.
fn refusal(
    broker: &Broker,
    ctx: &RequestContext,
    operation: Operation,
    disabled: &str,
) -> Option<(ErrorCode, String)> {
    if !ctx.authz(broker).allows_cluster(operation) {
        return Some((
            ErrorCode::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        ));
    }
    if broker.config.authorizer.is_none() {
        return Some((ErrorCode::SecurityDisabled, disabled.into()));
    }
    None
}

pub struct CreateAclsHandler;

impl Handler for CreateAclsHandler {
    type Request = CreateAclsRequest;
    const KEY: ApiKey = ApiKey::CreateAcls;
    const VERSIONS: VersionRange = ACL_VERSIONS;

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: CreateAclsRequest,
    ) -> CreateAclsResponse {
        let refused = |code: ErrorCode, message: &str| {
            CreateAclsResponse::default().with_results(
                request
                    .creations
                    .iter()
                    .map(|_| {
                        AclCreationResult::default()
                            .with_error_code(code.code())
                            .with_error_message(Some(text(message)))
                    })
                    .collect(),
            )
        };
        if let Some((code, message)) = refusal(
            &broker,
            &ctx,
            Operation::Alter,
            "No Authorizer is configured.",
        ) {
            return refused(code, &message);
        }
        let creations: Vec<Result<AclBinding, String>> = request
            .creations
            .iter()
            .map(|c| {
                AclBinding::from_creation(
                    c.resource_type,
                    &c.resource_name,
                    c.resource_pattern_type,
                    &c.principal,
                    &c.host,
                    c.operation,
                    c.permission_type,
                )
            })
            .collect();
        let written = broker
            .write_metadata(|image| create_acls(image, creations, uuid::Uuid::new_v4))
            .await;
        match written {
            Ok(outcomes) => CreateAclsResponse::default().with_results(
                outcomes
                    .into_iter()
                    .map(|outcome| match outcome {
                        Ok(()) => AclCreationResult::default(),
                        Err(message) => AclCreationResult::default()
                            .with_error_code(ErrorCode::InvalidRequest.code())
                            .with_error_message(Some(text(&message))),
                    })
                    .collect(),
            ),
            Err(e) => {
                let (code, message) = e.into_error(|m| (ErrorCode::InvalidRequest, m));
                refused(code, &message)
            }
        }
    }
}

pub struct DescribeAclsHandler;

impl Handler for DescribeAclsHandler {
    type Request = DescribeAclsRequest;
    const KEY: ApiKey = ApiKey::DescribeAcls;
    const VERSIONS: VersionRange = ACL_VERSIONS;

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeAclsRequest,
    ) -> DescribeAclsResponse {
        let refused = |code: ErrorCode, message: String| {
            DescribeAclsResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(text(&message)))
        };
        if let Some((code, message)) = refusal(
            &broker,
            &ctx,
            Operation::Describe,
            "No Authorizer is configured on the broker",
        ) {
            return refused(code, message);
        }
        let filter = match AclFilter::from_codes(
            request.resource_type_filter,
            request.resource_name_filter.as_deref(),
            request.pattern_type_filter,
            request.principal_filter.as_deref(),
            request.host_filter.as_deref(),
            request.operation,
            request.permission_type,
        ) {
            Ok(filter) => filter,
            Err(message) => return refused(ErrorCode::InvalidRequest, message),
        };
        let image = broker.image();
        let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
        for (_, acl) in image.acls().iter().filter(|(_, acl)| filter.matches(acl)) {
            resources
                .entry((
                    acl.resource_type,
                    acl.resource_name.clone(),
                    acl.pattern_type,
                ))
                .or_default()
                .push(
                    AclDescription::default()
                        .with_principal(text(&acl.principal))
                        .with_host(text(&acl.host))
                        .with_operation(acl.operation as i8)
                        .with_permission_type(acl.permission as i8),
                );
        }
        DescribeAclsResponse::default().with_resources(
            resources
                .into_iter()
                .map(|((resource_type, name, pattern_type), acls)| {
                    DescribeAclsResource::default()
                        .with_resource_type(resource_type as i8)
                        .with_resource_name(text(&name))
                        .with_pattern_type(pattern_type as i8)
                        .with_acls(acls)
                })
                .collect(),
        )
    }
}

pub struct DeleteAclsHandler;

impl Handler for DeleteAclsHandler {
    type Request = DeleteAclsRequest;
    const KEY: ApiKey = ApiKey::DeleteAcls;
    const VERSIONS: VersionRange = ACL_VERSIONS;

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DeleteAclsRequest,
    ) -> DeleteAclsResponse {
        let refused = |code: ErrorCode, message: &str| {
            DeleteAclsResponse::default().with_filter_results(
                request
                    .filters
                    .iter()
                    .map(|_| {
                        DeleteAclsFilterResult::default()
                            .with_error_code(code.code())
                            .with_error_message(Some(text(message)))
                    })
                    .collect(),
            )
        };
        if let Some((code, message)) = refusal(
            &broker,
            &ctx,
            Operation::Alter,
            "No Authorizer is configured.",
        ) {
            return refused(code, &message);
        }
        let filters: Vec<Result<AclFilter, String>> = request
            .filters
            .iter()
            .map(|f| {
                AclFilter::from_codes(
                    f.resource_type_filter,
                    f.resource_name_filter.as_deref(),
                    f.pattern_type_filter,
                    f.principal_filter.as_deref(),
                    f.host_filter.as_deref(),
                    f.operation,
                    f.permission_type,
                )
            })
            .collect();
        let written = broker
            .write_metadata(|image| delete_acls(image, &filters))
            .await;
        match written {
            Ok(outcomes) => DeleteAclsResponse::default().with_filter_results(
                outcomes
                    .into_iter()
                    .map(|outcome| match outcome {
                        Ok(matched) => DeleteAclsFilterResult::default()
                            .with_matching_acls(matched.iter().map(matching_acl).collect()),
                        Err(message) => DeleteAclsFilterResult::default()
                            .with_error_code(ErrorCode::InvalidRequest.code())
                            .with_error_message(Some(text(&message))),
                    })
                    .collect(),
            ),
            Err(e) => {
                let (code, message) = e.into_error(|m| (ErrorCode::InvalidRequest, m));
                refused(code, &message)
            }
        }
    }
}

fn matching_acl(acl: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type as i8)
        .with_resource_name(text(&acl.resource_name))
        .with_pattern_type(acl.pattern_type as i8)
        .with_principal(text(&acl.principal))
        .with_host(text(&acl.host))
        .with_operation(acl.operation as i8)
        .with_permission_type(acl.permission as i8)
}

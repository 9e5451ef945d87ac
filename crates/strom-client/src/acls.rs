//! ACL administration: CreateAcls, DescribeAcls, DeleteAcls, with Kafka's
//! resource types, pattern types, operations and permissions.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{check, Error, Result};

/// Defines a Kafka ACL enum with its wire codes and names; names parse
/// case-insensitively with or without underscores (`DescribeConfigs`,
/// `DESCRIBE_CONFIGS`), as Kafka's tools accept them.
macro_rules! acl_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal, $kafka:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            /// A code this client does not know.
            Unknown,
            $($variant,)*
        }

        impl $name {
            pub fn code(self) -> i8 {
                match self {
                    Self::Unknown => 0,
                    $(Self::$variant => $code,)*
                }
            }

            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    _ => Self::Unknown,
                }
            }

            /// Kafka's name, e.g. `TOPIC`, `DESCRIBE_CONFIGS`.
            pub fn name(self) -> &'static str {
                match self {
                    Self::Unknown => "UNKNOWN",
                    $(Self::$variant => $kafka,)*
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                let squash = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
                let wanted = squash(text.trim());
                [$(Self::$variant,)*].into_iter().find(|v| squash(v.name()) == wanted)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

acl_enum!(
    /// Kafka's ResourceType.
    AclResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

acl_enum!(
    /// Kafka's PatternType.
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

acl_enum!(
    /// Kafka's AclOperation.
    AclOperation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

acl_enum!(
    /// Kafka's AclPermissionType.
    AclPermission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// The one name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// One ACL: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: AclResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} on {}:{}:{} from host {}",
            self.permission,
            self.operation,
            self.resource_type,
            self.pattern_type,
            self.resource_name,
            self.host
        )?;
        write!(f, " for {}", self.principal)
    }
}

/// Which ACLs to describe or delete; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: AclResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// Every ACL.
    pub fn any() -> Self {
        AclBindingFilter {
            resource_type: AclResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// The filter that matches exactly this binding.
    pub fn exact(binding: &AclBinding) -> Self {
        AclBindingFilter {
            resource_type: binding.resource_type,
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: binding.pattern_type,
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: binding.operation,
            permission: binding.permission,
        }
    }
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn binding(
    resource: (i8, &StrBytes, i8),
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> AclBinding {
    AclBinding {
        resource_type: AclResourceType::from_code(resource.0),
        resource_name: resource.1.to_string(),
        pattern_type: PatternType::from_code(resource.2),
        principal: principal.to_string(),
        host: host.to_string(),
        operation: AclOperation::from_code(operation),
        permission: AclPermission::from_code(permission),
    }
}

impl Admin {
    /// Creates ACLs; one result per binding, in the order given.
    pub async fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let request = CreateAclsRequest::default().with_creations(
            bindings
                .iter()
                .map(|b| {
                    AclCreation::default()
                        .with_resource_type(b.resource_type.code())
                        .with_resource_name(s(&b.resource_name))
                        .with_resource_pattern_type(b.pattern_type.code())
                        .with_principal(s(&b.principal))
                        .with_host(s(&b.host))
                        .with_operation(b.operation.code())
                        .with_permission_type(b.permission.code())
                })
                .collect(),
        );
        let response = self.client().send_to_controller(&request).await?;
        if response.results.len() != bindings.len() {
            return Err(Error::Protocol(format!(
                "CreateAcls answered {} results for {} ACLs",
                response.results.len(),
                bindings.len()
            )));
        }
        Ok(response
            .results
            .iter()
            .zip(bindings)
            .map(|(r, b)| check(r.error_code, r.error_message.as_deref(), format!("ACL {b}")))
            .collect())
    }

    /// The ACLs that match `filter`.
    pub async fn describe_acls(&mut self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type.code())
            .with_resource_name_filter(filter.resource_name.as_deref().map(s))
            .with_pattern_type_filter(filter.pattern_type.code())
            .with_principal_filter(filter.principal.as_deref().map(s))
            .with_host_filter(filter.host.as_deref().map(s))
            .with_operation(filter.operation.code())
            .with_permission_type(filter.permission.code());
        let response = self.client().send_to_controller(&request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            "describe ACLs",
        )?;
        let mut out = Vec::new();
        for resource in &response.resources {
            let pattern = (
                resource.resource_type,
                &resource.resource_name,
                resource.pattern_type,
            );
            for acl in &resource.acls {
                out.push(binding(
                    pattern,
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                ));
            }
        }
        Ok(out)
    }

    /// Deletes the ACLs matching each filter; per filter, the ACLs deleted.
    pub async fn delete_acls(
        &mut self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>>>> {
        let request = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type.code())
                        .with_resource_name_filter(f.resource_name.as_deref().map(s))
                        .with_pattern_type_filter(f.pattern_type.code())
                        .with_principal_filter(f.principal.as_deref().map(s))
                        .with_host_filter(f.host.as_deref().map(s))
                        .with_operation(f.operation.code())
                        .with_permission_type(f.permission.code())
                })
                .collect(),
        );
        let response = self.client().send_to_controller(&request).await?;
        if response.filter_results.len() != filters.len() {
            return Err(Error::Protocol(format!(
                "DeleteAcls answered {} results for {} filters",
                response.filter_results.len(),
                filters.len()
            )));
        }
        Ok(response
            .filter_results
            .iter()
            .map(|r| {
                check(r.error_code, r.error_message.as_deref(), "delete ACLs")?;
                r.matching_acls
                    .iter()
                    .map(|m| {
                        let acl = binding(
                            (m.resource_type, &m.resource_name, m.pattern_type),
                            &m.principal,
                            &m.host,
                            m.operation,
                            m.permission_type,
                        );
                        check(
                            m.error_code,
                            m.error_message.as_deref(),
                            format!("delete ACL {acl}"),
                        )?;
                        Ok(acl)
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_kafka_tools_accept_them() {
        assert_eq!(AclOperation::parse("Read"), Some(AclOperation::Read));
        assert_eq!(
            AclOperation::parse("DescribeConfigs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            AclOperation::parse("IDEMPOTENT_WRITE"),
            Some(AclOperation::IdempotentWrite)
        );
        assert_eq!(
            AclOperation::parse("cluster-action"),
            Some(AclOperation::ClusterAction)
        );
        assert_eq!(AclOperation::parse("unknown"), None);
        assert_eq!(AclOperation::parse("Reed"), None);
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(AclOperation::All.code(), 2);
        assert_eq!(AclOperation::from_code(12), AclOperation::IdempotentWrite);
        assert_eq!(AclOperation::from_code(99), AclOperation::Unknown);
        assert_eq!(AclResourceType::TransactionalId.name(), "TRANSACTIONAL_ID");
        assert_eq!(AclPermission::from_code(3), AclPermission::Allow);
    }
}

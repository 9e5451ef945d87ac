//! ACLs with the semantics of Kafka's StandardAuthorizer: bindings of a resource
//! pattern (literal, `*` or prefixed) to an entry (principal, host, operation,
//! allow or deny); super users allowed everything; a matching DENY wins over any
//! ALLOW; an ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE and of
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS (never so for DENY); a resource with no
//! ACL at all is allowed only with `allow.everyone.if.no.acl.found`. Filters select
//! bindings for DescribeAcls and DeleteAcls as Kafka's AclBindingFilter does.

use std::collections::BTreeSet;

use crate::KafkaPrincipal;

/// Kafka's resource types, with their wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

impl ResourceType {
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            2 => Self::Topic,
            3 => Self::Group,
            4 => Self::Cluster,
            5 => Self::TransactionalId,
            6 => Self::DelegationToken,
            7 => Self::User,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    Literal = 3,
    Prefixed = 4,
}

impl PatternType {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(Self::Literal),
            4 => Some(Self::Prefixed),
            _ => None,
        }
    }
}

/// Kafka's operations, with their wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

impl Operation {
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            2 => Self::All,
            3 => Self::Read,
            4 => Self::Write,
            5 => Self::Create,
            6 => Self::Delete,
            7 => Self::Alter,
            8 => Self::Describe,
            9 => Self::ClusterAction,
            10 => Self::DescribeConfigs,
            11 => Self::AlterConfigs,
            12 => Self::IdempotentWrite,
            13 => Self::CreateTokens,
            14 => Self::DescribeTokens,
            _ => return None,
        })
    }

    /// Whether an ALLOW of `self` allows `wanted` too.
    fn allows(self, wanted: Operation) -> bool {
        self == Operation::All
            || self == wanted
            || (wanted == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

impl Permission {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Self::Deny),
            3 => Some(Self::Allow),
            _ => None,
        }
    }
}

pub const WILDCARD: &str = "*";

/// One ACL: a resource pattern bound to an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for every principal.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    fn covers_resource(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied,
}

/// The ACLs in force and the authorizer's settings.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    acls: BTreeSet<AclBinding>,
    /// `super.users`, as principals (`User:admin`).
    super_users: BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found` (false).
    allow_if_no_acl: bool,
}

impl Authorizer {
    pub fn new(super_users: impl IntoIterator<Item = String>, allow_if_no_acl: bool) -> Self {
        Self {
            acls: BTreeSet::new(),
            super_users: super_users.into_iter().collect(),
            allow_if_no_acl,
        }
    }

    pub fn with_acls(mut self, acls: impl IntoIterator<Item = AclBinding>) -> Self {
        self.acls.extend(acls);
        self
    }

    pub fn acls(&self) -> impl Iterator<Item = &AclBinding> {
        self.acls.iter()
    }

    /// May `principal`, connected from `host`, do `operation` on the named resource?
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        let principal_text = principal.to_string();
        if self.super_users.contains(&principal_text) {
            return Decision::Allowed;
        }
        let wildcard_principal = format!("{}:{WILDCARD}", principal.principal_type);
        let mut any_acl = false;
        let mut allowed = false;
        for acl in self
            .acls
            .iter()
            .filter(|a| a.covers_resource(resource_type, name))
        {
            any_acl = true;
            if acl.principal != principal_text && acl.principal != wildcard_principal {
                continue;
            }
            if acl.host != WILDCARD && acl.host != host {
                continue;
            }
            match acl.permission {
                Permission::Deny
                    if acl.operation == Operation::All || acl.operation == operation =>
                {
                    return Decision::Denied;
                }
                Permission::Allow if acl.operation.allows(operation) => allowed = true,
                _ => {}
            }
        }
        match (allowed, any_acl) {
            (true, _) => Decision::Allowed,
            (false, false) if self.allow_if_no_acl => Decision::Allowed,
            _ => Decision::Denied,
        }
    }
}

/// Kafka's AclBindingFilter: `None` fields match anything; a pattern filter of
/// `Match` selects the bindings that would apply to the named resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatternFilter {
    #[default]
    Any,
    Match,
    Exactly(PatternType),
}

impl AclFilter {
    pub fn matches(&self, acl: &AclBinding) -> bool {
        let resource = self.resource_type.is_none_or(|t| t == acl.resource_type)
            && match (self.pattern, &self.resource_name) {
                (PatternFilter::Any, None) => true,
                (PatternFilter::Any, Some(name)) => *name == acl.resource_name,
                (PatternFilter::Exactly(p), name) => {
                    p == acl.pattern_type && name.as_ref().is_none_or(|n| *n == acl.resource_name)
                }
                (PatternFilter::Match, None) => true,
                (PatternFilter::Match, Some(name)) => acl.covers_resource(acl.resource_type, name),
            };
        resource
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation,
            permission,
        }
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    fn alice() -> KafkaPrincipal {
        KafkaPrincipal::user("alice")
    }

    #[test]
    fn allow_implies_describe_and_deny_wins() {
        let auth = Authorizer::new([], false).with_acls([
            acl(Topic, "orders", Literal, "User:alice", Write, Allow),
            acl(Topic, "logs-", Prefixed, "User:alice", Read, Allow),
            acl(Topic, "logs-secret", Literal, "User:alice", Read, Deny),
            acl(Group, "app", Literal, "User:*", Read, Allow),
        ]);
        let check = |op, rt, name| auth.authorize(&alice(), "10.0.0.1", op, rt, name);
        assert_eq!(check(Write, Topic, "orders"), Decision::Allowed);
        assert_eq!(check(Describe, Topic, "orders"), Decision::Allowed);
        assert_eq!(check(Read, Topic, "orders"), Decision::Denied);
        assert_eq!(check(Read, Topic, "logs-app"), Decision::Allowed);
        assert_eq!(check(Read, Topic, "logs-secret"), Decision::Denied);
        // A DENY of READ does not deny DESCRIBE; the prefixed ALLOW of READ implies it.
        assert_eq!(check(Describe, Topic, "logs-secret"), Decision::Allowed);
        assert_eq!(check(Read, Group, "app"), Decision::Allowed);
        assert_eq!(check(Read, Group, "other"), Decision::Denied);
        assert_eq!(check(Write, Topic, "elsewhere"), Decision::Denied);
    }

    #[test]
    fn super_users_hosts_and_the_no_acl_default() {
        let mut host_bound = acl(Topic, "t", Literal, "User:alice", All, Allow);
        host_bound.host = "10.0.0.1".into();
        let auth = Authorizer::new(["User:admin".to_string()], true).with_acls([
            host_bound,
            acl(Topic, WILDCARD, Literal, "User:bob", All, Deny),
        ]);
        assert_eq!(
            auth.authorize(&alice(), "10.0.0.1", Read, Topic, "t"),
            Decision::Allowed
        );
        assert_eq!(
            auth.authorize(&alice(), "10.0.0.2", Read, Topic, "t"),
            Decision::Denied
        );
        // Every topic has an ACL (the wildcard); a cluster resource has none.
        assert_eq!(
            auth.authorize(&alice(), "h", Read, Topic, "u"),
            Decision::Denied
        );
        assert_eq!(
            auth.authorize(&alice(), "h", Create, Cluster, "kafka-cluster"),
            Decision::Allowed
        );
        let bob = KafkaPrincipal::user("bob");
        assert_eq!(
            auth.authorize(&bob, "h", Read, Topic, "t"),
            Decision::Denied
        );
        let admin = KafkaPrincipal::user("admin");
        assert_eq!(
            auth.authorize(&admin, "h", Read, Topic, "t"),
            Decision::Allowed
        );
        let strict = Authorizer::new([], false);
        assert_eq!(
            strict.authorize(&alice(), "h", Create, Cluster, "kafka-cluster"),
            Decision::Denied
        );
    }

    #[test]
    fn filters_select_bindings_as_kafkas_acl_binding_filter() {
        let prefixed = acl(Topic, "logs-", Prefixed, "User:alice", Read, Allow);
        let literal = acl(Topic, "logs-app", Literal, "User:bob", Write, Deny);
        let any = AclFilter::default();
        assert!(any.matches(&prefixed) && any.matches(&literal));
        let matching = AclFilter {
            resource_type: Some(Topic),
            resource_name: Some("logs-app".into()),
            pattern: PatternFilter::Match,
            ..AclFilter::default()
        };
        assert!(matching.matches(&prefixed) && matching.matches(&literal));
        let exact = AclFilter {
            resource_name: Some("logs-app".into()),
            ..AclFilter::default()
        };
        assert!(!exact.matches(&prefixed) && exact.matches(&literal));
        let only_prefixed = AclFilter {
            pattern: PatternFilter::Exactly(Prefixed),
            permission: Some(Allow),
            ..AclFilter::default()
        };
        assert!(only_prefixed.matches(&prefixed) && !only_prefixed.matches(&literal));
    }
}

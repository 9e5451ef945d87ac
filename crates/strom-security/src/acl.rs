//! ACLs with the semantics of Kafka's StandardAuthorizer: bindings of a resource
//! pattern (literal, `*` or prefixed) to an entry (principal, host, operation,
//! allow or deny); super users allowed everything; a matching DENY wins over any
//! ALLOW; an ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE and of
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS (never so for DENY); a resource with no
//! ACL at all is allowed only with `allow.everyone.if.no.acl.found`. Filters select
//! bindings for DescribeAcls and DeleteAcls as Kafka's AclBindingFilter does.

use std::collections::{BTreeMap, BTreeSet};

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

/// The ACLs in force, each under its id, indexed by resource pattern so a check
/// looks at the bindings that can apply to one resource only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclSet {
    by_id: BTreeMap<u128, AclBinding>,
    by_pattern: BTreeMap<(ResourceType, PatternType, String), BTreeSet<AclBinding>>,
}

impl AclSet {
    pub fn insert(&mut self, id: u128, acl: AclBinding) {
        if let Some(old) = self.by_id.insert(id, acl.clone()) {
            self.unindex(&old);
        }
        self.by_pattern
            .entry((
                acl.resource_type,
                acl.pattern_type,
                acl.resource_name.clone(),
            ))
            .or_default()
            .insert(acl);
    }

    pub fn remove(&mut self, id: u128) -> Option<AclBinding> {
        let acl = self.by_id.remove(&id)?;
        self.unindex(&acl);
        Some(acl)
    }

    fn unindex(&mut self, acl: &AclBinding) {
        let key = (
            acl.resource_type,
            acl.pattern_type,
            acl.resource_name.clone(),
        );
        if let Some(set) = self.by_pattern.get_mut(&key) {
            // Another id may hold an identical binding (never made by the controller).
            if !self.by_id.values().any(|a| a == acl) {
                set.remove(acl);
            }
            if set.is_empty() {
                self.by_pattern.remove(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every ACL with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, &AclBinding)> {
        self.by_id.iter().map(|(id, acl)| (*id, acl))
    }

    pub fn contains(&self, acl: &AclBinding) -> bool {
        self.by_pattern
            .get(&(
                acl.resource_type,
                acl.pattern_type,
                acl.resource_name.clone(),
            ))
            .is_some_and(|set| set.contains(acl))
    }

    /// The bindings whose pattern covers the named resource: literal on the name or
    /// `*`, and prefixed on any prefix of the name.
    fn covering<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> + 'a {
        let literal = [name, WILDCARD]
            .into_iter()
            .enumerate()
            .filter(move |(i, n)| *i == 0 || name != *n)
            .filter_map(move |(_, n)| {
                self.by_pattern
                    .get(&(resource_type, PatternType::Literal, n.to_string()))
            });
        let prefixed = (0..=name.len())
            .filter(move |i| name.is_char_boundary(*i))
            .filter_map(move |i| {
                self.by_pattern
                    .get(&(resource_type, PatternType::Prefixed, name[..i].to_string()))
            });
        literal.chain(prefixed).flatten()
    }
}

/// The authorizer's settings; the ACLs come with each check.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    /// `super.users`, as principals (`User:admin`).
    super_users: BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found` (false).
    allow_if_no_acl: bool,
}

impl Authorizer {
    pub fn new(super_users: impl IntoIterator<Item = String>, allow_if_no_acl: bool) -> Self {
        Self {
            super_users: super_users.into_iter().collect(),
            allow_if_no_acl,
        }
    }

    /// May `principal`, connected from `host`, do `operation` on the named resource?
    pub fn authorize(
        &self,
        acls: &AclSet,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        if self.is_super_user(principal) {
            return Decision::Allowed;
        }
        let principal_text = principal.to_string();
        let wildcard_principal = format!("{}:{WILDCARD}", principal.principal_type);
        let mut any_acl = false;
        let mut allowed = false;
        for acl in acls.covering(resource_type, name) {
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

    pub fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        self.super_users.contains(&principal.to_string())
    }

    /// Kafka's `authorizeByResourceType`: may the principal do `operation` on at least
    /// one resource of the type? Some ALLOW must match it, on a literal or prefixed
    /// pattern, with no DENY of the same principal and host on `*` or on a pattern
    /// covering that allowed one.
    pub fn authorize_any(
        &self,
        acls: &AclSet,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> Decision {
        // Kafka first checks a made-up name: super users and, with no ACL on it,
        // `allow.everyone.if.no.acl.found` pass here.
        if self.authorize(acls, principal, host, operation, resource_type, "hardcode")
            == Decision::Allowed
        {
            return Decision::Allowed;
        }
        let principal_text = principal.to_string();
        let wildcard_principal = format!("{}:{WILDCARD}", principal.principal_type);
        let applies = |acl: &AclBinding| {
            acl.resource_type == resource_type
                && (acl.principal == principal_text || acl.principal == wildcard_principal)
                && (acl.host == WILDCARD || acl.host == host)
        };
        let denied = |acl: &AclBinding| {
            applies(acl)
                && acl.permission == Permission::Deny
                && (acl.operation == Operation::All || acl.operation == operation)
        };
        let any_allowed = acls.iter().map(|(_, a)| a).any(|allow| {
            applies(allow)
                && allow.permission == Permission::Allow
                && allow.operation.allows(operation)
                && !acls
                    .covering(resource_type, &allow.resource_name)
                    .any(|deny| {
                        denied(deny)
                            && (deny.pattern_type == PatternType::Prefixed
                                || deny.resource_name == WILDCARD
                                || allow.pattern_type == PatternType::Literal)
                    })
        });
        if any_allowed {
            Decision::Allowed
        } else {
            Decision::Denied
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

/// Wire codes shared by the ACL APIs' filters: UNKNOWN is 0 and ANY is 1 for the
/// resource type, operation and permission; MATCH is 2 for the pattern type.
const ANY_CODE: i8 = 1;
const MATCH_CODE: i8 = 2;

/// Kafka's name of a resource, pattern, operation or permission code, as its
/// messages print them.
fn code_name(kind: &str, code: i8) -> &'static str {
    match (kind, code) {
        (_, 0) => "UNKNOWN",
        (_, 1) => "ANY",
        ("pattern", 2) => "MATCH",
        _ => "UNKNOWN",
    }
}

impl AclBinding {
    /// A CreateAcls creation, checked as Kafka's CreateAclsRequest, AclApis and
    /// AclControlManager check it; the error is INVALID_REQUEST's message.
    pub fn from_creation(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Self, String> {
        let resource_type = ResourceType::from_code(resource_type).ok_or_else(|| {
            format!(
                "Invalid resourceType {}",
                code_name("resource", resource_type)
            )
        })?;
        if resource_type == ResourceType::Cluster && resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if resource_name.is_empty() {
            return Err("Invalid empty resource name".into());
        }
        let pattern_type = PatternType::from_code(pattern_type)
            .ok_or_else(|| format!("Invalid patternType {}", code_name("pattern", pattern_type)))?;
        let operation = Operation::from_code(operation)
            .ok_or_else(|| format!("Invalid operation {}", code_name("operation", operation)))?;
        let permission = Permission::from_code(permission).ok_or_else(|| {
            format!(
                "Invalid permissionType {}",
                code_name("permission", permission)
            )
        })?;
        if KafkaPrincipal::parse(principal).is_none() {
            return Err(format!(
                "Could not parse principal from `{principal}` (no colon is present separating the principal type from the principal name)"
            ));
        }
        Ok(Self {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        })
    }
}

/// The one name a CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";

impl AclFilter {
    /// A DescribeAcls or DeleteAcls filter from its wire codes (ANY selects all; an
    /// UNKNOWN code is refused, as Kafka refuses such a request).
    #[allow(clippy::too_many_arguments)]
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, String> {
        let unknown = || "Filter contains UNKNOWN elements".to_string();
        let resource_type = match resource_type {
            ANY_CODE => None,
            code => Some(ResourceType::from_code(code).ok_or_else(unknown)?),
        };
        let pattern = match pattern_type {
            ANY_CODE => PatternFilter::Any,
            MATCH_CODE => PatternFilter::Match,
            code => PatternFilter::Exactly(PatternType::from_code(code).ok_or_else(unknown)?),
        };
        let operation = match operation {
            ANY_CODE => None,
            code => Some(Operation::from_code(code).ok_or_else(unknown)?),
        };
        let permission = match permission {
            ANY_CODE => None,
            code => Some(Permission::from_code(code).ok_or_else(unknown)?),
        };
        Ok(Self {
            resource_type,
            resource_name: resource_name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
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

    fn set(acls: impl IntoIterator<Item = AclBinding>) -> AclSet {
        let mut set = AclSet::default();
        for (id, acl) in acls.into_iter().enumerate() {
            set.insert(id as u128, acl);
        }
        set
    }

    #[test]
    fn by_resource_type_as_kafkas_authorize_by_resource_type() {
        let auth = Authorizer::new(["User:admin".to_string()], false);
        let none = set([]);
        let any =
            |acls: &AclSet, who: &KafkaPrincipal| auth.authorize_any(acls, who, "h", Write, Topic);
        assert_eq!(any(&none, &alice()), Decision::Denied);
        assert_eq!(
            any(&none, &KafkaPrincipal::user("admin")),
            Decision::Allowed
        );
        let literal = set([acl(Topic, "t", Literal, "User:alice", Write, Allow)]);
        assert_eq!(any(&literal, &alice()), Decision::Allowed);
        let denied_literal = set([
            acl(Topic, "t", Literal, "User:alice", Write, Allow),
            acl(Topic, "t", Prefixed, "User:*", All, Deny),
        ]);
        assert_eq!(any(&denied_literal, &alice()), Decision::Denied);
        // A literal DENY of the prefix's own name does not cover a prefixed ALLOW.
        let prefix = set([
            acl(Topic, "logs-", Prefixed, "User:alice", Write, Allow),
            acl(Topic, "logs-", Literal, "User:alice", Write, Deny),
        ]);
        assert_eq!(any(&prefix, &alice()), Decision::Allowed);
        let star = set([
            acl(Topic, "logs-", Prefixed, "User:alice", Write, Allow),
            acl(Topic, WILDCARD, Literal, "User:alice", Write, Deny),
        ]);
        assert_eq!(any(&star, &alice()), Decision::Denied);
        assert_eq!(any(&star, &KafkaPrincipal::user("bob")), Decision::Denied);
    }

    #[test]
    fn the_set_indexes_and_forgets_bindings_by_id() {
        let mut acls = set([
            acl(Topic, "a", Literal, "User:alice", Read, Allow),
            acl(Topic, "a", Prefixed, "User:alice", Read, Allow),
        ]);
        let auth = Authorizer::new([], false);
        assert_eq!(acls.len(), 2);
        assert!(acls.contains(&acl(Topic, "a", Prefixed, "User:alice", Read, Allow)));
        assert_eq!(acls.covering(Topic, "ab").count(), 1);
        assert_eq!(acls.covering(Topic, "a").count(), 2);
        acls.remove(1);
        assert_eq!(acls.covering(Topic, "ab").count(), 0);
        assert_eq!(
            auth.authorize(&acls, &alice(), "h", Read, Topic, "a"),
            Decision::Allowed
        );
        acls.remove(0);
        assert!(acls.is_empty());
        assert_eq!(acls.by_pattern.len(), 0);
    }

    fn alice() -> KafkaPrincipal {
        KafkaPrincipal::user("alice")
    }

    #[test]
    fn allow_implies_describe_and_deny_wins() {
        let auth = Authorizer::new([], false);
        let acls = set([
            acl(Topic, "orders", Literal, "User:alice", Write, Allow),
            acl(Topic, "logs-", Prefixed, "User:alice", Read, Allow),
            acl(Topic, "logs-secret", Literal, "User:alice", Read, Deny),
            acl(Group, "app", Literal, "User:*", Read, Allow),
        ]);
        let check = |op, rt, name| auth.authorize(&acls, &alice(), "10.0.0.1", op, rt, name);
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
        let auth = Authorizer::new(["User:admin".to_string()], true);
        let acls = set([
            host_bound,
            acl(Topic, WILDCARD, Literal, "User:bob", All, Deny),
        ]);
        assert_eq!(
            auth.authorize(&acls, &alice(), "10.0.0.1", Read, Topic, "t"),
            Decision::Allowed
        );
        assert_eq!(
            auth.authorize(&acls, &alice(), "10.0.0.2", Read, Topic, "t"),
            Decision::Denied
        );
        // Every topic has an ACL (the wildcard); a cluster resource has none.
        assert_eq!(
            auth.authorize(&acls, &alice(), "h", Read, Topic, "u"),
            Decision::Denied
        );
        assert_eq!(
            auth.authorize(&acls, &alice(), "h", Create, Cluster, "kafka-cluster"),
            Decision::Allowed
        );
        let bob = KafkaPrincipal::user("bob");
        assert_eq!(
            auth.authorize(&acls, &bob, "h", Read, Topic, "t"),
            Decision::Denied
        );
        let admin = KafkaPrincipal::user("admin");
        assert_eq!(
            auth.authorize(&acls, &admin, "h", Read, Topic, "t"),
            Decision::Allowed
        );
        let strict = Authorizer::new([], false);
        assert_eq!(
            strict.authorize(&set([]), &alice(), "h", Create, Cluster, "kafka-cluster"),
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

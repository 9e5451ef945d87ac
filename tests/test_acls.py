"""ACLs with Kafka's StandardAuthorizer semantics (authorizer.class.name), managed through
confluent-kafka's AdminClient (CreateAcls, DescribeAcls, DeleteAcls) and checked on the APIs
real clients use: a user allowed to write one topic and read it with one group can do exactly
that, and each other action gets the authorization error Kafka returns; prefixed ACLs, DENY
over ALLOW, super users; ACLs survive kill -9; without an authorizer the ACL APIs answer
SECURITY_DISABLED. Users authenticate with SASL/PLAIN over SASL_PLAINTEXT."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";')
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def acl_configs(**extra) -> dict[str, str]:
    return {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": "User:admin",
        **extra,
    }


def as_user(broker, user: str, **extra) -> dict:
    return {"bootstrap.servers": broker.address("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": f"{user}-secret", **extra}


def allow(resource_type, name, principal, operation, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW) -> AclBinding:
    return AclBinding(resource_type, name, pattern, principal, "*", operation, permission)


def create_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    for f in admin.create_acls(bindings, request_timeout=15).values():
        f.result(timeout=15)


def produce_one(conf: dict, topic: str, value: bytes) -> KafkaError | None:
    """Produces one record; the delivery error (None when acknowledged)."""
    errors = []
    p = Producer({**conf, "message.timeout.ms": 10000, "enable.idempotence": False})
    p.produce(topic, value=value, on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert len(errors) == 1, "no delivery report"
    return errors[0]


def poll_errors(consumer: Consumer, seconds: int = 10) -> set[int]:
    """The error codes a consumer reports within `seconds` (stops at the first)."""
    codes = set()
    for _ in range(seconds * 2):
        m = consumer.poll(0.5)
        if m is not None and m.error():
            codes.add(m.error().code())
            break
    return codes


@pytest.fixture
def secured(broker_factory):
    return broker_factory(acl_configs(), listeners=["SASL_PLAINTEXT"])


def setup_topics(broker, names: list[str]) -> AdminClient:
    admin = AdminClient(as_user(broker, "admin"))
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(timeout=15)
    return admin


def test_a_user_allowed_one_topic_and_one_group_can_do_exactly_that(secured):
    admin = setup_topics(secured, ["orders", "secret"])
    create_acls(admin, [
        allow(ResourceType.TOPIC, "orders", "User:alice", AclOperation.WRITE),
        allow(ResourceType.TOPIC, "orders", "User:alice", AclOperation.READ),
        allow(ResourceType.GROUP, "app", "User:alice", AclOperation.READ),
    ])
    alice = as_user(secured, "alice")
    assert produce_one(alice, "orders", b"o1") is None
    # Writing another topic: TOPIC_AUTHORIZATION_FAILED.
    err = produce_one(alice, "secret", b"x")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    # The super user may write anywhere.
    assert produce_one(as_user(secured, "admin"), "secret", b"s1") is None

    # Reading orders with group app: the record, and the commit is kept.
    c = Consumer({**alice, "group.id": "app", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition("orders", 0, 0)])
    msg = None
    for _ in range(30):
        msg = c.poll(1)
        if msg is not None and not msg.error():
            break
    assert msg is not None and msg.error() is None and msg.value() == b"o1"
    c.commit(message=msg, asynchronous=False)
    assert c.committed([TopicPartition("orders", 0)], timeout=10)[0].offset == 1
    c.close()

    # Another group: the coordinator lookup gets GROUP_AUTHORIZATION_FAILED, which the
    # consumer reports.
    other = Consumer({**alice, "group.id": "other"})
    other.subscribe(["orders"])
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in poll_errors(other), "no group error"
    other.close()

    # Subscribing to the other topic: its metadata is refused, which the consumer reports.
    c = Consumer({**alice, "group.id": "app", "auto.offset.reset": "earliest"})
    c.subscribe(["secret"])
    codes = poll_errors(c)
    c.close()
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes, codes

    # Creating a topic, and any ACL API: the authorization errors.
    alice_admin = AdminClient(alice)
    with pytest.raises(KafkaException) as created:
        alice_admin.create_topics([NewTopic("mine", 1, 1)])["mine"].result(timeout=15)
    assert created.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # DescribeAcls needs DESCRIBE on the cluster (kafka-python raises the top-level error,
    # which confluent-kafka's describe_acls leaves out).
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import ClusterAuthorizationFailedError
    kp_admin = KafkaAdminClient(bootstrap_servers=secured.address("SASL_PLAINTEXT"),
                                security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                                sasl_plain_username="alice", sasl_plain_password="alice-secret")
    every_acl = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY,
                          resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None,
                                                                 ACLResourcePatternType.ANY))
    with pytest.raises(ClusterAuthorizationFailedError):
        kp_admin.describe_acls(every_acl)
    kp_admin.close()
    # Metadata for everything lists only what alice may describe.
    listed = alice_admin.list_topics(timeout=10).topics
    assert set(listed) == {"orders"}, set(listed)


def test_prefixed_acls_deny_over_allow_and_acl_management(secured):
    admin = setup_topics(secured, ["logs-app", "logs-secret", "other"])
    for topic in ["logs-app", "logs-secret", "other"]:
        assert produce_one(as_user(secured, "admin"), topic, topic.encode()) is None
    create_acls(admin, [
        allow(ResourceType.TOPIC, "logs-", "User:bob", AclOperation.WRITE, ResourcePatternType.PREFIXED),
        allow(ResourceType.TOPIC, "logs-secret", "User:*", AclOperation.WRITE,
              permission=AclPermissionType.DENY),
    ])
    bob = as_user(secured, "bob")
    assert produce_one(bob, "logs-app", b"b1") is None
    err = produce_one(bob, "logs-secret", b"no")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    err = produce_one(bob, "other", b"no")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err

    # DescribeAcls with a MATCH filter: the ACLs that apply to logs-secret.
    match = AclBindingFilter(ResourceType.TOPIC, "logs-secret", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    found = admin.describe_acls(match, request_timeout=15).result(timeout=15)
    assert sorted((b.name, b.resource_pattern_type, b.principal, b.permission_type) for b in found) == [
        ("logs-", ResourcePatternType.PREFIXED, "User:bob", AclPermissionType.ALLOW),
        ("logs-secret", ResourcePatternType.LITERAL, "User:*", AclPermissionType.DENY),
    ]
    # An invalid binding is refused with INVALID_REQUEST and Kafka's message.
    bad = AclBinding(ResourceType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL, "User:bob", "*",
                     AclOperation.ALTER, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as invalid:
        create_acls(admin, [bad])
    assert invalid.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert "The only valid name for the CLUSTER resource is kafka-cluster" in invalid.value.args[0].str()

    # Deleting the DENY lets bob write logs-secret; the deleted binding is reported.
    deny_filter = AclBindingFilter(ResourceType.TOPIC, "logs-secret", ResourcePatternType.LITERAL, None, None,
                                   AclOperation.ANY, AclPermissionType.DENY)
    deleted = list(admin.delete_acls([deny_filter], request_timeout=15).values())[0].result(timeout=15)
    assert [(b.name, b.principal, b.operation) for b in deleted] == [("logs-secret", "User:*", AclOperation.WRITE)]
    assert produce_one(bob, "logs-secret", b"b2") is None

    # ACLs are in the metadata log: they survive kill -9.
    secured.restart(kill=True)
    err = produce_one(bob, "other", b"no")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert produce_one(bob, "logs-app", b"b3") is None
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    admin = AdminClient(as_user(secured, "admin"))
    left = admin.describe_acls(everything, request_timeout=15).result(timeout=15)
    assert [(b.name, b.principal) for b in left] == [("logs-", "User:bob")]


def test_without_an_authorizer_the_acl_apis_answer_security_disabled(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with pytest.raises(KafkaException) as refused:
        create_acls(admin, [allow(ResourceType.TOPIC, "t", "User:alice", AclOperation.READ)])
    assert refused.value.args[0].code() == KafkaError.SECURITY_DISABLED
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import SecurityDisabledError
    kp_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    every_acl = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY,
                          resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None,
                                                                 ACLResourcePatternType.ANY))
    with pytest.raises(SecurityDisabledError):
        kp_admin.describe_acls(every_acl)
    kp_admin.close()


def test_allow_everyone_if_no_acl_found_and_super_users(broker_factory):
    b = broker_factory(acl_configs(**{"allow.everyone.if.no.acl.found": "true"}), listeners=["SASL_PLAINTEXT"])
    topic = f"open-{uuid.uuid4().hex[:6]}"
    admin = setup_topics(b, [topic, "guarded"])
    # No ACL on the topic: anyone may write it.
    assert produce_one(as_user(b, "bob"), topic, b"open") is None
    # One ACL on it (for alice) and bob is no longer allowed.
    create_acls(admin, [allow(ResourceType.TOPIC, "guarded", "User:alice", AclOperation.WRITE)])
    err = produce_one(as_user(b, "bob"), "guarded", b"no")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert produce_one(as_user(b, "alice"), "guarded", b"yes") is None

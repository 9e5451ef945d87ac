"""ACLs with Kafka's StandardAuthorizer semantics (authorizer.class.name), managed through
confluent-kafka's AdminClient (CreateAcls, DescribeAcls, DeleteAcls) and checked on the APIs
real clients use: a user allowed to write one topic and read it with one group can do exactly
that, and each other action gets the authorization error Kafka returns; prefixed ACLs, DENY
over ALLOW, super users; ACLs survive kill -9; without an authorizer the ACL APIs answer
SECURITY_DISABLED. Users authenticate with SASL/PLAIN over SASL_PLAINTEXT."""

from __future__ import annotations

import re
import socket
import struct
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

import kwire
from cluster import Cluster

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


def kp_admin_as(broker, user: str):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=broker.address("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="PLAIN", sasl_plain_username=user, sasl_plain_password=f"{user}-secret")


def send_raw(kp_admin, request):
    return kp_admin._manager.run(kp_admin._manager.send, request)


def partition_errors(topics) -> dict[tuple[str, int], int]:
    return {(t.name, p.partition_index): p.error_code for t in topics for p in t.partitions}


def test_offset_apis_check_the_group_then_each_topic_then_its_existence(secured):
    """OffsetCommit, OffsetFetch and TxnOffsetCommit as Kafka's KafkaApis checks them: READ on
    the group for the whole request; then READ on each topic (TOPIC_AUTHORIZATION_FAILED, also for
    a topic that does not exist); then UNKNOWN_TOPIC_OR_PARTITION; only the rest is committed."""
    from kafka.protocol.consumer.group import OffsetCommitRequest, OffsetFetchRequest
    from kafka.protocol.producer import TxnOffsetCommitRequest
    setup_topics(secured, ["readable", "hidden"])
    create_acls(AdminClient(as_user(secured, "admin")), [
        allow(ResourceType.TOPIC, "readable", "User:alice", AclOperation.READ, ResourcePatternType.PREFIXED),
        allow(ResourceType.GROUP, "g", "User:alice", AclOperation.READ),
        allow(ResourceType.TRANSACTIONAL_ID, "tx", "User:alice", AclOperation.WRITE),
    ])
    alice = kp_admin_as(secured, "alice")
    try:
        C = OffsetCommitRequest

        def commit(group: str, topics: list[str]):
            return send_raw(alice, C(group_id=group, generation_id_or_member_epoch=-1, member_id="",
                                     topics=[C.OffsetCommitRequestTopic(name=t, partitions=[
                                         C.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
                                             partition_index=0, committed_offset=5, committed_metadata="m")])
                                             for t in topics]))
        # "readable-ghost" matches alice's prefixed READ but does not exist; "hidden-ghost" neither.
        asked = ["readable", "hidden", "readable-ghost", "hidden-ghost"]
        assert partition_errors(commit("g", asked).topics) == {
            ("readable", 0): 0, ("hidden", 0): 29, ("readable-ghost", 0): 3, ("hidden-ghost", 0): 29}
        # A group alice may not read: GROUP_AUTHORIZATION_FAILED for every partition.
        assert partition_errors(commit("other", asked).topics) == {(t, 0): 30 for t in asked}

        F = OffsetFetchRequest
        fetched = send_raw(alice, F(groups=[F.OffsetFetchRequestGroup(group_id="g", topics=[
            F.OffsetFetchRequestGroup.OffsetFetchRequestTopics(name=t, partition_indexes=[0])
            for t in ("readable", "hidden")])], require_stable=False))
        (group,) = fetched.groups
        assert group.error_code == 0
        got = {(t.name, p.partition_index): (p.error_code, p.committed_offset) for t in group.topics
               for p in t.partitions}
        assert got == {("readable", 0): (0, 5), ("hidden", 0): (29, -1)}, got

        T = TxnOffsetCommitRequest

        def txn_commit(txn: str, group: str, topics: list[str]):
            return send_raw(alice, T(transactional_id=txn, group_id=group, producer_id=4242, producer_epoch=0,
                                     generation_id=-1, member_id="", group_instance_id=None,
                                     topics=[T.TxnOffsetCommitRequestTopic(name=t, partitions=[
                                         T.TxnOffsetCommitRequestTopic.TxnOffsetCommitRequestPartition(
                                             partition_index=0, committed_offset=7, committed_leader_epoch=-1,
                                             committed_metadata=None)]) for t in topics]))
        refused = ["hidden", "readable-ghost", "hidden-ghost"]
        assert partition_errors(txn_commit("tx", "g", refused).topics) == {
            ("hidden", 0): 29, ("readable-ghost", 0): 3, ("hidden-ghost", 0): 29}
        assert partition_errors(txn_commit("tx", "other", refused).topics) == {(t, 0): 30 for t in refused}
        assert partition_errors(txn_commit("other-tx", "g", refused).topics) == {(t, 0): 53 for t in refused}
    finally:
        alice.close()


def test_create_topics_configs_and_list_config_resources_need_describe_configs(secured):
    from kafka.protocol.admin import CreateTopicsRequest, ListConfigResourcesRequest
    admin = setup_topics(secured, ["existing"])
    create_acls(admin, [allow(ResourceType.TOPIC, "mine-", "User:alice", AclOperation.CREATE,
                              ResourcePatternType.PREFIXED)])
    alice = kp_admin_as(secured, "alice")
    root = kp_admin_as(secured, "admin")
    try:
        R = CreateTopicsRequest

        def create(name: str):
            response = send_raw(alice, R(topics=[R.CreatableTopic(name=name, num_partitions=2, replication_factor=1,
                                                                  assignments=[], configs=[R.CreatableTopic.CreatableTopicConfig(
                                                                      name="retention.ms", value="3600000")])],
                                         timeout_ms=15000, validate_only=False))
            (topic,) = response.topics
            assert topic.error_code == 0, topic
            return topic
        # CREATE without DESCRIBE_CONFIGS: created, but its partition count, replication factor and
        # configs are left out with TOPIC_AUTHORIZATION_FAILED as its config error.
        hidden = create("mine-a")
        assert (hidden.topic_config_error_code, hidden.num_partitions, hidden.replication_factor) == (29, -1, -1)
        assert not hidden.configs
        create_acls(admin, [allow(ResourceType.TOPIC, "mine-", "User:alice", AclOperation.DESCRIBE_CONFIGS,
                                  ResourcePatternType.PREFIXED)])
        shown = create("mine-b")
        assert (shown.topic_config_error_code, shown.num_partitions, shown.replication_factor) == (0, 2, 1)
        assert {c.name: c.value for c in shown.configs}["retention.ms"] == "3600000"

        # ListConfigResources: DESCRIBE_CONFIGS on the cluster.
        L = ListConfigResourcesRequest
        assert send_raw(alice, L(resource_types=[2])).error_code == 31
        listed = send_raw(root, L(resource_types=[2]))
        assert listed.error_code == 0
        assert {"existing", "mine-a", "mine-b"} <= {r.resource_name for r in listed.config_resources}
    finally:
        alice.close()
        root.close()


def consumer_group_heartbeat_v0(sock, group: str, topics: list[str]) -> int:
    """A KIP-848 join (member epoch 0) subscribing to `topics`; the response's error code."""
    body = (kwire.enc_compact_string(group) + kwire.enc_compact_string("") + struct.pack(">i", 0)
            + kwire.enc_compact_string(None) + kwire.enc_compact_string(None) + struct.pack(">i", 30000)
            + kwire.enc_compact_array([kwire.enc_compact_string(t) for t in topics])
            + kwire.enc_compact_string(None) + kwire.enc_compact_array([]) + b"\x00")
    r = kwire.flexible_roundtrip(sock, 68, 0, 11, body)
    r.i32()  # throttle_time_ms
    return r.i16()


def test_consumer_group_heartbeat_needs_describe_on_every_subscribed_topic(secured):
    setup_topics(secured, ["shown", "unseen"])
    admin = AdminClient(as_user(secured, "admin"))
    create_acls(admin, [allow(ResourceType.TOPIC, "shown", "User:ANONYMOUS", AclOperation.DESCRIBE),
                        allow(ResourceType.GROUP, "g848", "User:ANONYMOUS", AclOperation.READ)])
    host, port = secured.bootstrap.split(":")
    with kwire.connect(host, int(port)) as sock:
        assert consumer_group_heartbeat_v0(sock, "g848", ["shown", "unseen"]) == 29
        assert consumer_group_heartbeat_v0(sock, "g848", ["shown"]) == 0
        assert consumer_group_heartbeat_v0(sock, "elsewhere", ["shown"]) == 30


def test_node_requests_on_the_controller_listener_need_cluster_action(tmp_path):
    """BrokerHeartbeat (and the other broker-to-controller APIs) answer CLUSTER_AUTHORIZATION_FAILED,
    and strom's node requests (Raft, forwarded requests) close the connection, for a principal
    without CLUSTER_ACTION; the node's own requests, allowed, go on. Told apart by host: the node
    connects from 127.0.0.1, the refused caller from 127.0.0.2."""
    cluster = Cluster(tmp_path, size=1, configs={"authorizer.class.name": STANDARD_AUTHORIZER,
                                                 "allow.everyone.if.no.acl.found": "true"}).start()
    try:
        node = cluster.nodes[1]
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        create_acls(admin, [
            AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:ANONYMOUS",
                       "127.0.0.1", AclOperation.ALL, AclPermissionType.ALLOW),
            AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:ANONYMOUS",
                       "127.0.0.2", AclOperation.CLUSTER_ACTION, AclPermissionType.DENY),
        ])

        def heartbeat_error(source: str) -> int:
            with socket.create_connection(("127.0.0.1", node.controller_port), timeout=5,
                                          source_address=(source, 0)) as sock:
                body = struct.pack(">iqq??", 1, 0, 0, False, False) + b"\x00"
                r = kwire.flexible_roundtrip(sock, 63, 0, 5, body)
                r.i32()  # throttle_time_ms
                return r.i16()
        assert heartbeat_error("127.0.0.2") == 31
        assert heartbeat_error("127.0.0.1") not in (0, 31)  # a stale epoch, but allowed

        # A node request (the leader query, no body): answered from 127.0.0.1, the connection
        # closed from 127.0.0.2 with a log line naming the principal.
        frame = kwire.request_frame(32700, 2, 9, b"")
        with socket.create_connection(("127.0.0.1", node.controller_port), timeout=5,
                                      source_address=("127.0.0.1", 0)) as sock:
            sock.sendall(frame)
            assert len(kwire.recv_frame(sock)) > 4
        with socket.create_connection(("127.0.0.1", node.controller_port), timeout=5,
                                      source_address=("127.0.0.2", 0)) as sock:
            sock.sendall(frame)
            assert sock.recv(1) == b""
        # The line may be written just after the connection closes.
        node.wait_for_log(re.escape("User:ANONYMOUS, who lacks CLUSTER_ACTION"), timeout_s=10)

        # The node's own heartbeats and forwarded requests go on: a topic is created and written.
        topic = f"after-{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
        assert produce_one({"bootstrap.servers": cluster.bootstrap}, topic, b"v") is None
    finally:
        cluster.stop_all()

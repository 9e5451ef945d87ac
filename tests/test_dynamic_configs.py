"""Dynamic broker configs and group configs (KIP-848), as Kafka 4.x serves them.

Broker configs change through AlterConfigs and IncrementalAlterConfigs on BROKER resources, for one
broker ("1") or the cluster-wide default (""); they are stored as metadata records (so they survive a
restart), reported by DescribeConfigs with Kafka's sources and synonyms, and the ones strom has a part
for apply at once. Group configs (resource type 32) bound by the broker's limits set a KIP-848 group's
session timeout and heartbeat interval. ListConfigResources (key 74) lists what can carry configs.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

import kwire
from helpers import admin, create_topic, error_code, produce_errors, producer, unique, wait_until

API_DESCRIBE_CONFIGS = 32
API_INCREMENTAL_ALTER_CONFIGS = 44
API_CONSUMER_GROUP_HEARTBEAT = 68
API_LIST_CONFIG_RESOURCES = 74

# DescribeConfigs' config_source codes.
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT, GROUP_CONFIG = 1, 2, 3, 4, 5, 8
TOPIC, BROKER, CLIENT_METRICS, GROUP = 2, 4, 16, 32

INVALID_CONFIG = 40
INVALID_REQUEST = 42
UNSUPPORTED_VERSION = 35


# --- raw DescribeConfigs v4, to see every synonym with its source ----------------------------------

def describe_raw(broker, resource_type: int, name: str, keys: list[str] | None = None):
    """(error_code, {config: (value, source, read_only, sensitive, [(synonym, value, source)])})."""
    resource = (struct.pack(">b", resource_type) + kwire.enc_compact_string(name)
                + kwire.enc_compact_array(None if keys is None else [kwire.enc_compact_string(k) for k in keys])
                + b"\x00")
    body = kwire.enc_compact_array([resource]) + b"\x01" + b"\x00" + b"\x00"
    with kwire.connect(broker.host, broker.port) as sock:
        r = kwire.flexible_roundtrip(sock, API_DESCRIBE_CONFIGS, 4, 11, body)

    def synonym(r):
        out = (r.compact_string(), r.compact_string(), r.i8())
        r.skip_tags()
        return out

    def config(r):
        name, value, read_only, source, sensitive = r.compact_string(), r.compact_string(), r.i8(), r.i8(), r.i8()
        synonyms = r.compact_array(synonym)
        r.i8()  # config_type
        r.compact_string()  # documentation
        r.skip_tags()
        return name, (value, source, bool(read_only), bool(sensitive), synonyms)

    def result(r):
        code, _msg, _rtype, _rname = r.i16(), r.compact_string(), r.i8(), r.compact_string()
        configs = dict(r.compact_array(config))
        r.skip_tags()
        return code, configs

    r.i32()  # throttle
    [res] = r.compact_array(result)
    return res


SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def alter_raw(broker, resource_type: int, name: str, ops: list[tuple[str, int, str | None]],
              validate_only: bool = False, sock=None) -> int:
    """A raw IncrementalAlterConfigs v1 (on `sock` if given, else a connection of its own); the
    error code. No client alters the cluster-wide default (broker name ""): librdkafka and
    kafka-python both insist on a broker id."""
    configs = [kwire.enc_compact_string(n) + struct.pack(">b", o) + kwire.enc_compact_string(v) + b"\x00"
               for n, o, v in ops]
    resource = struct.pack(">b", resource_type) + kwire.enc_compact_string(name) + kwire.enc_compact_array(configs) \
        + b"\x00"
    body = kwire.enc_compact_array([resource]) + (b"\x01" if validate_only else b"\x00") + b"\x00"
    if sock is not None:
        r = kwire.flexible_roundtrip(sock, API_INCREMENTAL_ALTER_CONFIGS, 1, 12, body)
    else:
        with kwire.connect(broker.host, broker.port) as own:
            r = kwire.flexible_roundtrip(own, API_INCREMENTAL_ALTER_CONFIGS, 1, 12, body)
    r.i32()
    codes = r.compact_array(lambda r: (r.i16(), r.compact_string(), r.i8(), r.compact_string(), r.skip_tags())[0])
    return codes[0]


def alter(adm, resource_type, name, *entries):
    res = ConfigResource(resource_type, name, incremental_configs=list(entries))
    return adm.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)


def alter_error(adm, resource_type, name, *entries) -> int:
    with pytest.raises(KafkaException) as exc:
        alter(adm, resource_type, name, *entries)
    return error_code(exc.value)


def op(name, value, kind=AlterConfigOpType.SET):
    return ConfigEntry(name, value, incremental_operation=kind)


# --- broker configs --------------------------------------------------------------------------------

def test_dynamic_broker_configs_sources_synonyms_and_restart(broker_factory):
    b = broker_factory({"log.retention.hours": "5"})
    adm = admin(b)
    create_topic(b, "inherits", 1, adm=adm)
    create_topic(b, "own", 1, config={"retention.ms": "1000"}, adm=adm)

    # Before: the static hours synonym decides retention.ms.
    code, cfg = describe_raw(b, BROKER, "1", ["log.retention.ms", "log.retention.hours"])
    assert code == 0
    assert cfg["log.retention.hours"][:3] == ("5", STATIC, True)

    assert alter_raw(b, BROKER, "", [("log.retention.ms", SET, "3600000")]) == 0
    alter(adm, ResourceType.BROKER, "1", op("log.retention.ms", "1800000"))
    code, cfg = describe_raw(b, BROKER, "1", ["log.retention.ms"])
    value, source, read_only, _, synonyms = cfg["log.retention.ms"]
    assert (value, source, read_only) == ("1800000", DYNAMIC_BROKER, False)
    assert synonyms == [
        ("log.retention.ms", "1800000", DYNAMIC_BROKER),
        ("log.retention.ms", "3600000", DYNAMIC_DEFAULT),
        ("log.retention.hours", "5", STATIC),
        ("log.retention.ms", "604800000", DEFAULT),
        ("log.retention.hours", "168", DEFAULT),
    ]
    # The cluster-wide default lists only what is set there.
    code, cfg = describe_raw(b, BROKER, "")
    assert code == 0
    assert cfg == {"log.retention.ms": ("3600000", DYNAMIC_DEFAULT, False, False,
                                        [("log.retention.ms", "3600000", DYNAMIC_DEFAULT)])}

    # Topics without their own retention.ms follow the broker's dynamic value at once.
    code, cfg = describe_raw(b, TOPIC, "inherits", ["retention.ms"])
    assert cfg["retention.ms"][:2] == ("1800000", DYNAMIC_BROKER)
    code, cfg = describe_raw(b, TOPIC, "own", ["retention.ms"])
    assert cfg["retention.ms"][:2] == ("1000", DYNAMIC_TOPIC)

    # Dropping the per-broker value falls back to the cluster default.
    alter(adm, ResourceType.BROKER, "1", op("log.retention.ms", None, AlterConfigOpType.DELETE))
    code, cfg = describe_raw(b, TOPIC, "inherits", ["retention.ms"])
    assert cfg["retention.ms"][:2] == ("3600000", DYNAMIC_DEFAULT)

    # The dynamic configs are metadata records: they survive a restart, even a kill -9.
    b.restart(kill=True)
    code, cfg = describe_raw(b, BROKER, "1", ["log.retention.ms"])
    assert cfg["log.retention.ms"][:2] == ("3600000", DYNAMIC_DEFAULT)
    code, cfg = describe_raw(b, TOPIC, "inherits", ["retention.ms"])
    assert cfg["retention.ms"][:2] == ("3600000", DYNAMIC_DEFAULT)


def test_broker_config_operations_as_librdkafka_tests_them(broker):
    adm = admin(broker)
    # librdkafka's 0081_admin: SET and APPEND, then SUBTRACT and DELETE on broker "1".
    alter(adm, ResourceType.BROKER, "1", op("background.threads", "9"),
          op("log.cleanup.policy", "compact", AlterConfigOpType.APPEND))
    code, cfg = describe_raw(broker, BROKER, "1", ["background.threads", "log.cleanup.policy"])
    assert cfg["background.threads"][:3] == ("9", DYNAMIC_BROKER, False)
    # APPEND starts from Kafka's default ("delete").
    assert cfg["log.cleanup.policy"][:2] == ("delete,compact", DYNAMIC_BROKER)
    alter(adm, ResourceType.BROKER, "1", op("background.threads", "", AlterConfigOpType.DELETE),
          op("log.cleanup.policy", "compact", AlterConfigOpType.SUBTRACT))
    code, cfg = describe_raw(broker, BROKER, "1", ["background.threads", "log.cleanup.policy"])
    assert "background.threads" not in cfg
    assert cfg["log.cleanup.policy"][:2] == ("delete", DYNAMIC_BROKER)

    # Legacy AlterConfigs replaces the broker's whole dynamic set.
    res = ConfigResource(ResourceType.BROKER, "1", set_config={"sasl.kerberos.min.time.before.relogin": "58000"})
    adm.alter_configs([res], request_timeout=15)[res].result(timeout=30)
    code, cfg = describe_raw(broker, BROKER, "1", ["sasl.kerberos.min.time.before.relogin", "log.cleanup.policy"])
    assert cfg["sasl.kerberos.min.time.before.relogin"][:2] == ("58000", DYNAMIC_BROKER)
    assert cfg["log.cleanup.policy"][:2] == ("delete", DEFAULT)

    # Read-only configs are refused with Kafka's INVALID_CONFIG, and reported read-only.
    assert alter_error(adm, ResourceType.BROKER, "1", op("num.partitions", "3")) == INVALID_CONFIG
    assert alter_raw(broker, BROKER, "", [("log.retention.hours", SET, "3")]) == INVALID_CONFIG
    code, cfg = describe_raw(broker, BROKER, "1", ["num.partitions"])
    assert cfg["num.partitions"][:3] == ("1", DEFAULT, True)
    # Per-broker configs cannot be cluster-wide defaults; SSL configs need a listener prefix.
    assert alter_raw(broker, BROKER, "", [("sasl.kerberos.min.time.before.relogin", SET, "1")]) == INVALID_CONFIG
    assert alter_error(adm, ResourceType.BROKER, "1", op("ssl.keystore.type", "PKCS12")) == INVALID_CONFIG
    # Values are checked against the config's type and rules.
    assert alter_raw(broker, BROKER, "", [("log.cleanup.policy", SET, "shred")]) == INVALID_CONFIG
    assert alter_error(adm, ResourceType.BROKER, "1", op("background.threads", "many")) == INVALID_CONFIG
    assert alter_error(adm, ResourceType.BROKER, "1", op("background.threads", "2", AlterConfigOpType.APPEND)) \
        == INVALID_CONFIG
    # Broker names must be ids; DescribeConfigs answers only for this broker or the default.
    assert alter_raw(broker, BROKER, "one", [("background.threads", SET, "2")]) == INVALID_REQUEST
    code, _ = describe_raw(broker, BROKER, "7")
    assert code == INVALID_REQUEST
    code, _ = describe_raw(broker, BROKER, "one")
    assert code == INVALID_REQUEST
    # validate_only changes nothing.
    assert alter_raw(broker, BROKER, "", [("log.retention.ms", SET, "5000")], validate_only=True) == 0
    code, cfg = describe_raw(broker, BROKER, "")
    assert cfg == {}
    # A negative broker id is refused.
    assert alter_raw(broker, BROKER, "-2", [("background.threads", SET, "2")]) == INVALID_REQUEST


def test_dynamic_message_max_bytes_applies_to_topics_without_restart(broker):
    adm = admin(broker)
    topic = unique("dyn-max")
    create_topic(broker, topic, 1, adm=adm)
    p = producer(broker)
    big = [{"partition": 0, "value": b"x" * 5000}]
    assert produce_errors(p, topic, big) == [None]
    assert alter_raw(broker, BROKER, "", [("message.max.bytes", SET, "2000")]) == 0
    code, cfg = describe_raw(broker, TOPIC, topic, ["max.message.bytes"])
    assert cfg["max.message.bytes"][:2] == ("2000", DYNAMIC_DEFAULT)
    errors = produce_errors(p, topic, big)
    assert [e.code() for e in errors] == [KafkaError.MSG_SIZE_TOO_LARGE]
    assert alter_raw(broker, BROKER, "", [("message.max.bytes", DELETE, None)]) == 0
    assert produce_errors(p, topic, big) == [None]


def served(sock: socket.socket) -> bool:
    """Whether the broker answers ApiVersions on this connection within a second."""
    sock.settimeout(1.0)
    try:
        kwire.api_versions(sock)
        return True
    except (TimeoutError, socket.timeout):
        return False


def test_dynamic_max_connections(broker):
    assert alter_raw(broker, BROKER, "", [("max.connections", SET, "2")]) == 0
    code, cfg = describe_raw(broker, BROKER, "1", ["max.connections"])
    assert cfg["max.connections"][:3] == ("2", DYNAMIC_DEFAULT, False)
    held = [kwire.connect(broker.host, broker.port) for _ in range(3)]
    try:
        assert served(held[0]) and served(held[1])
        assert not served(held[2]), "a connection over max.connections was served"
        # Closing one lets the waiting connection in.
        held.pop(0).close()
        held[-1].settimeout(5)
        kwire.api_versions(held[-1])
    finally:
        for s in held:
            s.close()
    assert wait_code(lambda: alter_raw(broker, BROKER, "", [("max.connections", DELETE, None)])) == 0
    socks = [kwire.connect(broker.host, broker.port) for _ in range(4)]
    try:
        assert all(served(s) for s in socks)
    finally:
        for s in socks:
            s.close()


def wait_code(call):
    """Retries a raw call while the broker still counts just-closed connections against the limit."""
    for _ in range(50):
        try:
            return call()
        except (TimeoutError, socket.timeout, ConnectionError):
            time.sleep(0.1)
    return call()


# --- group configs ---------------------------------------------------------------------------------

def test_group_configs_describe_alter_and_bounds(broker):
    adm = admin(broker)
    group = unique("cfg-group")
    # Any group name can be described, existing or not; values default to the broker's.
    code, cfg = describe_raw(broker, GROUP, group)
    assert code == 0
    assert {k: v[:3] for k, v in cfg.items()} == {
        "consumer.heartbeat.interval.ms": ("5000", DEFAULT, False),
        "consumer.session.timeout.ms": ("45000", DEFAULT, False),
    }
    alter(adm, ResourceType.GROUP, group, op("consumer.session.timeout.ms", "50000"))
    code, cfg = describe_raw(broker, GROUP, group)
    assert cfg["consumer.session.timeout.ms"][:2] == ("50000", GROUP_CONFIG)
    assert cfg["consumer.session.timeout.ms"][4] == [("consumer.session.timeout.ms", "50000", GROUP_CONFIG)]
    assert cfg["consumer.heartbeat.interval.ms"][:2] == ("5000", DEFAULT)
    # The broker's group.consumer.{min,max}.* bound them; unknown names and list operations are refused.
    assert alter_error(adm, ResourceType.GROUP, group, op("consumer.session.timeout.ms", "70000")) == INVALID_CONFIG
    assert alter_error(adm, ResourceType.GROUP, group, op("consumer.heartbeat.interval.ms", "1000")) \
        == INVALID_CONFIG
    assert alter_error(adm, ResourceType.GROUP, group, op("share.session.timeout.ms", "50000")) == INVALID_CONFIG
    assert alter_error(adm, ResourceType.GROUP, group,
                       op("consumer.session.timeout.ms", "1", AlterConfigOpType.APPEND)) == INVALID_CONFIG
    code, cfg = describe_raw(broker, GROUP, group, ["consumer.session.timeout.ms"])
    assert list(cfg) == ["consumer.session.timeout.ms"] and cfg["consumer.session.timeout.ms"][0] == "50000"
    # Listed while it has configs.
    assert (group, GROUP) in list_config_resources(broker, 1, [GROUP])[1]
    alter(adm, ResourceType.GROUP, group, op("consumer.session.timeout.ms", "", AlterConfigOpType.DELETE))
    code, cfg = describe_raw(broker, GROUP, group)
    assert cfg["consumer.session.timeout.ms"][:2] == ("45000", DEFAULT)
    assert list_config_resources(broker, 1, [GROUP]) == (0, [])
    code, _ = describe_raw(broker, GROUP, "")
    assert code == INVALID_REQUEST


def list_config_resources(broker, version: int, types: list[int]):
    body = (kwire.enc_compact_array([struct.pack(">b", t) for t in types]) if version >= 1 else b"") + b"\x00"
    with kwire.connect(broker.host, broker.port) as sock:
        r = kwire.flexible_roundtrip(sock, API_LIST_CONFIG_RESOURCES, version, 21, body)

    def item(r):
        name = r.compact_string()
        rtype = r.i8() if version >= 1 else CLIENT_METRICS
        r.skip_tags()
        return name, rtype

    r.i32()
    code = r.i16()
    return code, r.compact_array(item)


def test_list_config_resources(broker):
    adm = admin(broker)
    topic, group = unique("lcr"), unique("lcr-group")
    create_topic(broker, topic, 1, adm=adm)
    alter(adm, ResourceType.GROUP, group, op("consumer.heartbeat.interval.ms", "6000"))
    code, listed = list_config_resources(broker, 1, [])
    assert code == 0
    assert (group, GROUP) in listed and (topic, TOPIC) in listed and ("1", BROKER) in listed
    assert sorted(listed) == sorted(set(listed))
    assert list_config_resources(broker, 1, [BROKER]) == (0, [("1", BROKER)])
    assert list_config_resources(broker, 1, [TOPIC, GROUP])[1] == [(group, GROUP), (topic, TOPIC)]
    # strom has no client-metrics subscriptions; v0 lists only those.
    assert list_config_resources(broker, 1, [CLIENT_METRICS]) == (0, [])
    assert list_config_resources(broker, 0, []) == (0, [])
    # A type that carries no configs here: Kafka's UNSUPPORTED_VERSION.
    assert list_config_resources(broker, 1, [8])[0] == UNSUPPORTED_VERSION


def heartbeat_join(broker, group: str, topic: str):
    """A raw ConsumerGroupHeartbeat v0 join: (error_code, member_id, member_epoch, heartbeat_interval_ms)."""
    body = (kwire.enc_compact_string(group) + kwire.enc_compact_string("") + struct.pack(">i", 0)
            + kwire.enc_compact_string(None) + kwire.enc_compact_string(None) + struct.pack(">i", 30000)
            + kwire.enc_compact_array([kwire.enc_compact_string(topic)])
            + kwire.enc_compact_string(None) + kwire.enc_compact_array([]) + b"\x00")
    with kwire.connect(broker.host, broker.port) as sock:
        r = kwire.flexible_roundtrip(sock, API_CONSUMER_GROUP_HEARTBEAT, 0, 31, body)
    r.i32()
    code, _msg, member_id, epoch, interval = r.i16(), r.compact_string(), r.compact_string(), r.i32(), r.i32()
    return code, member_id, epoch, interval


def test_group_configs_set_a_consumer_groups_session_and_heartbeat(broker_factory):
    b = broker_factory({"group.consumer.min.session.timeout.ms": "1000",
                        "group.consumer.min.heartbeat.interval.ms": "500"})
    adm = admin(b)
    topic = unique("gcfg")
    create_topic(b, topic, 2, adm=adm)
    tuned, plain = unique("tuned"), unique("plain")
    alter(adm, ResourceType.GROUP, tuned, op("consumer.session.timeout.ms", "2000"),
          op("consumer.heartbeat.interval.ms", "700"))

    code, member, epoch, interval = heartbeat_join(b, tuned, topic)
    assert (code, interval) == (0, 700) and member and epoch >= 1
    code, _, _, interval = heartbeat_join(b, plain, topic)
    assert (code, interval) == (0, 5000)

    def members(group):
        return len(adm.describe_consumer_groups([group])[group].result(timeout=30).members)

    assert members(tuned) == 1 and members(plain) == 1
    # No more heartbeats: the tuned group's member goes after its own 2 s session, long before the
    # broker's 45 s default, which still holds the other group's member.
    start = time.monotonic()
    wait_until(lambda: members(tuned) == 0, timeout_s=20, what="session expiry from the group config")
    assert time.monotonic() - start >= 1.0
    assert members(plain) == 1

"""Admin API round trips with confluent-kafka's AdminClient and kafka-python's KafkaAdminClient."""

from __future__ import annotations

import os
import re

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, ResourceType)

import kwire
from helpers import (admin, create_topic, error_code, kp_admin, produce_all, producer, read_partition,
                     wait_for_topic, wait_until, watermarks)

# Kafka 4.x topic config defaults (value, as DescribeConfigs reports them with source DEFAULT_CONFIG).
TOPIC_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "index.interval.bytes": "4096",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588",
    "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}


def src(entry) -> str:
    """A ConfigEntry's source as its Kafka name (DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG, ...)."""
    s = entry.source
    return (s if isinstance(s, ConfigSource) else ConfigSource(s)).name


def describe_topic_configs(adm, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return adm.describe_configs([res], request_timeout=15)[res].result(timeout=30)


def create_error(adm, topic: NewTopic, validate_only: bool = False) -> int:
    fut = adm.create_topics([topic], validate_only=validate_only, request_timeout=15)[topic.topic]
    with pytest.raises(KafkaException) as exc:
        fut.result(timeout=30)
    return error_code(exc.value)


def topic_names(adm) -> set[str]:
    return {t for t in adm.list_topics(timeout=10).topics if not t.startswith("__")}


# --- CreateTopics ---------------------------------------------------------------

def test_create_topic_with_configs_then_describe_values_defaults_and_sources(broker):
    adm = admin(broker)
    create_topic(broker, "configured", partitions=3,
                 config={"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "2048"},
                 adm=adm)
    create_topic(broker, "plain", partitions=1, adm=adm)

    configured = describe_topic_configs(adm, "configured")
    for name, value in {"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "2048"}.items():
        entry = configured[name]
        assert (entry.value, src(entry), entry.is_default) == (value, "DYNAMIC_TOPIC_CONFIG", False), name
    assert configured["segment.bytes"].value == "1073741824"
    assert src(configured["segment.bytes"]) == "DEFAULT_CONFIG"

    plain = describe_topic_configs(adm, "plain")
    missing = sorted(set(TOPIC_DEFAULTS) - set(plain))
    assert missing == [], f"DescribeConfigs lacks Kafka topic configs {missing}"
    got = {name: (plain[name].value, src(plain[name]), plain[name].is_default) for name in TOPIC_DEFAULTS}
    want = {name: (value, "DEFAULT_CONFIG", True) for name, value in TOPIC_DEFAULTS.items()}
    assert got == want
    assert all(not e.is_sensitive for e in plain.values())


def test_describe_selected_config_keys_only(broker):
    """DescribeConfigs with configuration_keys returns exactly those keys (kafka-python sends the key list)."""
    create_topic(broker, "keys", partitions=1, config={"retention.ms": "1000"})
    from kafka.admin import ConfigResource as KpResource
    ka = kp_admin(broker)
    try:
        out = ka.describe_configs([KpResource("TOPIC", "keys", ["retention.ms", "cleanup.policy"])],
                                  config_filter="all")
    finally:
        ka.close()
    configs = out["topic"]["keys"]
    assert set(configs) == {"retention.ms", "cleanup.policy"}
    assert configs["retention.ms"]["value"] == "1000"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["cleanup.policy"]["value"] == "delete"
    assert configs["cleanup.policy"]["config_source"] == "DEFAULT_CONFIG"


def test_create_topic_validate_only_creates_nothing(broker):
    adm = admin(broker)
    fut = adm.create_topics([NewTopic("dry-run", num_partitions=4, replication_factor=1)],
                            validate_only=True, request_timeout=15)["dry-run"]
    assert fut.result(timeout=30) is None
    assert "dry-run" not in topic_names(adm)
    # validate_only still reports the errors a real create would.
    assert create_error(adm, NewTopic("dry-run", 1, 1, config={"retention.ms": "soon"}), validate_only=True) \
        == KafkaError.INVALID_CONFIG
    create_topic(broker, "exists", 1, adm=adm)
    assert create_error(adm, NewTopic("exists", 1, 1), validate_only=True) == KafkaError.TOPIC_ALREADY_EXISTS
    assert topic_names(adm) == {"exists"}


def test_create_existing_topic_fails_with_topic_already_exists(broker):
    adm = admin(broker)
    create_topic(broker, "twice", partitions=2, adm=adm)
    assert create_error(adm, NewTopic("twice", num_partitions=5, replication_factor=1)) == KafkaError.TOPIC_ALREADY_EXISTS
    md = adm.list_topics(topic="twice", timeout=10)
    assert sorted(md.topics["twice"].partitions) == [0, 1]


@pytest.mark.parametrize("name", ["bad/name", "has space", "..", ".", "ümlaut", "x" * 250, "semi;colon"])
def test_create_invalid_topic_name_fails_with_invalid_topic_exception(broker, name):
    adm = admin(broker)
    assert create_error(adm, NewTopic(name, num_partitions=1, replication_factor=1)) == KafkaError.TOPIC_EXCEPTION
    assert name not in topic_names(adm)


def test_longest_legal_topic_name_and_legal_characters(broker):
    adm = admin(broker)
    names = ["x" * 249, "Legal.name_with-all.CHARS_09"]
    for n in names:
        create_topic(broker, n, 1, adm=adm)
    assert topic_names(adm) == set(names)


def test_create_topic_bad_replica_assignments(broker):
    adm = admin(broker)
    # Broker 2 does not exist.
    # (librdkafka wants num_partitions = len(assignment); it sends -1 with the assignment.)
    assert create_error(adm, NewTopic("ra-unknown-broker", 2, replica_assignment=[[1], [2]])) \
        == KafkaError.INVALID_REPLICA_ASSIGNMENT
    # The same broker twice in one partition.
    assert create_error(adm, NewTopic("ra-duplicate", 1, replica_assignment=[[1, 1]])) \
        == KafkaError.INVALID_REPLICA_ASSIGNMENT
    # More replicas than brokers.
    assert create_error(adm, NewTopic("rf-three", num_partitions=1, replication_factor=3)) \
        == KafkaError.INVALID_REPLICATION_FACTOR
    assert topic_names(adm) == set()
    # A valid manual assignment works and gives one partition per list entry.
    fut = adm.create_topics([NewTopic("ra-good", 3, replica_assignment=[[1], [1], [1]])], request_timeout=15)["ra-good"]
    fut.result(timeout=30)
    wait_for_topic(broker, "ra-good", 3, adm)
    md = adm.list_topics(topic="ra-good", timeout=10).topics["ra-good"]
    assert {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in md.partitions.values()} == \
        {0: (1, [1], [1]), 1: (1, [1], [1]), 2: (1, [1], [1])}


def test_create_topic_bad_partition_count_and_configs_kafka_python(broker):
    import kafka.errors as Errors
    ka = kp_admin(broker)
    try:
        with pytest.raises(Errors.InvalidPartitionsError):
            ka.create_topics({"zero-partitions": {"num_partitions": 0, "replication_factor": 1}})
        with pytest.raises(Errors.InvalidConfigurationError):
            ka.create_topics({"unknown-config": {"num_partitions": 1, "configs": {"no.such.config": "1"}}})
        with pytest.raises(Errors.InvalidConfigurationError):
            ka.create_topics({"bad-value": {"num_partitions": 1, "configs": {"cleanup.policy": "sometimes"}}})
        with pytest.raises(Errors.InvalidReplicationFactorError):
            ka.create_topics({"rf-zero": {"num_partitions": 1, "replication_factor": 0}})
        assert [t for t in ka.list_topics() if not t.startswith("__")] == []
    finally:
        ka.close()


def test_create_topics_kafka_python_reports_partitions_and_configs(broker):
    ka = kp_admin(broker)
    try:
        result = ka.create_topics({"kp-topic": {"num_partitions": 4, "replication_factor": 1,
                                                "configs": {"retention.ms": "12345", "segment.bytes": "1048576"}},
                                   "kp-default": {}})
        by_name = {t["name"]: t for t in result["topics"]}
        assert set(by_name) == {"kp-topic", "kp-default"}
        assert by_name["kp-topic"]["error_code"] == 0
        assert by_name["kp-topic"]["num_partitions"] == 4
        assert by_name["kp-topic"]["replication_factor"] == 1
        cfg = by_name["kp-topic"]["configs"]
        assert cfg["retention.ms"]["value"] == "12345"
        assert cfg["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert cfg["segment.bytes"]["value"] == "1048576"
        assert cfg["cleanup.policy"]["value"] == "delete"
        assert cfg["cleanup.policy"]["config_source"] == "DEFAULT_CONFIG"
        # num_partitions -1 means the broker's num.partitions (default 1).
        assert by_name["kp-default"]["num_partitions"] == 1
        assert by_name["kp-default"]["replication_factor"] == 1
        ka.wait_for_topics(["kp-topic", "kp-default"], timeout_ms=20000)
        described = {t["name"]: t for t in ka.describe_topics(["kp-topic", "kp-default"])}
        assert sorted(p["partition_index"] for p in described["kp-topic"]["partitions"]) == [0, 1, 2, 3]
        assert sorted(p["partition_index"] for p in described["kp-default"]["partitions"]) == [0]
        assert sorted(t for t in ka.list_topics() if not t.startswith("__")) == ["kp-default", "kp-topic"]
    finally:
        ka.close()


def test_default_partition_count_comes_from_num_partitions(broker_factory):
    b = broker_factory({"num.partitions": "3"})
    adm = admin(b)
    adm.create_topics([NewTopic("defaulted")], request_timeout=15)["defaulted"].result(timeout=30)
    wait_for_topic(b, "defaulted", 3, adm)


# --- List / describe -----------------------------------------------------------

def test_list_topics_both_clients_and_describe_topics(broker):
    from confluent_kafka import TopicCollection
    adm = admin(broker)
    layout = {"alpha": 1, "beta": 3, "gamma": 6}
    for name, n in layout.items():
        create_topic(broker, name, n, adm=adm)
    md = adm.list_topics(timeout=10)
    assert {n: len(t.partitions) for n, t in md.topics.items() if not n.startswith("__")} == layout
    assert {b.id: (b.host, b.port) for b in md.brokers.values()} == {1: ("127.0.0.1", broker.port)}
    ka = kp_admin(broker)
    try:
        assert sorted(t for t in ka.list_topics() if not t.startswith("__")) == sorted(layout)
    finally:
        ka.close()
    descs = adm.describe_topics(TopicCollection(list(layout)), request_timeout=15)
    ids = set()
    for name, fut in descs.items():
        d = fut.result(timeout=30)
        assert d.name == name
        assert d.is_internal is False
        assert [p.id for p in d.partitions] == list(range(layout[name]))
        assert all(p.leader.id == 1 and [r.id for r in p.replicas] == [1] and [r.id for r in p.isr] == [1]
                   for p in d.partitions)
        ids.add(str(d.topic_id))
    assert len(ids) == 3 and "AAAAAAAAAAAAAAAAAAAAAA" not in ids, f"topic ids must be distinct and non-zero: {ids}"


def test_describe_configs_unknown_topic(broker):
    adm = admin(broker)
    res = ConfigResource(ResourceType.TOPIC, "nope")
    with pytest.raises(KafkaException) as exc:
        adm.describe_configs([res], request_timeout=15)[res].result(timeout=30)
    assert error_code(exc.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs_static_and_default(broker_factory):
    b = broker_factory({"num.partitions": "3", "log.retention.ms": "7200000"})
    adm = admin(b)
    res = ConfigResource(ResourceType.BROKER, "1")
    cfg = adm.describe_configs([res], request_timeout=15)[res].result(timeout=30)
    assert (cfg["num.partitions"].value, src(cfg["num.partitions"])) == ("3", "STATIC_BROKER_CONFIG")
    assert (cfg["log.retention.ms"].value, src(cfg["log.retention.ms"])) == \
        ("7200000", "STATIC_BROKER_CONFIG")
    assert (cfg["auto.create.topics.enable"].value, src(cfg["auto.create.topics.enable"])) == \
        ("true", "DEFAULT_CONFIG")
    assert (cfg["message.max.bytes"].value, src(cfg["message.max.bytes"])) == \
        ("1048588", "DEFAULT_CONFIG")
    assert cfg["node.id"].value == "1"
    # A topic without its own retention.ms inherits the broker's log.retention.ms, reported as a static broker config.
    create_topic(b, "inherits", 1, adm=adm)
    t = describe_topic_configs(adm, "inherits")
    assert (t["retention.ms"].value, src(t["retention.ms"]), t["retention.ms"].is_default) == \
        ("7200000", "STATIC_BROKER_CONFIG", False)


def test_describe_cluster_both_clients(broker):
    adm = admin(broker)
    desc = adm.describe_cluster(request_timeout=15).result(timeout=30)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", desc.cluster_id), desc.cluster_id
    assert [(n.id, n.host, n.port) for n in desc.nodes] == [(1, "127.0.0.1", broker.port)]
    assert desc.controller.id == 1
    ka = kp_admin(broker)
    try:
        kd = ka.describe_cluster()
    finally:
        ka.close()
    assert kd["cluster_id"] == desc.cluster_id
    assert [(b["broker_id"], b["host"], b["port"]) for b in kd["brokers"]] == [(1, "127.0.0.1", broker.port)]
    with kwire.connect(broker.host, broker.port) as sock:
        assert kwire.metadata_v4(sock, [], False).cluster_id == desc.cluster_id


def test_cluster_id_differs_between_data_dirs(broker_factory):
    a, b = broker_factory(), broker_factory()
    adm_a, adm_b = admin(a), admin(b)
    ida = adm_a.describe_cluster(request_timeout=15).result(timeout=30).cluster_id
    idb = adm_b.describe_cluster(request_timeout=15).result(timeout=30).cluster_id
    assert ida != idb


def test_describe_log_dirs_kafka_python(broker):
    create_topic(broker, "dirs", partitions=2)
    produce_all(producer(broker), "dirs", [{"value": b"x" * 1000, "partition": 0} for _ in range(20)])
    ka = kp_admin(broker)
    try:
        out = ka.describe_log_dirs()
    finally:
        ka.close()
    assert [r["broker"] for r in out] == [1]
    dirs = out[0]["log_dirs"]
    assert len(dirs) == 1
    d = dirs[0]
    assert d["error_code"] == 0
    assert d["log_dir"] in {str(broker.data_dir), os.path.realpath(broker.data_dir)}
    parts = {(t["name"], p["partition_index"]): p for t in d["topics"] for p in t["partitions"]
             if not t["name"].startswith("__")}
    assert set(parts) == {("dirs", 0), ("dirs", 1)}
    assert parts[("dirs", 1)]["partition_size"] == 0
    # 20 records of 1000 value bytes, uncompressed: the log holds at least the values.
    assert 20 * 1000 < parts[("dirs", 0)]["partition_size"] < 20 * 1000 + 20 * 200
    assert all(p["offset_lag"] == 0 and p["is_future_key"] is False for p in parts.values())


# --- AlterConfigs / IncrementalAlterConfigs -----------------------------------------

def test_alter_configs_replaces_the_whole_set(broker):
    """Legacy AlterConfigs: keys not in the request go back to their defaults."""
    adm = admin(broker)
    create_topic(broker, "legacy", 1, config={"cleanup.policy": "compact", "retention.ms": "1000"}, adm=adm)
    res = ConfigResource(ResourceType.TOPIC, "legacy", set_config={"retention.ms": "2000", "segment.ms": "3600000"})
    adm.alter_configs([res], request_timeout=15)[res].result(timeout=30)
    cfg = describe_topic_configs(adm, "legacy")
    assert (cfg["retention.ms"].value, src(cfg["retention.ms"])) == ("2000", "DYNAMIC_TOPIC_CONFIG")
    assert (cfg["segment.ms"].value, src(cfg["segment.ms"])) == ("3600000", "DYNAMIC_TOPIC_CONFIG")
    assert (cfg["cleanup.policy"].value, src(cfg["cleanup.policy"])) == ("delete", "DEFAULT_CONFIG")


def test_alter_configs_validate_only_and_errors(broker):
    adm = admin(broker)
    create_topic(broker, "alt", 1, adm=adm)
    res = ConfigResource(ResourceType.TOPIC, "alt", set_config={"retention.ms": "5000"})
    adm.alter_configs([res], validate_only=True, request_timeout=15)[res].result(timeout=30)
    assert describe_topic_configs(adm, "alt")["retention.ms"].value == "604800000"
    bad = ConfigResource(ResourceType.TOPIC, "alt", set_config={"retention.ms": "forever"})
    with pytest.raises(KafkaException) as exc:
        adm.alter_configs([bad], request_timeout=15)[bad].result(timeout=30)
    assert error_code(exc.value) == KafkaError.INVALID_CONFIG
    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic", set_config={"retention.ms": "5000"})
    with pytest.raises(KafkaException) as exc:
        adm.alter_configs([missing], request_timeout=15)[missing].result(timeout=30)
    assert error_code(exc.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_incremental_alter_configs_set_delete_append_subtract(broker):
    adm = admin(broker)
    create_topic(broker, "inc", 1, config={"retention.ms": "1000"}, adm=adm)

    def apply(*entries):
        res = ConfigResource(ResourceType.TOPIC, "inc", incremental_configs=list(entries))
        adm.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)
        return describe_topic_configs(adm, "inc")

    cfg = apply(ConfigEntry("segment.ms", "3600000", incremental_operation=AlterConfigOpType.SET))
    # SET leaves the other dynamic configs alone.
    assert (cfg["retention.ms"].value, src(cfg["retention.ms"])) == ("1000", "DYNAMIC_TOPIC_CONFIG")
    assert cfg["segment.ms"].value == "3600000"
    cfg = apply(ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE))
    assert (cfg["retention.ms"].value, src(cfg["retention.ms"])) == ("604800000", "DEFAULT_CONFIG")
    cfg = apply(ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND))
    assert (cfg["cleanup.policy"].value, src(cfg["cleanup.policy"])) == \
        ("delete,compact", "DYNAMIC_TOPIC_CONFIG")
    cfg = apply(ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT))
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["segment.ms"].value == "3600000"


def test_incremental_alter_configs_errors(broker):
    adm = admin(broker)
    create_topic(broker, "inc-err", 1, adm=adm)

    def err(topic, entry):
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
        with pytest.raises(KafkaException) as exc:
            adm.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)
        return error_code(exc.value)

    assert err("inc-err", ConfigEntry("retention.ms", "x", incremental_operation=AlterConfigOpType.SET)) \
        == KafkaError.INVALID_CONFIG
    assert err("inc-err", ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)) \
        == KafkaError.INVALID_CONFIG
    # APPEND is only for list-typed configs.
    assert err("inc-err", ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.APPEND)) \
        == KafkaError.INVALID_CONFIG
    assert err("missing", ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.SET)) \
        == KafkaError.UNKNOWN_TOPIC_OR_PART
    cfg = describe_topic_configs(adm, "inc-err")
    assert all(src(e) == "DEFAULT_CONFIG" for e in cfg.values() if e.name in TOPIC_DEFAULTS)


def test_incremental_alter_configs_kafka_python(broker):
    from kafka.admin import AlterConfigOp, ConfigResource as KpResource
    create_topic(broker, "kp-inc", 1)
    ka = kp_admin(broker)
    try:
        out = ka.alter_configs([KpResource("TOPIC", "kp-inc", {"retention.ms": "777",
                                                               "max.message.bytes": (AlterConfigOp.SET, "4096")})])
        assert out == {"topic": {"kp-inc": "OK"}}
        cfg = ka.describe_configs([KpResource("TOPIC", "kp-inc")], config_filter="modified")["topic"]["kp-inc"]
        assert {k: (v["value"], v["config_source"]) for k, v in cfg.items()} == {
            "retention.ms": ("777", "DYNAMIC_TOPIC_CONFIG"),
            "max.message.bytes": ("4096", "DYNAMIC_TOPIC_CONFIG"),
        }
        ka.reset_configs([KpResource("TOPIC", "kp-inc", ["retention.ms"])])
        cfg = ka.describe_configs([KpResource("TOPIC", "kp-inc")], config_filter="modified")["topic"]["kp-inc"]
        assert {k: v["value"] for k, v in cfg.items()} == {"max.message.bytes": "4096"}
    finally:
        ka.close()


# --- CreatePartitions ------------------------------------------------------------

def test_create_partitions_grows_topic_and_new_partitions_work(broker):
    adm = admin(broker)
    create_topic(broker, "grow", 2, adm=adm)
    adm.create_partitions([NewPartitions("grow", 5)], request_timeout=15)["grow"].result(timeout=30)
    wait_for_topic(broker, "grow", 5, adm)
    d = produce_all(producer(broker), "grow", [{"value": b"in-new-partition", "key": b"k", "partition": 4}])
    assert [(x.partition, x.offset) for x in d] == [(4, 0)]
    msgs = read_partition(broker, "grow", 4, 0, 1)
    assert [(m.key(), m.value()) for m in msgs] == [(b"k", b"in-new-partition")]
    assert watermarks(broker, "grow", 3) == (0, 0)


def test_create_partitions_errors(broker):
    adm = admin(broker)
    create_topic(broker, "shrink", 4, adm=adm)

    def err(topic, count):
        with pytest.raises(KafkaException) as exc:
            adm.create_partitions([NewPartitions(topic, count)], request_timeout=15)[topic].result(timeout=30)
        return error_code(exc.value)

    assert err("shrink", 2) == KafkaError.INVALID_PARTITIONS
    assert err("shrink", 4) == KafkaError.INVALID_PARTITIONS
    assert err("absent", 4) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # validate_only: accepted, nothing changes.
    adm.create_partitions([NewPartitions("shrink", 8)], validate_only=True, request_timeout=15)["shrink"].result(timeout=30)
    assert len(adm.list_topics(topic="shrink", timeout=10).topics["shrink"].partitions) == 4


# --- DeleteTopics ------------------------------------------------------------

def test_delete_topics_then_recreate_starts_empty(broker):
    adm = admin(broker)
    create_topic(broker, "doomed", 2, config={"retention.ms": "1000"}, adm=adm)
    create_topic(broker, "survivor", 1, adm=adm)
    produce_all(producer(broker), "doomed", [{"value": b"v%d" % i, "partition": i % 2} for i in range(10)])
    adm.delete_topics(["doomed"], request_timeout=15)["doomed"].result(timeout=30)
    wait_until(lambda: "doomed" not in topic_names(adm), what="deleted topic to leave metadata")
    assert topic_names(adm) == {"survivor"}
    res = ConfigResource(ResourceType.TOPIC, "doomed")
    with pytest.raises(KafkaException) as exc:
        adm.describe_configs([res], request_timeout=15)[res].result(timeout=30)
    assert error_code(exc.value) == KafkaError.UNKNOWN_TOPIC_OR_PART

    with pytest.raises(KafkaException) as exc:
        adm.delete_topics(["doomed"], request_timeout=15)["doomed"].result(timeout=30)
    assert error_code(exc.value) == KafkaError.UNKNOWN_TOPIC_OR_PART

    # Same name again: a new, empty topic with default configs.
    create_topic(broker, "doomed", 3, adm=adm)
    assert [watermarks(broker, "doomed", p) for p in range(3)] == [(0, 0)] * 3
    cfg = describe_topic_configs(adm, "doomed")
    assert (cfg["retention.ms"].value, src(cfg["retention.ms"])) == ("604800000", "DEFAULT_CONFIG")
    d = produce_all(producer(broker), "doomed", [{"value": b"fresh", "partition": 0}])
    assert [(x.partition, x.offset) for x in d] == [(0, 0)]


def test_delete_topics_kafka_python(broker):
    import kafka.errors as Errors
    create_topic(broker, "kp-del", 1)
    ka = kp_admin(broker)
    try:
        out = ka.delete_topics(["kp-del"])
        assert [(t["name"], t["error_code"]) for t in out["topics"]] == [("kp-del", 0)]
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            ka.delete_topics(["kp-del"])
    finally:
        ka.close()

"""The schema registry and the REST proxy of a secured broker: they reach the cluster over
SASL_SSL with their own settings (Confluent's names: `kafkastore.*` for the registry, `client.*`
for the proxy). The broker's authorizer refuses everyone but `User:admin`, so they work only
because they log in as admin over TLS; confluent-kafka reads what they wrote over the same
listener."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import BrokerError
from helpers import unique
from test_acls import STANDARD_AUTHORIZER
from test_security import JAAS, pki, sasl_conf, secured_configs  # noqa: F401 (pki is a fixture)

ADMIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret";')
ORDER = json.dumps({"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]})


def service_security(pki, prefix: str, password: str = "admin-secret") -> dict[str, str]:
    return {
        f"{prefix}security.protocol": "SASL_SSL",
        f"{prefix}sasl.mechanism": "PLAIN",
        f"{prefix}sasl.jaas.config": ADMIN_JAAS.replace("admin-secret", password),
        f"{prefix}ssl.truststore.type": "PEM",
        f"{prefix}ssl.truststore.location": str(pki["dir"] / "ca.crt"),
    }


def secured_broker(broker_factory, pki):
    configs = secured_configs(pki, **{
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": "User:admin",
        **service_security(pki, "kafkastore."),
        **service_security(pki, "client."),
    })
    return broker_factory(configs, listeners=["SASL_SSL"], registry=True, proxy=True)


def wait_ok(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=5)
            if last.status_code == 200:
                return
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{url} is not answering 200: {last!r}")


def test_the_registry_and_the_proxy_log_in_to_a_secured_broker(broker_factory, pki):
    b = secured_broker(broker_factory, pki)
    wait_ok(b.registry_url + "/subjects")
    admin = {**sasl_conf(pki, "admin", "admin-secret"), "bootstrap.servers": b.address("SASL_SSL")}

    # The registry writes _schemas as admin: registration, then the serializer's own lookups.
    topic = unique("secured-orders")
    resp = requests.post(f"{b.registry_url}/subjects/{topic}-value/versions",
                         data=json.dumps({"schema": ORDER}),
                         headers={"Content-Type": "application/vnd.schemaregistry.v1+json"}, timeout=60)
    assert (resp.status_code, resp.json()) == (200, {"id": 1})
    registry = SchemaRegistryClient({"url": b.registry_url})
    serialize = AvroSerializer(registry, ORDER, conf={"auto.register.schemas": False, "use.latest.version": True})
    producer = Producer(admin)
    producer.produce(topic, value=serialize({"id": 7}, SerializationContext(topic, MessageField.VALUE)))
    assert producer.flush(30) == 0

    # The proxy produces as admin too: a v2 binary record and a v3 JSON record.
    resp = requests.post(f"{b.proxy_url}/topics/{topic}",
                         data=json.dumps({"records": [{"value": base64.b64encode(b"raw").decode()}]}),
                         headers={"Content-Type": "application/vnd.kafka.binary.v2+json"}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["offsets"][0]["offset"] == 1, resp.text
    cluster = requests.get(f"{b.proxy_url}/v3/clusters", timeout=30).json()["data"][0]["cluster_id"]
    resp = requests.post(f"{b.proxy_url}/v3/clusters/{cluster}/topics/{topic}/records",
                         data=json.dumps({"value": {"type": "JSON", "data": {"via": "v3"}}}),
                         headers={"Content-Type": "application/json"}, timeout=60)
    assert resp.status_code == 200 and resp.json()["offset"] == 2, resp.text

    consumer = Consumer({**admin, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + 30
    while len(values) < 3 and time.monotonic() < deadline:
        m = consumer.poll(1)
        if m is not None:
            assert m.error() is None or m.error().code() == KafkaError._PARTITION_EOF, m.error()
            if m.error() is None:
                values.append((m.offset(), m.value()))
    consumer.close()
    deserialize = AvroDeserializer(registry)
    assert [o for o, _ in values] == [0, 1, 2]
    assert deserialize(values[0][1], SerializationContext(topic, MessageField.VALUE)) == {"id": 7}
    assert values[1][1] == b"raw"
    assert json.loads(values[2][1]) == {"via": "v3"}


def test_bad_service_security_settings_stop_the_start(broker_factory, pki):
    configs = secured_configs(pki, **{"kafkastore.security.protocol": "SASL_BOGUS"})
    with pytest.raises(BrokerError) as refused:
        broker_factory(configs, listeners=["SASL_SSL"], registry=True)
    assert "kafkastore." in str(refused.value) and "SASL_BOGUS" in str(refused.value), refused.value

"""The schema registry and the REST proxy on https listeners (`https://` in
`schema.registry.listeners` and `rest.proxy.listeners`), with the broker's `ssl.*` key and trust
stores or their own `schema.registry.ssl.*` / `rest.proxy.ssl.*`: confluent-kafka's
SchemaRegistryClient and serializers, requests, the REST proxy's own calls to the registry, the
CLI, client certificates when the registry asks for them, and writes a follower sends on to an
https leader in a cluster."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from cluster import Cluster
from conftest import free_port
from pki import CertificateAuthority
from registry_helpers import register_through_each
from test_cli_registry import cli
from test_rest_proxy_v2 import AVRO, V2, Rest, kafka_consume

SR = "application/vnd.schemaregistry.v1+json"
ORDER = json.dumps({"type": "record", "name": "Order",
                    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]})


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA with a certificate for 127.0.0.1 usable by servers and clients alike, a client
    certificate, and a rogue CA that signed neither."""
    d = tmp_path_factory.mktemp("https-pki")
    ca, rogue = CertificateAuthority("https-test-ca"), CertificateAuthority("rogue-ca")
    (d / "ca.crt").write_bytes(ca.pem)
    (d / "rogue-ca.crt").write_bytes(rogue.pem)
    ca.server(client_too=True).write(d, "server")
    ca.server(names_only=True).write(d, "by-name")
    ca.client(O="strom", CN="reader").write(d, "reader")
    return d


def tls_configs(certs, prefix: str = "") -> dict[str, str]:
    return {f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.location": str(certs / "server.pem"),
            f"{prefix}ssl.truststore.type": "PEM",
            f"{prefix}ssl.truststore.location": str(certs / "ca.crt")}


def create_topic(broker, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})  # alive until the answer
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)


def https_rest(base: str, ca: str) -> Rest:
    rest = Rest(base)
    # A session's own `verify` loses to REQUESTS_CA_BUNDLE unless the environment is ignored.
    rest.session.trust_env = False
    rest.session.verify = ca
    return rest


def register(url: str, subject: str, schema: str, **kw) -> requests.Response:
    return requests.post(f"{url}/subjects/{subject}/versions", data=json.dumps({"schema": schema}),
                         headers={"Content-Type": SR}, timeout=60, **kw)


def test_registry_and_proxy_serve_https_with_the_brokers_stores(broker_factory, certs):
    ca = str(certs / "ca.crt")
    b = broker_factory(tls_configs(certs), registry=True, proxy=True, https_ca=certs / "ca.crt")
    assert b.registry_url.startswith("https://") and b.proxy_url.startswith("https://")
    topic = "https-orders"
    create_topic(b, topic)

    # confluent-kafka's registry client and Avro serializers, trusting the CA.
    registry = SchemaRegistryClient({"url": b.registry_url, "ssl.ca.location": ca})
    serialize = AvroSerializer(registry, ORDER)
    p = Producer({"bootstrap.servers": b.bootstrap})
    orders = [{"id": i, "item": f"item-{i}"} for i in range(3)]
    for order in orders:
        p.produce(topic, value=serialize(order, SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    schema_id = registry.get_latest_version(f"{topic}-value").schema_id
    assert schema_id == 1
    raw = kafka_consume(b, topic, 3)
    assert [m.value()[:5] for m in raw] == [b"\x00" + schema_id.to_bytes(4, "big")] * 3
    got = kafka_consume(b, topic, 3, value_deserializer=AvroDeserializer(registry))
    assert [m.value() for m in got] == orders
    # The same schema again through requests: the same id.
    resp = register(b.registry_url, f"{topic}-value", ORDER, verify=ca)
    assert (resp.status_code, resp.json()) == (200, {"id": schema_id})

    # Plain http on the https port gets no HTTP answer; an untrusted CA fails the handshake.
    plain = b.registry_url.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(plain + "/subjects", timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(b.registry_url + "/subjects", verify=str(certs / "rogue-ca.crt"), timeout=10)
    # ...and the listener goes on serving.
    assert requests.get(b.registry_url + "/subjects", verify=ca, timeout=10).json() == [f"{topic}-value"]

    # The REST proxy over https: an Avro produce through it registers with the https registry
    # (the proxy trusts it through the broker's truststore), and its links name https.
    rest = https_rest(b.proxy_url, ca)
    answer = rest.ok("POST", f"/topics/{topic}", {"value_schema_id": schema_id,
                                                  "records": [{"value": {"id": 3, "item": "item-3"}}]},
                     content_type=AVRO)
    assert (answer["value_schema_id"], [o["offset"] for o in answer["offsets"]]) == (schema_id, [3])
    other = "https-orders-2"
    create_topic(b, other)
    answer = rest.ok("POST", f"/topics/{other}", {"value_schema": ORDER,
                                                  "records": [{"value": {"id": 9, "item": "nine"}}]},
                     content_type=AVRO)
    assert answer["value_schema_id"] == schema_id  # the same schema under a second subject
    assert requests.get(f"{b.registry_url}/subjects/{other}-value/versions/1", verify=ca,
                        timeout=10).json()["id"] == schema_id
    instance = rest.consumer("https-readers", "avro", **{"auto.offset.reset": "earliest"})
    rest.ok("POST", f"{instance}/subscription", {"topics": [topic]}, expect=204)
    records = rest.read_until(instance, 4, AVRO)
    assert [(r["offset"], r["value"]) for r in records] == \
        [(i, o) for i, o in enumerate(orders + [{"id": 3, "item": "item-3"}])]
    rest.ok("DELETE", instance, expect=204)
    clusters = rest.ok("GET", "/v3/clusters", accept="application/json")
    assert clusters["data"][0]["metadata"]["self"].startswith(f"{b.proxy_url}/v3/clusters/")
    with pytest.raises(requests.ConnectionError):
        requests.get(b.proxy_url.replace("https://", "http://") + "/topics", timeout=10)

    # The CLI: registry commands and consume --schema-registry with the CA; without it the
    # system's CAs do not trust the registry.
    listed = cli("registry", "--registry-url", b.registry_url, "--registry-ca", ca, "subject", "list").stdout
    assert set(listed.split()) == {f"{topic}-value", f"{other}-value"}
    out = cli("consume", topic, "--brokers", b.bootstrap, "--schema-registry", b.registry_url,
              "--schema-registry-ca", ca, "-n", "4", "--timeout-ms", "15000").stdout
    assert [json.loads(line) for line in out.splitlines()] == orders + [{"id": 3, "item": "item-3"}]
    refused = cli("registry", "--registry-url", b.registry_url, "subject", "list", ok=False)
    assert refused.returncode != 0 and "certificate" in refused.stderr.lower(), refused.stderr


def test_a_registry_that_requires_client_certificates(broker_factory, certs):
    """`schema.registry.ssl.client.auth=required`: clients without a certificate the truststore's
    CA signed are refused; the proxy shows the registry's certificate (`schema.registry.ssl.*`)."""
    ca = str(certs / "ca.crt")
    configs = {**tls_configs(certs, "schema.registry."), **tls_configs(certs, "rest.proxy."),
               "schema.registry.ssl.client.auth": "required"}
    b = broker_factory(configs, registry=True, proxy=True, https_ca=certs / "ca.crt",
                       https_cert=(certs / "reader.crt", certs / "reader.key"))
    reader = (str(certs / "reader.crt"), str(certs / "reader.key"))

    with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
        requests.get(b.registry_url + "/subjects", verify=ca, timeout=10).raise_for_status()
    assert requests.get(b.registry_url + "/subjects", verify=ca, cert=reader, timeout=10).json() == []
    registry = SchemaRegistryClient({"url": b.registry_url, "ssl.ca.location": ca,
                                     "ssl.certificate.location": reader[0], "ssl.key.location": reader[1]})
    topic = "mtls-orders"
    create_topic(b, topic)
    schema_id = registry.register_schema(f"{topic}-value", Schema(ORDER, "AVRO"))
    # The proxy reaches the registry with its client certificate: an Avro produce by schema text.
    rest = https_rest(b.proxy_url, ca)
    answer = rest.ok("POST", f"/topics/{topic}", {"value_schema": ORDER,
                                                  "records": [{"value": {"id": 1, "item": "one"}}]},
                     content_type=AVRO)
    assert answer["value_schema_id"] == schema_id
    got = kafka_consume(b, topic, 1, value_deserializer=AvroDeserializer(registry))
    assert [m.value() for m in got] == [{"id": 1, "item": "one"}]
    # The proxy's listener does not ask for client certificates (its own rest.proxy.ssl.*).
    assert topic in rest.ok("GET", "/topics", accept=V2)


def test_followers_send_writes_on_to_an_https_leader(tmp_path, certs):
    """Two nodes with https registries: writes to either are registered by the one leader, reached
    over https with the registry's own trust and certificate (required by the leader)."""
    ca = str(certs / "ca.crt")
    # Each registry advertises itself as localhost (`schema.registry.host.name`, Confluent's
    # `host.name`), a name its certificate holds.
    c = Cluster(tmp_path / "cluster", 2, {"group.initial.rebalance.delay.ms": "0",
                                          **tls_configs(certs, "schema.registry."),
                                          "schema.registry.ssl.client.auth": "required",
                                          "schema.registry.host.name": "localhost"})
    for node in c.nodes.values():
        node.registry_port = free_port()
        node.https_ca = certs / "ca.crt"
    reader = (str(certs / "reader.crt"), str(certs / "reader.key"))
    try:
        c.start()
        for node in c.nodes.values():
            _wait_serving(node, ca, reader)

        def register_on(node, subject: str, text: str) -> int:
            resp = register(node.registry_url, subject, text, verify=ca, cert=reader)
            assert resp.status_code == 200, (node.node_id, resp.status_code, resp.text)
            return resp.json()["id"]

        ids = register_through_each(c.nodes.values(), 3, register_on)
        # One writer: the six ids are 1..6 with no clash, and both nodes read them all.
        assert sorted(ids.values()) == list(range(1, 7)), ids
        for node in c.nodes.values():
            c.wait_for(f"node {node.node_id} to read every subject",
                       lambda node=node: sorted(requests.get(node.registry_url + "/subjects", verify=ca,
                                                             cert=reader, timeout=5).json()) == sorted(ids))
        # The follower knows its leader by its https URL (Confluent's identity `scheme`) and
        # advertised host.
        elected = [re.findall(r"schema registry leader elected leader=(This|Other \{ url: \"[^\"]+\" \})",
                              n.log()) for n in c.nodes.values()]
        last = sorted(e[-1] for e in elected if e)
        leader_port = [n.registry_port for n, e in zip(c.nodes.values(), elected) if e and e[-1] == "This"]
        assert len(last) == 2 and len(leader_port) == 1, elected
        assert last == sorted(["This", f'Other {{ url: "https://localhost:{leader_port[0]}" }}']), last
    finally:
        c.stop_all()
        for node in c.nodes.values():
            if "panicked at" in node.log():
                pytest.fail(f"node {node.node_id} panicked:\n{node.log_tail(120)}")


def _wait_serving(node, ca: str, cert, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(node.registry_url + "/subjects", verify=ca, cert=cert, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"node {node.node_id}'s registry is not serving:\n{node.log_tail()}")


def test_the_proxy_reaches_its_registry_by_the_advertised_host(broker_factory, certs):
    """A registry whose certificate names only `localhost`: with `schema.registry.host.name=localhost`
    the node's proxy calls it at https://localhost:<port>, so an Avro produce registers its schema;
    without it, the proxy's default URL (https://127.0.0.1:<port>) fails the certificate check."""
    ca = str(certs / "ca.crt")

    def start(advertised: bool):
        port = free_port()
        configs = {**tls_configs(certs, "schema.registry."), **tls_configs(certs, "rest.proxy."),
                   "schema.registry.ssl.keystore.location": str(certs / "by-name.pem"),
                   "schema.registry.listeners": f"https://127.0.0.1:{port}"}
        if advertised:
            configs["schema.registry.host.name"] = "localhost"
        b = broker_factory(configs, proxy=True, https_ca=certs / "ca.crt")
        registry = f"https://localhost:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(registry + "/subjects", verify=ca, timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        return b, registry

    b, registry = start(advertised=True)
    create_topic(b, "by-name")
    rest = https_rest(b.proxy_url, ca)
    answer = rest.ok("POST", "/topics/by-name", {"value_schema": ORDER,
                                                  "records": [{"value": {"id": 1, "item": "one"}}]},
                     content_type=AVRO)
    assert answer["value_schema_id"] == 1
    assert requests.get(f"{registry}/subjects", verify=ca, timeout=10).json() == ["by-name-value"]

    b, registry = start(advertised=False)
    create_topic(b, "by-address")
    status, body, _ = https_rest(b.proxy_url, ca).call(
        "POST", "/topics/by-address", {"value_schema": ORDER, "records": [{"value": {"id": 1, "item": "x"}}]},
        content_type=AVRO)
    # The proxy answers as for a schema it could not register (Confluent's 42205), naming the cause.
    assert (status, body["error_code"]) == (422, 42205), body
    assert 'certificate not valid for name "127.0.0.1"' in body["message"], body
    assert requests.get(f"{registry}/subjects", verify=ca, timeout=10).json() == []


def test_https_listeners_without_a_keystore_stop_the_start(broker_factory, certs):
    from conftest import BrokerError
    with pytest.raises(BrokerError) as raised:
        broker_factory({}, registry=True, https_ca=certs / "ca.crt")
    assert "schema.registry.ssl.keystore.location" in str(raised.value)

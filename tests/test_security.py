"""TLS and SASL listeners with real clients: confluent-kafka (librdkafka), kafka-python and
kcat over SSL with client certificates and over SASL_SSL / SASL_PLAINTEXT with PLAIN; a wrong
password, an unknown user, an untrusted or missing client certificate each refused as Kafka
refuses them; certificates reloaded when their files change; SASL sessions that expire
(`connections.max.reauth.ms`) re-authenticated by librdkafka and closed for a client that
does not re-authenticate."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KPTopicPartition

import kafka_wire as kw
import kwire
from helpers import consume_to_end, create_topic, produce_all, unique
from pki import CertificateAuthority

USERS = {"admin": "admin-secret", "alice": "alice-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret" '
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
# Debug lines of the connection module name each client's principal.
DEBUG_CONNECTIONS = {"STROM_LOG": "info,strom_broker::connection=debug"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A trusted CA with a server keystore and alice's client certificate, and a rogue CA
    with a client certificate the broker must not trust."""
    d = tmp_path_factory.mktemp("pki")
    ca, rogue = CertificateAuthority("strom-test-ca"), CertificateAuthority("rogue-ca")
    (d / "ca.crt").write_bytes(ca.pem)
    (d / "rogue-ca.crt").write_bytes(rogue.pem)
    ca.server().write(d, "server")
    ca.client(C="SE", O="strom", OU="eng", CN="Alice").write(d, "alice")
    rogue.client(C="SE", O="strom", CN="mallory").write(d, "mallory")
    return {"dir": d, "ca": ca, "rogue": rogue}


def secured_configs(pki, **extra) -> dict[str, str]:
    d = pki["dir"]
    return {
        "listener.security.protocol.map":
            "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(d / "server.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(d / "ca.crt"),
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/L,DEFAULT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        **extra,
    }


@pytest.fixture
def secured(broker_factory, pki):
    return broker_factory(secured_configs(pki), env=DEBUG_CONNECTIONS,
                          listeners=["SSL", "SASL_SSL", "SASL_PLAINTEXT"])


def ssl_conf(pki, client: str = "alice") -> dict:
    d = pki["dir"]
    return {"security.protocol": "SSL", "ssl.ca.location": str(d / "ca.crt"),
            "ssl.certificate.location": str(d / f"{client}.crt"), "ssl.key.location": str(d / f"{client}.key")}


def sasl_conf(pki, user: str, password: str, protocol: str = "SASL_SSL") -> dict:
    conf = {"security.protocol": protocol, "sasl.mechanism": "PLAIN",
            "sasl.username": user, "sasl.password": password}
    if protocol == "SASL_SSL":
        conf["ssl.ca.location"] = str(pki["dir"] / "ca.crt")
    return conf


def records(tag: str, n: int = 5) -> list[dict]:
    return [{"key": b"%s-k%d" % (tag.encode(), i), "value": b"%s-v%d" % (tag.encode(), i),
             "headers": [("h", b"%d" % i)]} for i in range(n)]


def round_trip_confluent(address: str, conf: dict, topic: str, tag: str) -> None:
    """Produce and read back over one listener; the cluster metadata names that listener."""
    sent = records(tag)
    p = Producer({"bootstrap.servers": address, "acks": "all", "linger.ms": 5, **conf})
    md = p.list_metadata(timeout=15) if hasattr(p, "list_metadata") else p.list_topics(timeout=15)
    assert [f"{b.host}:{b.port}" for b in md.brokers.values()] == [address]
    delivered = produce_all(p, topic, sent, timeout_s=30)
    assert [(d.partition, d.offset) for d in delivered] == [(0, i) for i in range(len(sent))]
    c = Consumer({"bootstrap.servers": address, "group.id": unique("g"), "enable.auto.commit": False,
                  "auto.offset.reset": "error", **conf})
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): len(sent)}, timeout_s=30)
    finally:
        c.close()
    assert [(m.offset(), m.key(), m.value(), m.headers()) for m in msgs] == \
        [(i, r["key"], r["value"], r["headers"]) for i, r in enumerate(sent)]


def round_trip_kafka_python(address: str, conf: dict, topic: str) -> None:
    p = KafkaProducer(bootstrap_servers=address, acks="all", **conf)
    try:
        metas = [p.send(topic, key=b"kp-%d" % i, value=b"kafka-python-%d" % i).get(timeout=30) for i in range(4)]
    finally:
        p.close()
    assert [m.offset for m in metas] == [0, 1, 2, 3]
    c = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False, consumer_timeout_ms=15000, **conf)
    try:
        c.assign([KPTopicPartition(topic, 0)])
        c.seek(KPTopicPartition(topic, 0), 0)
        got = []
        for m in c:
            got.append((m.offset, m.key, m.value))
            if len(got) == 4:
                break
    finally:
        c.close()
    assert got == [(i, b"kp-%d" % i, b"kafka-python-%d" % i) for i in range(4)]


def kcat(address: str, conf: dict, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    cmd = ["kcat", "-b", address]
    for k, v in conf.items():
        cmd += ["-X", f"{k}={v}"]
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True, timeout=60)


def round_trip_kcat(address: str, conf: dict, topic: str) -> None:
    lines = b"".join(b"kc-%d:kcat-%d\n" % (i, i) for i in range(3))
    res = kcat(address, conf, "-P", "-t", topic, "-p", "0", "-K", ":", stdin=lines)
    assert res.returncode == 0, res.stderr.decode()
    res = kcat(address, conf, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-f", "%o %k %s\n")
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().splitlines() == [f"{i} kc-{i} kcat-{i}" for i in range(3)]


def kafka_python_ssl(pki, client: str = "alice") -> dict:
    d = pki["dir"]
    return {"security_protocol": "SSL", "ssl_cafile": str(d / "ca.crt"),
            "ssl_certfile": str(d / f"{client}.crt"), "ssl_keyfile": str(d / f"{client}.key")}


def kafka_python_sasl(pki, user: str, password: str) -> dict:
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_plain_username": user,
            "sasl_plain_password": password, "ssl_cafile": str(pki["dir"] / "ca.crt")}


def first_error(conf: dict, address: str, timeout_s: float = 20) -> KafkaError:
    """The first error librdkafka reports for a client that cannot get in."""
    errors: list[KafkaError] = []
    p = Producer({"bootstrap.servers": address, "error_cb": errors.append, **conf})
    deadline = time.monotonic() + timeout_s
    while not errors and time.monotonic() < deadline:
        p.poll(0.1)
    assert errors, f"no error reported within {timeout_s}s"
    return errors[0]


# --- SSL with client certificates ------------------------------------------------------------

def test_clients_over_tls_with_client_certificates(secured, pki):
    address = secured.address("SSL")
    topic = unique("tls")
    create_topic(secured, topic, 1)
    round_trip_confluent(address, ssl_conf(pki), topic, "tls")
    # The certificate's subject, mapped by ssl.principal.mapping.rules, is the principal.
    secured.wait_for_log(r"TLS connection.*principal=User:alice")
    topic = unique("tls-kp")
    create_topic(secured, topic, 1)
    round_trip_kafka_python(address, kafka_python_ssl(pki), topic)
    topic = unique("tls-kcat")
    create_topic(secured, topic, 1)
    round_trip_kcat(address, ssl_conf(pki), topic)


def test_an_untrusted_or_missing_client_certificate_is_refused(secured, pki):
    address = secured.address("SSL")
    mark = len(secured.log())
    err = first_error(ssl_conf(pki, "mallory"), address)
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT), err
    secured.wait_for_log(r"TLS handshake failed", since=mark)
    no_cert = {k: v for k, v in ssl_conf(pki).items() if not k.startswith("ssl.certificate") and k != "ssl.key.location"}
    mark = len(secured.log())
    err = first_error(no_cert, address)
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT), err
    secured.wait_for_log(r"TLS handshake failed", since=mark)
    res = kcat(address, ssl_conf(pki, "mallory"), "-L", "-m", "5")
    assert res.returncode != 0 and b"SSL" in res.stderr, res
    # A client that does not trust the broker's certificate refuses it itself.
    rogue_trust = {**ssl_conf(pki), "ssl.ca.location": str(pki["dir"] / "rogue-ca.crt")}
    err = first_error(rogue_trust, address)
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT) and "certificate verify failed" in err.str(), err
    # And trusted clients still get in.
    topic = unique("after-refusals")
    create_topic(secured, topic, 1)
    round_trip_confluent(address, ssl_conf(pki), topic, "after")


# --- SASL PLAIN --------------------------------------------------------------------------------

def test_clients_over_sasl_ssl_with_plain(secured, pki):
    address = secured.address("SASL_SSL")
    topic = unique("plain")
    create_topic(secured, topic, 1)
    round_trip_confluent(address, sasl_conf(pki, "alice", "alice-secret"), topic, "plain")
    secured.wait_for_log(r"SASL authenticated.*principal=User:alice")
    topic = unique("plain-kp")
    create_topic(secured, topic, 1)
    round_trip_kafka_python(address, kafka_python_sasl(pki, "alice", "alice-secret"), topic)
    topic = unique("plain-kcat")
    create_topic(secured, topic, 1)
    round_trip_kcat(address, sasl_conf(pki, "admin", "admin-secret"), topic)
    # SASL_PLAINTEXT: the same mechanism without TLS.
    topic = unique("plain-noTLS")
    create_topic(secured, topic, 1)
    round_trip_confluent(secured.address("SASL_PLAINTEXT"),
                         sasl_conf(pki, "alice", "alice-secret", "SASL_PLAINTEXT"), topic, "sasl-plaintext")


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("mallory", "alice-secret")],
                         ids=["wrong-password", "unknown-user"])
def test_bad_credentials_are_refused_as_kafka_refuses_them(secured, pki, user, password, caplog):
    address = secured.address("SASL_SSL")
    mark = len(secured.log())
    err = first_error(sasl_conf(pki, user, password), address)
    assert err.code() == KafkaError._AUTHENTICATION, err
    assert "Authentication failed: Invalid username or password" in err.str(), err
    secured.wait_for_log(r"failed authentication: SASL authentication failed", since=mark)
    res = kcat(address, sasl_conf(pki, user, password), "-L", "-m", "5")
    assert res.returncode != 0 and b"Invalid username or password" in res.stderr, res
    # kafka-python gives up bootstrapping and logs the broker's answer.
    from kafka.errors import KafkaTimeoutError
    caplog.set_level(logging.WARNING, logger="kafka")
    with pytest.raises(KafkaTimeoutError):
        KafkaConsumer(bootstrap_servers=address, bootstrap_timeout_ms=3000,
                      **kafka_python_sasl(pki, user, password))
    refusals = [r.getMessage() for r in caplog.records if "SaslAuthenticationFailedError" in r.getMessage()]
    assert refusals and "Invalid username or password" in refusals[0], caplog.text[-2000:]


def test_requests_before_authentication_close_the_connection(secured):
    port = secured.listener_ports["SASL_PLAINTEXT"]
    mark = len(secured.log())
    with kwire.connect(secured.host, port) as sock:
        # ApiVersions is allowed before authentication ...
        assert kwire.api_versions(sock, version=0).error_code == kw.NONE
        # ... Metadata is not.
        sock.sendall(kwire.request_frame(3, 4, 2, struct.pack(">i", -1) + b"\x00"))
        assert kw.closed_by_peer(sock, timeout_s=10)
    secured.wait_for_log(r"unexpected request Metadata during SASL authentication", since=mark)
    # On a listener without SASL, the SASL requests get ILLEGAL_SASL_STATE.
    with kwire.connect(secured.host, secured.port) as sock:
        r = kwire.roundtrip(sock, 17, 1, 3, kwire.enc_string("PLAIN"))
        assert r.i16() == 34  # ILLEGAL_SASL_STATE


# --- sessions and re-authentication -------------------------------------------------------------

def test_sessions_expire_unless_the_client_re_authenticates(broker_factory, pki):
    b = broker_factory(secured_configs(pki, **{"connections.max.reauth.ms": "1500"}), env=DEBUG_CONNECTIONS,
                       listeners=["SASL_SSL", "SASL_PLAINTEXT"])
    # A raw client learns its session lifetime and is closed once it passes.
    port = b.listener_ports["SASL_PLAINTEXT"]
    with kwire.connect(b.host, port) as sock:
        r = kwire.roundtrip(sock, 17, 1, 10, kwire.enc_string("PLAIN"))
        assert r.i16() == kw.NONE
        token = b"\0alice\0alice-secret"
        r = kwire.roundtrip(sock, 36, 1, 11, struct.pack(">i", len(token)) + token)
        assert r.i16() == kw.NONE
        (message_len,) = struct.unpack(">h", r.take(2))
        assert message_len == -1
        (auth_len,) = struct.unpack(">i", r.take(4))
        r.take(max(auth_len, 0))
        (lifetime,) = struct.unpack(">q", r.take(8))
        assert lifetime == 1500
        assert kwire.api_versions(sock, correlation_id=12).error_code == kw.NONE
        time.sleep(1.7)
        mark = len(b.log())
        sock.sendall(kwire.request_frame(18, 0, 13, b""))
        assert kw.closed_by_peer(sock, timeout_s=10)
    b.wait_for_log(r"SASL session of User:alice expired", since=mark)
    # librdkafka re-authenticates on its own (KIP-368) and keeps producing on the same connections.
    topic = unique("reauth")
    create_topic(b, topic, 1)
    address = b.address("SASL_SSL")
    p = Producer({"bootstrap.servers": address, "acks": "all", "linger.ms": 5,
                  **sasl_conf(pki, "alice", "alice-secret")})
    sent = []
    started = time.monotonic()
    while time.monotonic() - started < 5:
        batch = [{"key": b"r%d" % len(sent), "value": b"reauth-%d" % (len(sent) + i)} for i in range(1)]
        produce_all(p, topic, batch, timeout_s=30)
        sent += batch
        time.sleep(0.1)
    reauths = [line for line in b.log().splitlines()
               if "SASL authenticated" in line and "principal=User:alice" in line and "sessions=2" in line]
    assert reauths, "librdkafka did not re-authenticate within 5 s of 1.5 s sessions"
    assert "expired" not in b.log()[mark + 200:], "a librdkafka connection was closed for an expired session"
    c = Consumer({"bootstrap.servers": address, "group.id": unique("g"), "enable.auto.commit": False,
                  "auto.offset.reset": "error", **sasl_conf(pki, "alice", "alice-secret")})
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): len(sent)}, timeout_s=30)
    finally:
        c.close()
    assert [(m.key(), m.value()) for m in msgs] == [(r["key"], r["value"]) for r in sent]


# --- certificate reload ----------------------------------------------------------------------------

def test_certificates_are_reloaded_when_their_files_change(broker_factory, pki, tmp_path):
    """The keystore file is replaced by a certificate of another CA: new connections get it
    without a restart."""
    d = pki["dir"]
    keystore = tmp_path / "keystore.pem"
    keystore.write_bytes((d / "server.pem").read_bytes())
    configs = {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
               "ssl.keystore.location": str(keystore), "strom.ssl.reload.check.interval.ms": "200"}
    b = broker_factory(configs, listeners=["SSL"])
    address = b.address("SSL")
    trust_first = {"security.protocol": "SSL", "ssl.ca.location": str(d / "ca.crt")}
    topic = unique("reload")
    create_topic(b, topic, 1)
    round_trip_confluent(address, trust_first, topic, "before")
    second_ca = CertificateAuthority("second-ca")
    (tmp_path / "second-ca.crt").write_bytes(second_ca.pem)
    issued = second_ca.server()
    mark = len(b.log())
    tmp = tmp_path / "keystore.new"
    tmp.write_bytes(issued.key_pem + issued.cert_pem)
    os.replace(tmp, keystore)
    b.wait_for_log(r"reloaded TLS key and trust stores", since=mark)
    trust_second = {"security.protocol": "SSL", "ssl.ca.location": str(tmp_path / "second-ca.crt")}
    topic = unique("reloaded")
    create_topic(b, topic, 1)
    round_trip_confluent(address, trust_second, topic, "after")
    err = first_error(trust_first, address)
    assert "certificate verify failed" in err.str(), err
    # A keystore that cannot be read keeps the certificates in use.
    mark = len(b.log())
    keystore.write_bytes(b"not a PEM file")
    b.wait_for_log(r"cannot be loaded; keeping the previous ones", since=mark)
    topic = unique("kept")
    create_topic(b, topic, 1)
    round_trip_confluent(address, trust_second, topic, "kept")


def test_a_broker_with_a_missing_keystore_does_not_start(tmp_path):
    from conftest import Broker, BrokerError
    b = Broker(tmp_path / "b", {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
                                "ssl.keystore.location": str(tmp_path / "missing.pem")}, listeners=["SSL"])
    with pytest.raises(BrokerError, match=r"listener SSL: reading .*missing.pem"):
        b.start(timeout_s=15)


# --- SCRAM (KIP-554 credentials in the metadata log) -------------------------------------------

SCRAM_MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"


def scram_conf(pki, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> dict:
    return {**sasl_conf(pki, user, password), "sasl.mechanism": mechanism}


def alter_scram(broker, *changes) -> dict:
    """AlterUserScramCredentials through confluent-kafka's admin client: user -> error or None."""
    from confluent_kafka import KafkaException
    adm = AdminClient({"bootstrap.servers": broker.bootstrap})  # alive until the futures resolve
    futures = adm.alter_user_scram_credentials(list(changes))
    outcome = {}
    for user, future in futures.items():
        try:
            future.result(timeout=30)
            outcome[user] = None
        except KafkaException as e:
            outcome[user] = e.args[0]
    return outcome


def describe_scram(broker, users=None) -> dict:
    from confluent_kafka import KafkaException
    adm = AdminClient({"bootstrap.servers": broker.bootstrap})
    result = adm.describe_user_scram_credentials(users) if users else adm.describe_user_scram_credentials()
    if not isinstance(result, dict):
        result = {"*": result}
    out = {}
    for user, future in result.items():
        try:
            value = future.result(timeout=30)
        except KafkaException as e:
            out[user] = e.args[0].code()
            continue
        descriptions = value.values() if isinstance(value, dict) else [value]
        for d in descriptions:
            out[d.user] = sorted((i.mechanism.name, i.iterations) for i in d.scram_credential_infos)
    return out


def test_scram_users_are_managed_through_the_admin_api_and_authenticate_every_client(broker_factory, pki):
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    b = broker_factory(secured_configs(pki, **{"sasl.enabled.mechanisms": SCRAM_MECHANISMS}),
                       env=DEBUG_CONNECTIONS, listeners=["SASL_SSL"])
    sha512, sha256 = ScramMechanism.SCRAM_SHA_512, ScramMechanism.SCRAM_SHA_256
    assert alter_scram(b,
                       UserScramCredentialUpsertion("alice", ScramCredentialInfo(sha512, 8192), b"alice-scram"),
                       UserScramCredentialUpsertion("bob", ScramCredentialInfo(sha256, 4096), b"bob-scram")) == \
        {"alice": None, "bob": None}
    refused = alter_scram(b, UserScramCredentialUpsertion("carol", ScramCredentialInfo(sha512, 1000), b"x"),
                          UserScramCredentialDeletion("nobody", sha512))
    assert refused["carol"].code() == KafkaError.UNACCEPTABLE_CREDENTIAL and refused["carol"].str() == "Too few iterations"
    assert refused["nobody"].code() == KafkaError.RESOURCE_NOT_FOUND
    assert describe_scram(b) == {"alice": [("SCRAM_SHA_512", 8192)], "bob": [("SCRAM_SHA_256", 4096)]}
    assert describe_scram(b, ["nobody"]) == {"nobody": KafkaError.RESOURCE_NOT_FOUND}
    address = b.address("SASL_SSL")
    topic = unique("scram")
    create_topic(b, topic, 1)
    round_trip_confluent(address, scram_conf(pki, "alice", "alice-scram"), topic, "scram")
    b.wait_for_log(r"SASL authenticated.*principal=User:alice")
    topic = unique("scram-kp")
    create_topic(b, topic, 1)
    round_trip_kafka_python(address, {**kafka_python_sasl(pki, "alice", "alice-scram"),
                                      "sasl_mechanism": "SCRAM-SHA-512"}, topic)
    topic = unique("scram-kcat")
    create_topic(b, topic, 1)
    round_trip_kcat(address, scram_conf(pki, "alice", "alice-scram"), topic)
    topic = unique("scram-256")
    create_topic(b, topic, 1)
    round_trip_confluent(address, scram_conf(pki, "bob", "bob-scram", "SCRAM-SHA-256"), topic, "scram-256")
    # A wrong password, or a credential for the other mechanism, is refused as Kafka words it.
    generic = "Authentication failed during authentication due to invalid credentials with SASL mechanism"
    err = first_error(scram_conf(pki, "alice", "wrong"), address)
    assert err.code() == KafkaError._AUTHENTICATION and f"{generic} SCRAM-SHA-512" in err.str(), err
    err = first_error(scram_conf(pki, "bob", "bob-scram", "SCRAM-SHA-512"), address)
    assert err.code() == KafkaError._AUTHENTICATION and f"{generic} SCRAM-SHA-512" in err.str(), err
    # Credentials live in the metadata log: they survive kill -9, and a deletion takes effect.
    b.restart(kill=True)
    topic = unique("scram-after-restart")
    create_topic(b, topic, 1)
    round_trip_confluent(address, scram_conf(pki, "bob", "bob-scram", "SCRAM-SHA-256"), topic, "restart")
    assert alter_scram(b, UserScramCredentialDeletion("alice", sha512)) == {"alice": None}
    assert describe_scram(b) == {"bob": [("SCRAM_SHA_256", 4096)]}
    err = first_error(scram_conf(pki, "alice", "alice-scram"), address)
    assert err.code() == KafkaError._AUTHENTICATION, err

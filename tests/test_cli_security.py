"""The CLI on secured listeners: `--command-config` (a Kafka properties file) and `-X` overrides
on the client subcommands over SASL_SSL with SCRAM-SHA-512 and over SSL with a client
certificate (topics, produce and consume round-trip exact records); a wrong password refused
with SASL_AUTHENTICATION_FAILED and a non-zero exit; `strom user` (KIP-554 SCRAM credentials)
used by confluent-kafka; `strom acl` create/list/delete taking effect; `strom quota` set and
describe. The certificates and broker configs are test_security.py's and test_acls.py's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from confluent_kafka import KafkaError

from conftest import strom_bin
from helpers import unique
from test_acls import STANDARD_AUTHORIZER
from test_security import (SCRAM_MECHANISMS, first_error, pki, round_trip_confluent,  # noqa: F401 (fixture)
                           scram_conf, secured_configs)

SCRAM_FAILURE = ("Authentication failed during authentication due to invalid credentials with SASL "
                 "mechanism SCRAM-SHA-512")


def strom(address: str, *args: str, config: Path | None = None, extra: dict | None = None,
          stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(strom_bin()), *args, "--brokers", address]
    if config is not None:
        cmd += ["--command-config", str(config)]
    for k, v in (extra or {}).items():
        cmd += ["-X", f"{k}={v}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}"
    return proc


def write_properties(path: Path, props: dict[str, str]) -> Path:
    path.write_text("# client settings, as for kafka-topics.sh --command-config\n"
                    + "".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def table(stdout: str) -> list[list[str]]:
    """The CLI's table as rows of cells (no cell holds whitespace), header first."""
    return [line.split() for line in stdout.splitlines()]


def scram_properties(pki, user: str, password: str) -> dict[str, str]:
    """Java's names: the JAAS config and a PEM truststore."""
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
                            f'username="{user}" password="{password}";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki["dir"] / "ca.crt"),
    }


def plain_properties(pki, user: str, password: str) -> dict[str, str]:
    """librdkafka's names."""
    return {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": user,
            "sasl.password": password, "ssl.ca.location": str(pki["dir"] / "ca.crt")}


def round_trip(address: str, config: Path | None, extra: dict | None = None) -> None:
    """topic create/list, produce and consume of exact records through the CLI."""
    topic = unique("cli-sec")
    out = strom(address, "topic", "create", topic, "-p", "1", config=config, extra=extra).stdout
    assert topic in out
    listed = strom(address, "topic", "list", config=config, extra=extra).stdout
    assert topic in [row[0] for row in table(listed)[1:]]
    lines = [f"k{i}:value {i} over {topic}" for i in range(5)]
    strom(address, "produce", topic, "-k", ":", "-H", "h=1", config=config, extra=extra,
          stdin="".join(line + "\n" for line in lines))
    out = strom(address, "consume", topic, "-n", "5", "--format", "json", "--timeout-ms", "15000",
                config=config, extra=extra).stdout
    got = [json.loads(line) for line in out.splitlines()]
    assert [(r["offset"], r["key"], r["value"], r["headers"]) for r in got] == \
        [(i, f"k{i}", f"value {i} over {topic}", [{"key": "h", "value": "1"}]) for i in range(5)]


# --- SASL_SSL with SCRAM-SHA-512, users managed by `strom user` ----------------------------------

def test_scram_users_made_by_the_cli_authenticate_the_cli_and_librdkafka(broker_factory, pki, tmp_path):
    b = broker_factory(secured_configs(pki, **{"sasl.enabled.mechanisms": SCRAM_MECHANISMS}),
                       listeners=["SASL_SSL"])
    address = b.address("SASL_SSL")
    # The admin is a PLAIN user of the listener's JAAS config, given with librdkafka's names.
    admin = write_properties(tmp_path / "admin.properties", plain_properties(pki, "admin", "admin-secret"))
    out = strom(address, "user", "create", "carol", "--password", "carol-pw", "--iterations", "8192",
                config=admin).stdout
    assert out == "Created SCRAM-SHA-512 credential of user carol (8192 iterations)\n"
    strom(address, "user", "create", "dave", "--password", "dave-pw", "--mechanism", "SCRAM-SHA-256",
          config=admin)
    assert table(strom(address, "user", "list", config=admin).stdout) == [
        ["USER", "MECHANISM", "ITERATIONS"], ["carol", "SCRAM-SHA-512", "8192"], ["dave", "SCRAM-SHA-256", "4096"]]
    # Too few iterations: the broker's refusal, with its code name and message.
    res = strom(address, "user", "create", "erin", "--password", "x", "--iterations", "1000", config=admin, ok=False)
    assert res.returncode == 1 and "user erin: UNACCEPTABLE_CREDENTIAL: Too few iterations" in res.stderr, res.stderr
    res = strom(address, "user", "list", "nobody", config=admin, ok=False)
    assert res.returncode == 1 and "user nobody: RESOURCE_NOT_FOUND" in res.stderr, res.stderr

    # The CLI itself over SASL_SSL/SCRAM-SHA-512, with Java's names in the file.
    carol = write_properties(tmp_path / "carol.properties", scram_properties(pki, "carol", "carol-pw"))
    round_trip(address, carol)
    # Pipelined produce (TLS connections split into writer and reader) and a group consumer
    # (the coordinator's connection too) over SASL_SSL.
    topic = unique("cli-perf")
    out = json.loads(strom(address, "perf", "produce", topic, "-n", "3000", "--record-size", "100",
                           "--partitions", "2", "--acks", "all", "--json", config=carol).stdout)
    assert (out["records"], out["bytes"]) == (3000, 300000)
    group = unique("cli-perf")
    out = json.loads(strom(address, "perf", "consume", topic, "--group", group, "--json", config=carol).stdout)
    assert (out["records"], out["bytes"], out["group"]) == (3000, 300000, group)
    assert group in [row[0] for row in table(strom(address, "group", "list", config=carol).stdout)[1:]]
    # librdkafka authenticates with the credential the CLI salted.
    topic = unique("cli-user")
    strom(address, "topic", "create", topic, "-p", "1", config=carol)
    round_trip_confluent(address, scram_conf(pki, "carol", "carol-pw"), topic, "cli-user")
    strom(address, "topic", "create", topic + "-256", "-p", "1", config=carol)
    round_trip_confluent(address, scram_conf(pki, "dave", "dave-pw", "SCRAM-SHA-256"), topic + "-256", "cli-256")

    # A wrong password (an -X override of the file): the broker's error and a non-zero exit.
    res = strom(address, "topic", "list", config=carol, extra={"sasl.password": "wrong"}, ok=False)
    assert res.returncode == 1, res
    assert f"SASL_AUTHENTICATION_FAILED: {SCRAM_FAILURE}" in res.stderr, res.stderr
    assert res.stdout == ""

    # Deleting the user: its credential stops working, for the CLI and for librdkafka.
    assert strom(address, "user", "delete", "carol", config=admin).stdout == \
        "Deleted SCRAM-SHA-512 credential(s) of user carol\n"
    assert table(strom(address, "user", "list", config=admin).stdout) == [
        ["USER", "MECHANISM", "ITERATIONS"], ["dave", "SCRAM-SHA-256", "4096"]]
    res = strom(address, "topic", "list", config=carol, ok=False)
    assert res.returncode == 1 and "SASL_AUTHENTICATION_FAILED" in res.stderr, res.stderr
    err = first_error(scram_conf(pki, "carol", "carol-pw"), address)
    assert err.code() == KafkaError._AUTHENTICATION, err


# --- SSL with a client certificate ------------------------------------------------------------------

def test_cli_over_ssl_with_a_client_certificate(broker_factory, pki, tmp_path):
    b = broker_factory(secured_configs(pki), listeners=["SSL"])
    address = b.address("SSL")
    d = pki["dir"]
    # Kafka's PEM keystore (key and chain in one file) in the properties file.
    keystore = write_properties(tmp_path / "ssl.properties", {
        "security.protocol": "SSL", "ssl.truststore.type": "PEM", "ssl.truststore.location": str(d / "ca.crt"),
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(d / "alice.pem")})
    round_trip(address, keystore)
    # librdkafka's names, all as -X options.
    round_trip(address, None, {"security.protocol": "SSL", "ssl.ca.location": str(d / "ca.crt"),
                               "ssl.certificate.location": str(d / "alice.crt"),
                               "ssl.key.location": str(d / "alice.key")})
    # A certificate the broker does not trust: the handshake fails, non-zero exit.
    res = strom(address, "topic", "list", config=keystore, extra={"ssl.keystore.location": str(d / "mallory.pem")},
                ok=False)
    # (With TLS 1.3 the broker's refusal arrives as an alert after the client's side of the handshake.)
    assert res.returncode == 1 and f"TLS handshake with {address} failed" in res.stderr, res.stderr
    assert "UnknownCA" in res.stderr, res.stderr
    # No client certificate at all.
    res = strom(address, "topic", "list", extra={"security.protocol": "SSL", "ssl.ca.location": str(d / "ca.crt")},
                ok=False)
    assert res.returncode == 1 and "CertificateRequired" in res.stderr, res.stderr
    # A plaintext client on the TLS listener is told so.
    res = strom(address, "topic", "list", ok=False)
    assert res.returncode == 1, res
    assert f"{address} answered with TLS: set security.protocol to SSL or SASL_SSL" in res.stderr, res.stderr
    # A broker certificate the client does not trust.
    res = strom(address, "topic", "list", config=keystore, extra={"ssl.truststore.location": str(d / "rogue-ca.crt")},
                ok=False)
    assert res.returncode == 1 and f"TLS handshake with {address} failed" in res.stderr, res.stderr
    assert "UnknownIssuer" in res.stderr, res.stderr
    # A settings error names the key.
    res = strom(address, "topic", "list", extra={"security.protocol": "SASL_SSL"}, ok=False)
    assert res.returncode == 1 and "sasl.mechanism is required" in res.stderr, res.stderr


# --- ACLs ---------------------------------------------------------------------------------------------

ACL_HEADER = ["RESOURCE_TYPE", "NAME", "PATTERN_TYPE", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"]


def test_acls_made_by_the_cli_take_effect(broker_factory, pki, tmp_path):
    b = broker_factory(secured_configs(pki, **{"authorizer.class.name": STANDARD_AUTHORIZER,
                                               "super.users": "User:admin"}),
                       listeners=["SASL_SSL"])
    address = b.address("SASL_SSL")
    admin = write_properties(tmp_path / "admin.properties", plain_properties(pki, "admin", "admin-secret"))
    alice = write_properties(tmp_path / "alice.properties", plain_properties(pki, "alice", "alice-secret"))
    strom(address, "topic", "create", "orders", "-p", "1", config=admin)

    # Without an ACL alice may not write.
    res = strom(address, "produce", "orders", config=alice, stdin="refused\n", ok=False)
    assert res.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in res.stderr, res.stderr
    # Nor manage ACLs: the error's code name and a non-zero exit.
    res = strom(address, "acl", "list", config=alice, ok=False)
    assert res.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in res.stderr, res.stderr

    out = strom(address, "acl", "create", "--allow-principal", "User:alice", "--operation", "Write",
                "--operation", "Describe", "--topic", "orders", config=admin).stdout
    assert table(out) == [["Created", "2", "ACL(s):"], ACL_HEADER,
                          ["TOPIC", "orders", "LITERAL", "User:alice", "*", "WRITE", "ALLOW"],
                          ["TOPIC", "orders", "LITERAL", "User:alice", "*", "DESCRIBE", "ALLOW"]]
    strom(address, "acl", "create", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1",
          "--operation", "Read", "--group", "app", "--resource-pattern-type", "prefixed", config=admin)
    # Sorted by resource type (Kafka's order: topics, groups, cluster, ...), then name and operation.
    rows = [ACL_HEADER,
            ["TOPIC", "orders", "LITERAL", "User:alice", "*", "WRITE", "ALLOW"],
            ["TOPIC", "orders", "LITERAL", "User:alice", "*", "DESCRIBE", "ALLOW"],
            ["GROUP", "app", "PREFIXED", "User:bob", "10.0.0.1", "READ", "DENY"]]
    assert table(strom(address, "acl", "list", config=admin).stdout) == rows
    assert table(strom(address, "acl", "list", "--topic", "orders", config=admin).stdout) == rows[:3]
    assert table(strom(address, "acl", "list", "--principal", "User:bob", config=admin).stdout) == [ACL_HEADER, rows[3]]
    # A literal filter on the group's name does not show the prefixed ACL; match does.
    assert table(strom(address, "acl", "list", "--group", "app-1", config=admin).stdout) == [ACL_HEADER]
    assert table(strom(address, "acl", "list", "--group", "app-1", "--resource-pattern-type", "match",
                       config=admin).stdout) == [ACL_HEADER, rows[3]]

    # The ACL takes effect: alice's records are written and read back (as the super user).
    strom(address, "produce", "orders", config=alice, stdin="first\nsecond\n")
    out = strom(address, "consume", "orders", "-n", "2", "--timeout-ms", "15000", config=admin).stdout
    assert out == "first\nsecond\n"
    # Reading needs READ, which alice lacks.
    res = strom(address, "consume", "orders", "-n", "1", "--timeout-ms", "5000", config=alice, ok=False)
    assert res.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in res.stderr, res.stderr

    # Bad input is refused before anything is sent.
    res = strom(address, "acl", "create", "--allow-principal", "alice", "--topic", "orders", config=admin, ok=False)
    assert res.returncode == 1 and "expected TYPE:NAME" in res.stderr, res.stderr
    res = strom(address, "acl", "create", "--allow-principal", "User:a", "--operation", "Write", "--group", "g",
                config=admin, ok=False)
    assert res.returncode == 1 and "resource type GROUP does not take the operation WRITE" in res.stderr, res.stderr

    # Deleting every ACL of the topic; alice is refused again.
    out = strom(address, "acl", "delete", "--topic", "orders", config=admin).stdout
    assert table(out) == [["Deleted", "2", "ACL(s):"], ACL_HEADER,
                          ["TOPIC", "orders", "LITERAL", "User:alice", "*", "WRITE", "ALLOW"],
                          ["TOPIC", "orders", "LITERAL", "User:alice", "*", "DESCRIBE", "ALLOW"]]
    assert table(strom(address, "acl", "list", config=admin).stdout) == [ACL_HEADER, rows[3]]
    res = strom(address, "produce", "orders", config=alice, stdin="refused again\n", ok=False)
    assert res.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in res.stderr, res.stderr
    # A delete with a principal removes only its bindings.
    out = strom(address, "acl", "delete", "--group", "app", "--resource-pattern-type", "prefixed",
                "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "Read", config=admin).stdout
    assert table(out)[0] == ["Deleted", "1", "ACL(s):"]
    assert table(strom(address, "acl", "list", config=admin).stdout) == [ACL_HEADER]


# --- client quotas ------------------------------------------------------------------------------------

def test_quotas_set_and_described_by_the_cli(broker_factory, pki, tmp_path):
    b = broker_factory(secured_configs(pki), listeners=["SASL_SSL"])
    address = b.address("SASL_SSL")
    admin = write_properties(tmp_path / "admin.properties", plain_properties(pki, "admin", "admin-secret"))
    strom(address, "quota", "set", "--user", "alice", "--add", "producer_byte_rate=1048576",
          "--add", "consumer_byte_rate=2097152", config=admin)
    strom(address, "quota", "set", "--default", "client-id", "--add", "request_percentage=50", config=admin)
    strom(address, "quota", "set", "--user", "alice", "--client-id", "app",
          "--add", "controller_mutation_rate=10.5", config=admin)
    header = ["ENTITY", "QUOTA", "VALUE"]
    assert table(strom(address, "quota", "describe", config=admin).stdout) == [
        header,
        ["client-id=<default>", "request_percentage", "50"],
        ["user=alice", "consumer_byte_rate", "2097152"],
        ["user=alice", "producer_byte_rate", "1048576"],
        ["user=alice,client-id=app", "controller_mutation_rate", "10.5"],
    ]
    strom(address, "quota", "set", "--user", "alice", "--add", "producer_byte_rate=4096",
          "--delete", "consumer_byte_rate", config=admin)
    assert table(strom(address, "quota", "describe", "--user", "alice", config=admin).stdout) == [
        header,
        ["user=alice", "producer_byte_rate", "4096"],
        ["user=alice,client-id=app", "controller_mutation_rate", "10.5"],
    ]
    assert table(strom(address, "quota", "describe", "--default", "client-id", config=admin).stdout) == [
        header, ["client-id=<default>", "request_percentage", "50"]]
    # An unknown quota key: the broker's error, non-zero exit.
    res = strom(address, "quota", "set", "--user", "alice", "--add", "bytes_per_fortnight=1", config=admin, ok=False)
    assert res.returncode == 1, res
    assert "quotas of user=alice: INVALID_REQUEST: Invalid configuration key bytes_per_fortnight" in res.stderr, \
        res.stderr
    res = strom(address, "quota", "set", "--user", "alice", "--default", "user", "--add", "producer_byte_rate=1",
                config=admin, ok=False)
    assert res.returncode == 1 and "give either --user or --default user, not both" in res.stderr, res.stderr

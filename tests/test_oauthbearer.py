"""SASL/OAUTHBEARER with real clients against the real broker: tokens signed by a key of a
test JWKS (KIP-768), the JWKS served over https and http by a tiny server on 127.0.0.1 or
read from a file, checked with Kafka's config names. confluent-kafka (oauth_cb) and
kafka-python (sasl_oauth_token_provider) produce and consume with signed tokens, and so does
kcat (whose librdkafka build has no OIDC client) through a small librdkafka plugin,
tests/oauth_token_plugin.c, that hands it a token from a file; kcat's unsecured tokens work on a
listener configured for development and are refused by a listener that checks signatures. An expired token, one
signed by an unknown key, and one for another audience or issuer are refused with Kafka's
error challenge and message; a rotated JWKS is fetched again; a token's expiry bounds the
session (KIP-368)."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError
from kafka.net.sasl.oauth import AbstractTokenProvider

import kafka_wire as kw
import kwire
from helpers import consume_to_end, create_topic, produce_all, unique
from test_security import DEBUG_CONNECTIONS, first_error, kcat, pki, round_trip_confluent, \
    round_trip_kafka_python, round_trip_kcat  # noqa: F401 (pki is a fixture)

ISSUER = "https://issuer.strom.test"
AUDIENCE = "strom"
JWT_VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
UNSECURED_VALIDATOR = ("org.apache.kafka.common.security.oauthbearer.internals.unsecured."
                       "OAuthBearerUnsecuredValidatorCallbackHandler")
LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
INVALID_TOKEN = '{"status":"invalid_token"}'
SASL_AUTHENTICATION_FAILED = 58


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    """An RS256 key: its public JWK and JWTs signed by it."""

    def __init__(self, kid: str):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": b64(numbers.n.to_bytes(256, "big")), "e": b64(numbers.e.to_bytes(3, "big"))}

    def token(self, sub: str = "alice", lifetime_s: float = 300, **overrides) -> str:
        now = int(time.time())
        claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": int(now + lifetime_s),
                  "scope": "kafka"}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": self.kid}).encode()) + "." + \
            b64(json.dumps(claims).encode())
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64(signature)


def expiry(token: str) -> float:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


class IdentityProvider:
    """GET /jwks serves the current key set; POST /token answers the client credentials grant
    of the clients in `clients` (id -> secret) with `issue(client_id, scope)`'s token."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.jwks: dict = {"keys": []}
        self.jwks_requests = 0
        self.clients: dict[str, str] = {}
        self.issue = None
        self.token_requests: list[dict] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/jwks":
                    self.send_error(404)
                    return
                provider.jwks_requests += 1
                self._json(provider.jwks)

            def do_POST(self):
                if self.path != "/token":
                    self.send_error(404)
                    return
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                auth = self.headers.get("Authorization", "")
                client_id, _, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                client_id, secret = urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
                provider.token_requests.append({"client_id": client_id, **form,
                                                "content_type": self.headers.get("Content-Type")})
                if form.get("grant_type") != "client_credentials" or provider.clients.get(client_id) != secret:
                    self._json({"error": "invalid_client"}, 401)
                    return
                self._json({"access_token": provider.issue(client_id, form.get("scope")),
                            "token_type": "Bearer", "expires_in": 300})

            def _json(self, value, status: int = 200):
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def publish(self, *keys: SigningKey) -> None:
        self.jwks = {"keys": [k.jwk() for k in keys]}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def keys():
    return {name: SigningKey(name) for name in ("k1", "k2", "rogue")}


@pytest.fixture
def idp_https(pki):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    d = pki["dir"]
    tls.load_cert_chain(d / "server.crt", d / "server.key")
    idp = IdentityProvider(tls)
    yield idp
    idp.close()


@pytest.fixture
def idp_http():
    idp = IdentityProvider()
    yield idp
    idp.close()


def oauth_configs(pki, jwks_url: str, **extra) -> dict[str, str]:
    """SASL_SSL and SASL_PLAINTEXT listeners with OAUTHBEARER and Kafka's JWT validator; the
    login module's JAAS options carry the CA the https JWKS endpoint is trusted by."""
    d = pki["dir"]
    jaas = f'{LOGIN_MODULE} required ssl.truststore.type="PEM" ssl.truststore.location="{d / "ca.crt"}";'
    configs = {
        "listener.security.protocol.map":
            "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(d / "server.pem"),
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": jwks_url,
        "org.apache.kafka.sasl.oauthbearer.allowed.urls": jwks_url,
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": ISSUER,
    }
    for listener in ("sasl_ssl", "sasl_plaintext"):
        configs[f"listener.name.{listener}.oauthbearer.sasl.server.callback.handler.class"] = JWT_VALIDATOR
        configs[f"listener.name.{listener}.oauthbearer.sasl.jaas.config"] = jaas
    configs.update(extra)
    return configs


def confluent_conf(pki, token_source, protocol: str = "SASL_SSL", lifetime_s: float | None = None,
                   extensions: dict | None = None) -> dict:
    """librdkafka with an oauth_cb: `token_source()` gives the token to hand over, valid for
    librdkafka until its `exp` or, given `lifetime_s`, that long (so it sends an expired one);
    `extensions` go into the initial response."""
    def oauth_cb(_config):
        token = token_source()
        lifetime = expiry(token) if lifetime_s is None else time.time() + lifetime_s
        if extensions:
            return token, lifetime, "", extensions
        return token, lifetime
    conf = {"security.protocol": protocol, "sasl.mechanism": "OAUTHBEARER", "oauth_cb": oauth_cb}
    if protocol == "SASL_SSL":
        conf["ssl.ca.location"] = str(pki["dir"] / "ca.crt")
    return conf


class StaticTokens(AbstractTokenProvider):
    def __init__(self, token_source):
        super().__init__()
        self.token_source = token_source

    def token(self):
        return self.token_source()


def kafka_python_conf(pki, token_source) -> dict:
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": StaticTokens(token_source), "ssl_cafile": str(pki["dir"] / "ca.crt")}


# --- signed tokens, every client --------------------------------------------------------------

def test_every_client_produces_and_consumes_with_tokens_signed_by_a_jwks_key(broker_factory, pki, keys, idp_https):
    idp_https.publish(keys["k1"], keys["k2"])
    b = broker_factory(oauth_configs(pki, idp_https.url("/jwks")), env=DEBUG_CONNECTIONS,
                       listeners=["SASL_SSL", "SASL_PLAINTEXT"])
    b.wait_for_log(r"JWKS loaded.*k1.*k2")
    address = b.address("SASL_SSL")
    topic = unique("oauth")
    create_topic(b, topic, 1)
    round_trip_confluent(address, confluent_conf(pki, lambda: keys["k1"].token("alice")), topic, "oauth")
    # The sub claim is the principal.
    b.wait_for_log(r"SASL authenticated.*principal=User:alice")
    topic = unique("oauth-kp")
    create_topic(b, topic, 1)
    round_trip_kafka_python(address, kafka_python_conf(pki, lambda: keys["k2"].token("bob")), topic)
    b.wait_for_log(r"SASL authenticated.*principal=User:bob")
    # SASL_PLAINTEXT takes the same tokens; SASL extensions are accepted, as Kafka's validator does.
    topic = unique("oauth-plaintext")
    create_topic(b, topic, 1)
    round_trip_confluent(b.address("SASL_PLAINTEXT"),
                         confluent_conf(pki, lambda: keys["k1"].token("carol"), "SASL_PLAINTEXT",
                                        extensions={"traceId": "t-42", "logicalCluster": "lc-1"}), topic, "pt")
    b.wait_for_log(r"SASL authenticated.*listener=SASL_PLAINTEXT principal=User:carol")


@pytest.mark.parametrize("case", ["expired", "unknown-key", "wrong-audience", "wrong-issuer", "no-iat"])
def test_bad_tokens_are_refused_with_kafkas_error(broker_factory, pki, keys, idp_https, case, caplog):
    idp_https.publish(keys["k1"])
    b = broker_factory(oauth_configs(pki, idp_https.url("/jwks")), env=DEBUG_CONNECTIONS,
                       listeners=["SASL_SSL"])
    token, reason = {
        # 31 s past expiry: beyond the default 30 s of clock skew.
        "expired": (keys["k1"].token(exp=int(time.time()) - 31), r"is on or after the Expiration Time"),
        "unknown-key": (keys["rogue"].token(), r"Unable to find a suitable verification key"),
        "wrong-audience": (keys["k1"].token(aud="someone-else"), r"doesn't contain an acceptable identifier"),
        "wrong-issuer": (keys["k1"].token(iss="https://evil.test"), r"Issuer \(iss\) claim value"),
        "no-iat": (keys["k1"].token(iat=None), r"No Issued At \(iat\) claim present"),
    }[case]
    address = b.address("SASL_SSL")
    mark = len(b.log())
    err = first_error(confluent_conf(pki, lambda: token, lifetime_s=300), address)
    assert err.code() == KafkaError._AUTHENTICATION, err
    assert INVALID_TOKEN in err.str(), err
    b.wait_for_log(r"SASL authentication failed: \{\"status\":\"invalid_token\"\} \(Could not validate the "
                   r"access token: .*" + reason, since=mark)
    if case == "expired":
        # kafka-python sends %x01 after the error challenge and reports the broker's answer.
        caplog.set_level(logging.WARNING, logger="kafka")
        with pytest.raises(KafkaTimeoutError):
            KafkaConsumer(bootstrap_servers=address, bootstrap_timeout_ms=3000,
                          **kafka_python_conf(pki, lambda: token))
        refusals = [r.getMessage() for r in caplog.records if "SaslAuthenticationFailedError" in r.getMessage()]
        assert refusals and INVALID_TOKEN in refusals[0], caplog.text[-2000:]


def sasl_authenticate(sock, correlation_id: int, token: bytes) -> tuple[int, str | None, bytes, int]:
    """SaslAuthenticate v1: (error code, message, auth bytes, session lifetime ms)."""
    r = kwire.roundtrip(sock, 36, 1, correlation_id, struct.pack(">i", len(token)) + token)
    code = r.i16()
    message = r.string()
    (auth_len,) = struct.unpack(">i", r.take(4))
    auth = r.take(max(auth_len, 0))
    (lifetime,) = struct.unpack(">q", r.take(8))
    return code, message, auth, lifetime


def test_the_error_challenge_and_the_session_lifetime_on_the_wire(broker_factory, pki, keys, idp_https):
    idp_https.publish(keys["k1"])
    b = broker_factory(oauth_configs(pki, idp_https.url("/jwks")), env=DEBUG_CONNECTIONS,
                       listeners=["SASL_PLAINTEXT"])
    port = b.listener_ports["SASL_PLAINTEXT"]
    # A refused token gets the JSON error challenge; the client's %x01 ends it with Kafka's failure.
    with kwire.connect(b.host, port) as sock:
        r = kwire.roundtrip(sock, 17, 1, 1, kwire.enc_string("OAUTHBEARER"))
        assert r.i16() == kw.NONE
        bad = keys["rogue"].token()
        assert sasl_authenticate(sock, 2, f"n,,\x01auth=Bearer {bad}\x01\x01".encode()) == \
            (kw.NONE, None, INVALID_TOKEN.encode(), 0)
        assert sasl_authenticate(sock, 3, b"\x01") == (SASL_AUTHENTICATION_FAILED, INVALID_TOKEN, b"", 0)
        assert kw.closed_by_peer(sock, timeout_s=10)
    # A malformed first message gets Kafka's generic failure.
    with kwire.connect(b.host, port) as sock:
        assert kwire.roundtrip(sock, 17, 1, 1, kwire.enc_string("OAUTHBEARER")).i16() == kw.NONE
        assert sasl_authenticate(sock, 2, b"n,,\x01auth=Basic abc\x01\x01") == \
            (SASL_AUTHENTICATION_FAILED, "Authentication failed during authentication due to invalid "
             "credentials with SASL mechanism OAUTHBEARER", b"", 0)
    # A good token's expiry bounds the session (no connections.max.reauth.ms set), and a
    # request after it closes the connection.
    with kwire.connect(b.host, port) as sock:
        assert kwire.roundtrip(sock, 17, 1, 1, kwire.enc_string("OAUTHBEARER")).i16() == kw.NONE
        token = keys["k1"].token("dave", lifetime_s=2)
        sent_ms = time.time() * 1000
        code, message, auth, lifetime = sasl_authenticate(
            sock, 2, f"n,a=dave,\x01traceId=t-1\x01auth=Bearer {token}\x01\x01".encode())
        assert (code, message, auth) == (kw.NONE, None, b"")
        assert expiry(token) * 1000 - sent_ms - 1000 <= lifetime <= expiry(token) * 1000 - sent_ms + 1000
        assert kwire.api_versions(sock, correlation_id=3).error_code == kw.NONE
        time.sleep(lifetime / 1000 + 0.3)
        mark = len(b.log())
        sock.sendall(kwire.request_frame(18, 0, 4, b""))
        assert kw.closed_by_peer(sock, timeout_s=10)
    b.wait_for_log(r"SASL session of User:dave expired", since=mark)


def test_librdkafka_re_authenticates_before_its_token_expires(broker_factory, pki, keys, idp_https):
    """Tokens living 4 s: librdkafka refreshes at 80% of the lifetime and re-authenticates on
    the same connections (KIP-368), so producing never stops."""
    idp_https.publish(keys["k1"])
    b = broker_factory(oauth_configs(pki, idp_https.url("/jwks"), **{"sasl.oauthbearer.clock.skew.seconds": "0"}),
                       env=DEBUG_CONNECTIONS, listeners=["SASL_SSL"])
    topic = unique("oauth-reauth")
    create_topic(b, topic, 1)
    mark = len(b.log())
    p = Producer({"bootstrap.servers": b.address("SASL_SSL"), "acks": "all", "linger.ms": 5,
                  **confluent_conf(pki, lambda: keys["k1"].token("erin", lifetime_s=4))})
    sent = []
    started = time.monotonic()
    while time.monotonic() - started < 7:
        batch = [{"key": b"r%d" % len(sent), "value": b"reauth-%d" % len(sent)}]
        produce_all(p, topic, batch, timeout_s=30)
        sent += batch
        time.sleep(0.1)
    log = b.log()[mark:]
    assert "SASL authenticated" in log and "sessions=2" in log, "librdkafka did not re-authenticate"
    assert "expired" not in log, "a librdkafka connection was closed for an expired session"
    c = Consumer({"bootstrap.servers": b.address("SASL_SSL"), "group.id": unique("g"), "enable.auto.commit": False,
                  "auto.offset.reset": "error", **confluent_conf(pki, lambda: keys["k1"].token("erin"))})
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): len(sent)}, timeout_s=30)
    finally:
        c.close()
    assert [(m.key(), m.value()) for m in msgs] == [(r["key"], r["value"]) for r in sent]


# --- JWKS over http: refresh and rotation -----------------------------------------------------

def test_a_rotated_jwks_is_fetched_again(broker_factory, pki, keys, idp_http):
    idp_http.publish(keys["k1"])
    b = broker_factory(oauth_configs(pki, idp_http.url("/jwks"),
                                     **{"sasl.oauthbearer.jwks.endpoint.refresh.ms": "3600000"}),
                       env=DEBUG_CONNECTIONS, listeners=["SASL_SSL"])
    address = b.address("SASL_SSL")
    assert idp_http.jwks_requests == 1
    # Rotation: k2 replaces k1. A token naming k2, which the cached set lacks, makes the broker
    # fetch the set at once (the refresh interval is an hour); librdkafka's retry then gets in.
    idp_http.publish(keys["k2"])
    topic = unique("rotated")
    create_topic(b, topic, 1)
    mark = len(b.log())
    round_trip_confluent(address, confluent_conf(pki, lambda: keys["k2"].token("frank")), topic, "rotated")
    b.wait_for_log(r"no JWKS key for a token's key id; refreshing early", since=mark)
    assert idp_http.jwks_requests >= 2
    # k1 is gone from the set: its tokens are refused now.
    err = first_error(confluent_conf(pki, lambda: keys["k1"].token("frank")), address)
    assert err.code() == KafkaError._AUTHENTICATION and INVALID_TOKEN in err.str(), err


def test_the_jwks_is_refreshed_on_its_interval_and_kept_when_the_endpoint_fails(broker_factory, pki, keys,
                                                                                 idp_http):
    idp_http.publish(keys["k1"])
    b = broker_factory(oauth_configs(pki, idp_http.url("/jwks"),
                                     **{"sasl.oauthbearer.jwks.endpoint.refresh.ms": "500",
                                        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": "300"}),
                       env=DEBUG_CONNECTIONS, listeners=["SASL_SSL"])
    address = b.address("SASL_SSL")
    mark = len(b.log())
    idp_http.publish(keys["k1"], keys["k2"])
    b.wait_for_log(r"JWKS loaded.*k1.*k2", since=mark)
    topic = unique("refreshed")
    create_topic(b, topic, 1)
    round_trip_confluent(address, confluent_conf(pki, lambda: keys["k2"].token("gina")), topic, "refreshed")
    # The endpoint goes away: refreshes fail, the cached keys stay in use.
    mark = len(b.log())
    idp_http.close()
    b.wait_for_log(r"JWKS refresh failed; keeping the keys in use", since=mark)
    topic = unique("kept")
    create_topic(b, topic, 1)
    round_trip_confluent(address, confluent_conf(pki, lambda: keys["k1"].token("gina")), topic, "kept")


# --- configuration: never unsecured by default ------------------------------------------------

@pytest.fixture(scope="session")
def token_plugin(tmp_path_factory):
    """tests/oauth_token_plugin.c built as a librdkafka plugin: kcat's librdkafka has no OIDC
    client, so the plugin hands it a signed token from the file in sasl.oauthbearer.config."""
    out = tmp_path_factory.mktemp("plugin") / "oauth_token_plugin.so"
    source = Path(__file__).with_name("oauth_token_plugin.c")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out), str(source)], check=True)
    return out


def kcat_signed(pki, token_plugin, token_file: Path, token: str, principal: str) -> dict:
    token_file.write_text(f"{int(expiry(token) * 1000)} {principal} {token}\n")
    return {"security.protocol": "SASL_SSL", "sasl.mechanisms": "OAUTHBEARER",
            "plugin.library.paths": str(token_plugin), "sasl.oauthbearer.config": str(token_file),
            "ssl.ca.location": str(pki["dir"] / "ca.crt")}


def test_kcat_produces_and_consumes_with_a_signed_token(broker_factory, pki, keys, idp_https, token_plugin,
                                                        tmp_path):
    idp_https.publish(keys["k1"])
    b = broker_factory(oauth_configs(pki, idp_https.url("/jwks")), env=DEBUG_CONNECTIONS, listeners=["SASL_SSL"])
    b.wait_for_log(r"JWKS loaded.*k1")
    address = b.address("SASL_SSL")
    topic = unique("oauth-kcat")
    create_topic(b, topic, 1)
    token_file = tmp_path / "token"
    round_trip_kcat(address, kcat_signed(pki, token_plugin, token_file, keys["k1"].token("kc-user"), "kc-user"), topic)
    b.wait_for_log(r"SASL authenticated.*principal=User:kc-user")
    # An expired token, and one signed by a key outside the JWKS, are refused with Kafka's challenge.
    for token in (keys["k1"].token("kc-user", iat=int(time.time()) - 600, exp=int(time.time()) - 300),
                  keys["rogue"].token("kc-user")):
        conf = kcat_signed(pki, token_plugin, token_file, token, "kc-user")
        # librdkafka refuses to hand over a token it knows to be expired: give it a future lifetime.
        token_file.write_text(f"{int((time.time() + 300) * 1000)} kc-user {token}\n")
        res = kcat(address, conf, "-L", "-m", "5")
        assert res.returncode != 0 and INVALID_TOKEN.encode() in res.stderr, res


def development_broker(broker_factory):
    """A SASL_PLAINTEXT listener with Kafka's unsecured validator, requiring the scope `kafka`."""
    return broker_factory({
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": UNSECURED_VALIDATOR,
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
            f'{LOGIN_MODULE} required unsecuredValidatorRequiredScope="kafka";',
    }, env=DEBUG_CONNECTIONS, listeners=["SASL_PLAINTEXT"])


def test_unsigned_tokens_only_on_a_listener_configured_for_development(broker_factory, pki, keys, idp_https):
    dev = development_broker(broker_factory)
    dev.wait_for_log(r"OAUTHBEARER accepts unsigned tokens")
    address = dev.address("SASL_PLAINTEXT")
    unsecured = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "OAUTHBEARER",
                 "enable.sasl.oauthbearer.unsecure.jwt": "true",
                 "sasl.oauthbearer.config": "principal=dev-user scope=kafka"}
    topic = unique("unsecured")
    create_topic(dev, topic, 1)
    round_trip_kcat(address, unsecured, topic)
    dev.wait_for_log(r"SASL authenticated.*principal=User:dev-user")
    # The required scope is checked: Kafka's insufficient_scope challenge.
    res = kcat(address, {**unsecured, "sasl.oauthbearer.config": "principal=dev-user scope=other"}, "-L", "-m", "5")
    assert res.returncode != 0 and b'{"status":"insufficient_scope", "scope":"[kafka]"}' in res.stderr, res
    # A listener with Kafka's JWT validator refuses the same unsigned token.
    idp_https.publish(keys["k1"])
    secure = broker_factory(oauth_configs(pki, idp_https.url("/jwks")), env=DEBUG_CONNECTIONS,
                            listeners=["SASL_PLAINTEXT"])
    mark = len(secure.log())
    res = kcat(secure.address("SASL_PLAINTEXT"), unsecured, "-L", "-m", "5")
    assert res.returncode != 0 and INVALID_TOKEN.encode() in res.stderr, res
    secure.wait_for_log(r"JWS header cannot be read", since=mark)


# --- the strom CLI ---------------------------------------------------------------------------

def test_the_cli_gets_tokens_by_client_credentials_and_makes_unsecured_ones(broker_factory, pki, keys, idp_https,
                                                                              tmp_path):
    from test_cli_security import round_trip, strom
    idp_https.publish(keys["k1"])
    idp_https.clients = {"cli-app": "s3cret: &+"}
    issued = {"key": keys["k1"]}
    idp_https.issue = lambda client_id, scope: issued["key"].token(sub=client_id, scope=scope)
    b = broker_factory(oauth_configs(pki, idp_https.url("/jwks")), env=DEBUG_CONNECTIONS,
                       listeners=["SASL_SSL"])
    address = b.address("SASL_SSL")
    # librdkafka's names; the https token endpoint is trusted through ssl.ca.location.
    oidc = {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.token.endpoint.url": idp_https.url("/token"),
            "sasl.oauthbearer.client.id": "cli-app", "sasl.oauthbearer.client.secret": "s3cret: &+",
            "sasl.oauthbearer.scope": "kafka", "ssl.ca.location": str(pki["dir"] / "ca.crt")}
    round_trip(address, None, oidc)
    b.wait_for_log(r"SASL authenticated.*principal=User:cli-app")
    # One token per command, shared by its connections (bootstrap, partition leader, group).
    assert len(idp_https.token_requests) == 4, idp_https.token_requests
    assert idp_https.token_requests[0] == {"client_id": "cli-app", "grant_type": "client_credentials",
                                           "scope": "kafka",
                                           "content_type": "application/x-www-form-urlencoded"}
    # Kafka's names: the endpoint as a config, the client in the login module's options.
    java = {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
            "sasl.oauthbearer.token.endpoint.url": idp_https.url("/token"),
            "sasl.jaas.config": f'{LOGIN_MODULE} required clientId="cli-app" clientSecret="s3cret: &+";',
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(pki["dir"] / "ca.crt")}
    listed = strom(address, "topic", "list", extra=java).stdout.splitlines()
    assert listed[0].split() == ["NAME", "PARTITIONS", "REPLICAS"] and listed[1].startswith("cli-sec-"), listed
    assert idp_https.token_requests[4] == {"client_id": "cli-app", "grant_type": "client_credentials",
                                           "content_type": "application/x-www-form-urlencoded"}
    # A wrong secret: the endpoint's 401, and nothing sent to the broker.
    res = strom(address, "topic", "list", extra={**oidc, "sasl.oauthbearer.client.secret": "nope"}, ok=False)
    assert res.returncode == 1 and "HTTP status 401" in res.stderr, res.stderr
    # A token the broker refuses (signed by a key outside its JWKS): Kafka's error challenge.
    issued["key"] = keys["rogue"]
    res = strom(address, "topic", "list", extra=oidc, ok=False)
    assert res.returncode == 1 and INVALID_TOKEN in res.stderr, res.stderr

    # Unsecured tokens for a listener configured for development (librdkafka's sasl.oauthbearer.config).
    dev = development_broker(broker_factory)
    unsecured = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                 "sasl.oauthbearer.config": "principal=dev-user scope=kafka"}
    round_trip(dev.address("SASL_PLAINTEXT"), None, unsecured)
    dev.wait_for_log(r"SASL authenticated.*principal=User:dev-user")
    res = strom(dev.address("SASL_PLAINTEXT"), "topic", "list",
                extra={**unsecured, "sasl.oauthbearer.config": "principal=dev-user scope=other"}, ok=False)
    assert res.returncode == 1 and '{"status":"insufficient_scope", "scope":"[kafka]"}' in res.stderr, res.stderr


@pytest.mark.parametrize("case", ["no-validator", "url-not-allowed", "missing-file", "bad-protocol"])
def test_a_listener_with_an_incomplete_oauth_config_does_not_start(tmp_path, pki, case):
    from conftest import Broker, BrokerError
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    configs = oauth_configs(pki, f"file://{jwks}")
    if case == "no-validator":
        for listener in ("sasl_ssl", "sasl_plaintext"):
            del configs[f"listener.name.{listener}.oauthbearer.sasl.server.callback.handler.class"]
        expected = r"listener SASL_PLAINTEXT enables OAUTHBEARER: name .*OAuthBearerValidatorCallbackHandler"
    elif case == "url-not-allowed":
        del configs["org.apache.kafka.sasl.oauthbearer.allowed.urls"]
        expected = (rf"file://{jwks} is not allowed\. Update system property "
                    r"'org\.apache\.kafka\.sasl\.oauthbearer\.allowed\.urls' to allow")
    elif case == "missing-file":
        url = f"file://{tmp_path / 'missing.json'}"
        configs.update({"sasl.oauthbearer.jwks.endpoint.url": url,
                        "org.apache.kafka.sasl.oauthbearer.allowed.urls": url})
        expected = r"contains a file \(.*missing.json\) that doesn't exist"
    else:
        url = "ftp://127.0.0.1/jwks"
        configs.update({"sasl.oauthbearer.jwks.endpoint.url": url,
                        "org.apache.kafka.sasl.oauthbearer.allowed.urls": url})
        expected = r"contains an invalid protocol \(ftp\)"
    b = Broker(tmp_path / "b", configs, listeners=["SASL_PLAINTEXT"])
    with pytest.raises(BrokerError, match=expected):
        b.start(timeout_s=15)


def test_a_jwks_file_is_read_at_start(broker_factory, pki, keys, tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [keys["k1"].jwk()]}))
    url = f"file://{jwks}"
    b = broker_factory(oauth_configs(pki, url), env=DEBUG_CONNECTIONS, listeners=["SASL_SSL"])
    topic = unique("file-jwks")
    create_topic(b, topic, 1)
    round_trip_confluent(b.address("SASL_SSL"), confluent_conf(pki, lambda: keys["k1"].token("hank")), topic, "f")
    err = first_error(confluent_conf(pki, lambda: keys["k2"].token("hank")), b.address("SASL_SSL"))
    assert err.code() == KafkaError._AUTHENTICATION and INVALID_TOKEN in err.str(), err

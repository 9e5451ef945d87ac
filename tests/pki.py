"""Test certificates made with `cryptography`: a CA, server certificates for 127.0.0.1 and
localhost, client certificates with chosen subjects, and PEM files laid out as Kafka's PEM
stores want them (one file with the private key and the certificate chain)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(**attrs: str) -> x509.Name:
    oids = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME,
            "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}
    # DER order: country first, common name last (RFC 2253 prints it reversed).
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Issued:
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path, Path]:
        """`stem.crt`, `stem.key` and `stem.pem` (key and certificate, Kafka's PEM keystore)."""
        crt, key, both = directory / f"{stem}.crt", directory / f"{stem}.key", directory / f"{stem}.pem"
        crt.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        both.write_bytes(self.key_pem + self.cert_pem)
        return crt, key, both


class CertificateAuthority:
    def __init__(self, common_name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.name = _name(O="strom tests", CN=common_name)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, subject: x509.Name, server: bool, client_too: bool = False,
              names_only: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(self.name)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                       + ([ExtendedKeyUsageOID.CLIENT_AUTH] if server and client_too else [])),
                       critical=False))
        if server:
            names = [x509.DNSName("localhost")]
            if not names_only:
                names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def server(self, client_too: bool = False, names_only: bool = False) -> Issued:
        """For 127.0.0.1 and localhost (`names_only`: localhost alone); `client_too`: usable as a
        client certificate as well."""
        return self.issue(_name(O="strom tests", CN="localhost"), server=True, client_too=client_too,
                          names_only=names_only)

    def client(self, **subject: str) -> Issued:
        return self.issue(_name(**subject), server=False)

"""TLS: `serve --tls-cert --tls-key` talks HTTPS, marks its cookies Secure, sends HSTS, and refuses plain HTTP."""
from __future__ import annotations

import ipaddress
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from server_helpers import ServerProcess, make_store

from breachwatch.store.db import connect


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "breachwatch test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "server.crt", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def test_serve_speaks_https_only(tmp_path):
    db, keys = make_store(tmp_path)
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    server = ServerProcess(db, "--tls-cert", str(cert), "--tls-key", str(key), "--detect-interval", "0", tls=trust)
    try:
        assert server.url.startswith("https://")
        with httpx.Client(base_url=server.url, verify=trust,
                          headers={"Authorization": f"Bearer {keys['all']}"}) as c:
            r = c.post("/v1/events", content=b'{"event_id": "tls-1", "time": "2025-06-01T00:00:00Z", '
                       b'"kind": "login", "principal_id": "p1", "principal_type": "customer"}\n',
                       headers={"Content-Type": "application/x-ndjson"})
            assert r.status_code == 202 and r.json()["loaded"] == 1, r.text
            assert r.headers["strict-transport-security"].startswith("max-age=")
            assert c.get("/v1/health").status_code == 200
            login = c.get("/login")
            assert login.status_code == 200
            assert "secure" in login.headers["set-cookie"].lower()  # the login CSRF cookie only goes over TLS
            assert c.get("/v1/admin/audit", params={"limit": 10}).status_code == 200
        # A client that does not trust the certificate stops at the handshake: it is real TLS.
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/healthz", timeout=5)
        # Plain HTTP to the same port gets no HTTP answer at all, so nothing is ever served in clear.
        with pytest.raises(httpx.TransportError):
            httpx.post(f"http://127.0.0.1:{server.port}/v1/events", content=b'{"event_id": "clear-1"}\n',
                       headers={"Authorization": f"Bearer {keys['ingest']}"}, timeout=5)
        with httpx.Client(base_url=server.url, verify=trust,
                          headers={"Authorization": f"Bearer {keys['analyst']}"}) as c:
            assert c.get("/v1/health").json()["status"] in ("ok", "degraded")
    finally:
        server.stop()
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM events WHERE event_id = 'tls-1'").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM quarantine WHERE raw LIKE '%clear-1%'").fetchone()[0] == 0
    con.close()

"""A small retailer for the key audit: three signing keys, an engineer who left
with a copy of one, his forged tokens, and the places the key was left lying.

Imported by the test modules of this folder (pytest puts the folder on sys.path).
"""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization
from cli_runner import CliResult, run_group_cli
from joserfc.jwk import ECKey, RSAKey

UTC = timezone.utc
AUDIT_NOW = datetime(2025, 8, 1, tzinfo=UTC)
LEFT = datetime(2025, 1, 10, 18, 30, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


class Retailer:
    def __init__(self) -> None:
        self.web = RSAKey.generate_key(2048, parameters={"kid": "k-2019-07"})
        self.app = ECKey.generate_key("P-256", parameters={"kid": "k-2022-03"})
        self.back_office = RSAKey.generate_key(2048, parameters={"kid": "k-bo-2021-01"})
        self.stray = RSAKey.generate_key(2048, parameters={"kid": "nobody-knows"})

    def write_jwks(self, path: Path) -> Path:
        keys = [self.web, self.app, self.back_office]
        path.write_bytes(orjson.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
        return path

    @staticmethod
    def write_inventory(path: Path) -> Path:
        path.write_text(
            "kid,owner,holders,created,rotated,retired,status,location\n"
            "k-2019-07,emp-30004,emp-30004|emp-30001,2019-07-15,,,active,file\n"
            "k-2022-03,team-auth,team-auth,2022-03-02,2025-06-20,,active,kms\n"
            "k-bo-2021-01,team-platform,team-platform|emp-30002,2021-01-11,2025-07-01,,active,kms\n")
        return path

    @staticmethod
    def write_hr(path: Path) -> Path:
        path.write_text("employee_id,name,termination_date\n"
                        "emp-30001,Kim,\n"
                        "emp-30002,Lee,2025-03-31\n"  # left, but k-bo-2021-01 was rotated after
                        "emp-30004,Park,2025-01-10\n")
        return path

    def events(self) -> list[dict]:
        ev: list[dict] = []
        base = datetime(2025, 3, 1, tzinfo=UTC)
        ev.append({"event_id": "kc-web", "time": "2019-07-15T02:00:00Z", "kind": "key_created",
                   "key_id": "k-2019-07", "owner_id": "emp-30004"})
        ev.append({"event_id": "off-30004", "time": iso(LEFT), "kind": "principal_offboarded",
                   "principal_id": "emp-30004", "principal_type": "employee"})
        # Members log in and read their own data: each token issued, then used.
        for i in range(40):
            t = base + timedelta(hours=i)
            kid = "k-2019-07" if i % 2 else "k-2022-03"
            member = str(1_000_000 + i)
            tok = f"tok-{i:04d}"
            common = {"principal_id": member, "principal_type": "customer", "token_id": tok, "key_id": kid,
                      "token_issued_at": iso(t), "token_expires_at": iso(t + timedelta(minutes=30))}
            ev.append({"event_id": f"iss-{i}", "time": iso(t), "kind": "token_issued", **common})
            ev.append({"event_id": f"acc-{i}", "time": iso(t + timedelta(minutes=1)), "kind": "access",
                       "endpoint": "GET /api/me/addresses", "src_ip": "211.234.10.5", "src_country": "KR",
                       "subject_ids": [member], "fields": ["name", "phone", "address"], **common})
        # A service token that lives 30 days: beyond a one-hour policy.
        t = base + timedelta(days=2)
        ev.append({"event_id": "iss-svc", "time": iso(t), "kind": "token_issued", "principal_id": "svc-shipping-label",
                   "principal_type": "service", "token_id": "tok-svc", "key_id": "k-bo-2021-01",
                   "token_issued_at": iso(t), "token_expires_at": iso(t + timedelta(days=30))})
        # From April, forged tokens signed with the departed engineer's copy of k-2019-07: one fresh
        # token per member id, walked in order, from overseas.
        start = datetime(2025, 4, 7, tzinfo=UTC)
        for j in range(25):
            t = start + timedelta(minutes=7 * j)
            member = str(2_000_400 + j)
            ev.append({"event_id": f"fx-{j}", "time": iso(t), "kind": "access", "principal_id": member,
                       "principal_type": "customer", "token_id": f"forged-{j:03d}", "key_id": "k-2019-07",
                       "token_issued_at": iso(t - timedelta(seconds=5)),
                       "token_expires_at": iso(t + timedelta(minutes=30)),
                       "endpoint": "GET /api/me/addresses", "src_ip": f"45.76.{j % 3}.{10 + j}",
                       "src_country": ["SG", "JP", "US"][j % 3],
                       "subject_ids": [member, f"nm-{j}"], "fields": ["name", "phone", "address"]})
        return ev

    def private_pem(self, key) -> bytes:
        return key.as_pem(private=True)

    def write_laptop_backup(self, root: Path) -> Path:
        """Where copies end up: a backup folder with the web key, a stray key, and an .env with a cloud key."""
        d = root / "laptop-backup"
        (d / "keys").mkdir(parents=True)
        (d / "keys" / "jwt-signing.pem").write_bytes(self.private_pem(self.web))
        (d / "keys" / "old-thing.key").write_bytes(
            self.stray.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                                 serialization.NoEncryption()))
        (d / ".env").write_text("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLQ\nJWT_SECRET=c2VjcmV0LXNlY3JldC1zZWNyZXQ\n")
        (d / "notes.md").write_text("nothing to see: -----BEGIN PUBLIC KEY----- is fine to share\n")
        return d

    def make_repo_with_history(self, root: Path) -> Path:
        """A repository where the app key was committed as a JWK, then deleted in the next commit."""
        repo = root / "auth-service"
        repo.mkdir()

        def git(*args: str) -> None:
            subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                           env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                                "HOME": str(root), "PATH": "/usr/bin:/bin"})
        git("init", "-q")
        (repo / "config").mkdir()
        (repo / "config" / "signing.json").write_bytes(orjson.dumps({"keys": [self.app.as_dict(private=True)]}))
        (repo / "README.md").write_text("auth service\n")
        git("add", "-A")
        git("commit", "-q", "-m", "add signing key")
        (repo / "config" / "signing.json").unlink()
        git("add", "-A")
        git("commit", "-q", "-m", "remove signing key")
        return repo


def run_cli(*args: str) -> CliResult:
    """Run `breachwatch ARGS` in this process (only this area's command group is loaded)."""
    return run_group_cli(("keys",), *args)

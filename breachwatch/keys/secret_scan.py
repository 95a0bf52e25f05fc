"""Finding private key material where it should not be: a folder, a laptop
backup, a repository and (optionally) its whole git history.

What is looked for: PEM private keys (PKCS#1, PKCS#8, SEC1, OpenSSH, encrypted,
PGP), base64-wrapped PEM (as in Kubernetes secrets), JWKs with a private `d`,
PKCS#12/Java keystores, PuTTY keys, and the usual cloud and SaaS credentials
(AWS, GitHub, Slack, Google, Stripe) plus `*_SECRET=`-style signing secrets.
A private key is matched to the inventory by its public key's RFC 7638
thumbprint, so a finding can say "the private half of login-2019 is in
~/backup/keys/". Findings never contain the secret: only where it is, what
kind it is, and a short SHA-256 fingerprint to tell copies apart.
"""
from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

MAX_FILE_BYTES = 5 << 20
SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", ".pytest_cache"}
KEYSTORE_SUFFIXES = {".p12": "PKCS#12 keystore", ".pfx": "PKCS#12 keystore", ".jks": "Java keystore",
                     ".keystore": "Java keystore"}

_PEM = re.compile(rb"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
                  rb"[\s\S]{0,16384}?-----END \1-----")
_B64_PEM = re.compile(rb"LS0tLS1CRUdJTi[A-Za-z0-9+/=\s]{40,20000}")  # base64 of "-----BEGIN"
_JWK_D = re.compile(rb'\{[^{}]{0,8192}"d"\s*:\s*"[A-Za-z0-9_-]{16,}"[^{}]{0,8192}\}')
_TOKENS: list[tuple[str, re.Pattern[bytes], str]] = [
    ("aws_access_key", re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "high"),
    ("github_token", re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"), "high"),
    ("slack_token", re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), "high"),
    ("google_api_key", re.compile(rb"\bAIza[0-9A-Za-z_-]{35}\b"), "high"),
    ("stripe_live_key", re.compile(rb"\b[sr]k_live_[0-9a-zA-Z]{24,}\b"), "high"),
    ("putty_private_key", re.compile(rb"PuTTY-User-Key-File-\d: "), "high"),
    ("signing_secret", re.compile(rb"(?i)\b[A-Z0-9_]*(?:JWT|SIGNING|TOKEN|HMAC)[A-Z0-9_]*(?:SECRET|KEY)\s*[:=]\s*"
                                  rb"['\"]?[A-Za-z0-9+/=_-]{16,}"), "medium"),
]


@dataclass(frozen=True)
class SecretHit:
    kind: str             # pem_private_key, jwk_private_key, keystore, aws_access_key, ...
    location: str         # path:line, or path@blob for history
    fingerprint: str      # sha256 of the secret, first 16 hex: tells copies apart, reveals nothing
    severity: str
    thumbprint: str | None = None   # RFC 7638 thumbprint of the public half, for private keys
    kid_hint: str | None = None     # a kid written next to the key (JWK "kid")
    in_history_only: bool = False
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("kind", "location", "fingerprint", "severity", "thumbprint",
                                              "kid_hint", "in_history_only", "detail")}


def _fp(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:16]


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _pem_thumbprint(pem: bytes) -> tuple[str | None, str]:
    """Thumbprint of the public half of a PEM private key, or None with why it could not be read."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

    try:
        if b"OPENSSH PRIVATE KEY" in pem:
            key: Any = load_ssh_private_key(pem, password=None)
        else:
            key = load_pem_private_key(pem, password=None)
    except TypeError:
        return None, "encrypted (passphrase-protected)"
    except Exception as e:  # noqa: BLE001 - an unreadable key is still a finding
        return None, f"unreadable ({type(e).__name__})"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    pub = key.public_key()
    cls = {rsa.RSAPublicKey: RSAKey, ec.EllipticCurvePublicKey: ECKey, ed25519.Ed25519PublicKey: OKPKey,
           ed448.Ed448PublicKey: OKPKey}
    for typ, jwk_cls in cls.items():
        if isinstance(pub, typ):
            pem_pub = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            try:
                return jwk_cls.import_key(pem_pub).thumbprint(), ""
            except Exception as e:  # noqa: BLE001 - e.g. a curve JOSE has no name for
                return None, f"no JWK form ({type(e).__name__})"
    return None, f"no JWK form ({type(pub).__name__})"


def _jwk_thumbprint(jwk: dict[str, Any]) -> str | None:
    from joserfc.jwk import JWKRegistry
    public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
    try:
        return JWKRegistry.import_key(public).thumbprint()
    except Exception:  # noqa: BLE001 - a half-written JWK is still a leaked secret
        return None


def _walk_json(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        if "kty" in obj and isinstance(obj.get("d"), str) and obj["d"]:
            yield obj
        for v in obj.values():
            yield from _walk_json(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_json(v)


def scan_bytes(data: bytes, where: str, history: bool = False) -> list[SecretHit]:
    hits: list[SecretHit] = []

    def loc(offset: int) -> str:
        return where if history else f"{where}:{_line(data, offset)}"

    for m in _PEM.finditer(data):
        thumb, why = _pem_thumbprint(m.group(0))
        hits.append(SecretHit("pem_private_key", loc(m.start()), _fp(m.group(0)), "high", thumb, None, history,
                              f"{m.group(1).decode()}{'; ' + why if why else ''}"))
    for m in _B64_PEM.finditer(data):
        try:
            decoded = base64.b64decode(re.sub(rb"\s", b"", m.group(0)), validate=False)
        except ValueError:
            continue
        for pm in _PEM.finditer(decoded):
            thumb, why = _pem_thumbprint(pm.group(0))
            hits.append(SecretHit("pem_private_key", loc(m.start()), _fp(pm.group(0)), "high", thumb, None, history,
                                  f"base64-wrapped {pm.group(1).decode()}{'; ' + why if why else ''}"))
    seen_jwk: set[str] = set()
    try:
        whole = orjson.loads(data) if data.lstrip()[:1] in (b"{", b"[") else None
    except orjson.JSONDecodeError:
        whole = None
    candidates: list[tuple[dict[str, Any], int]] = []
    if whole is not None:
        candidates = [(j, 0) for j in _walk_json(whole)]
    else:
        for m in _JWK_D.finditer(data):
            try:
                obj = orjson.loads(m.group(0))
            except orjson.JSONDecodeError:
                continue
            candidates += [(j, m.start()) for j in _walk_json(obj)]
    for jwk, offset in candidates:
        fp = _fp(str(jwk["d"]).encode())
        if fp in seen_jwk:
            continue
        seen_jwk.add(fp)
        if whole is not None:
            at = data.find(str(jwk["d"]).encode())
            offset = max(at, 0)
        kind = "jwk_symmetric_key" if jwk.get("kty") == "oct" else "jwk_private_key"
        hits.append(SecretHit(kind, loc(offset), fp, "high", _jwk_thumbprint(jwk),
                              str(jwk["kid"]) if jwk.get("kid") else None, history, f"kty {jwk.get('kty')}"))
    for kind, pattern, severity in _TOKENS:
        for m in pattern.finditer(data):
            hits.append(SecretHit(kind, loc(m.start()), _fp(m.group(0)), severity, None, None, history))
    return hits


def _is_binary(head: bytes) -> bool:
    return b"\x00" in head


def scan_path(root: str | Path) -> tuple[list[SecretHit], int]:
    """Scan a file or a folder tree; returns hits and the number of files read."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: nothing to scan there. Fix: pass an existing folder or file to --scan.")
    files = [root] if root.is_file() else _files(root)
    hits: list[SecretHit] = []
    read = 0
    for f in files:
        try:
            size = f.stat().st_size
        except OSError:
            continue
        label = str(f)
        kind = KEYSTORE_SUFFIXES.get(f.suffix.lower())
        if kind:
            data = f.read_bytes()[:MAX_FILE_BYTES]
            hits.append(SecretHit("keystore", label, _fp(data), "high", detail=kind))
            read += 1
            continue
        if size > MAX_FILE_BYTES or size == 0:
            continue
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if _is_binary(data[:8192]):
            continue
        read += 1
        hits += scan_bytes(data, label)
    return hits, read


def _files(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        if any(part in SKIP_DIRS for part in p.relative_to(root).parts):
            continue
        if p.is_file() and not p.is_symlink():
            out.append(p)
    return out


def scan_git_history(repo: str | Path) -> tuple[list[SecretHit], int]:
    """Scan every blob reachable from any ref, so a key deleted in a later commit is still found.

    Hits already present in the working tree are reported there by `scan_path`; the ones
    found only in history are marked `in_history_only`.
    """
    repo = Path(repo)
    if not (repo / ".git").exists():
        raise ValueError(f"{repo}: not a git repository. Fix: pass the repository's top folder to --scan-history.")
    try:
        listing = subprocess.run(["git", "-C", str(repo), "rev-list", "--all", "--objects"],
                                 capture_output=True, check=True, timeout=600).stdout.decode("utf-8", "replace")
    except (subprocess.CalledProcessError, OSError) as e:
        err = getattr(e, "stderr", b"") or b""
        raise ValueError(f"{repo}: git cannot list its history ({err.decode(errors='replace').strip() or e}). "
                         "Fix: check that git is installed and the repository is readable.") from e
    blobs: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, path = line.partition(" ")
        if path and sha not in blobs:
            blobs[sha] = path
    if not blobs:
        return [], 0
    types = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
                           input="\n".join(blobs).encode(), capture_output=True, check=True, timeout=600).stdout
    wanted = [sha for sha, typ, size in (ln.split() for ln in types.decode().splitlines())
              if typ == "blob" and 0 < int(size) <= MAX_FILE_BYTES]
    hits: list[SecretHit] = []
    proc = subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    proc.stdin.write("\n".join(wanted).encode() + b"\n")
    proc.stdin.close()
    for _ in wanted:
        header = proc.stdout.readline().split()
        sha, size = header[0].decode(), int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)
        path = blobs[sha]
        kind = KEYSTORE_SUFFIXES.get(Path(path).suffix.lower())
        if kind:
            hits.append(SecretHit("keystore", f"{repo}/{path}@{sha[:12]}", _fp(data), "high", None, None, True, kind))
        elif not _is_binary(data[:8192]):
            hits += scan_bytes(data, f"{repo}/{path}@{sha[:12]}", history=True)
    proc.wait(timeout=60)
    return hits, len(wanted)

"""The key for keyed pseudonyms and format-preserving tokens, from configuration.

The key comes from an environment variable or a file (never the command line,
where it would land in shell history and process listings), and must be at
least 16 bytes. Whitespace around it is ignored so a trailing newline in a key
file does not change every token.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_KEY_ENV = "BREACHWATCH_DEID_KEY"
MIN_KEY_BYTES = 16


def load_key(*, env: str | None = None, file: str | None = None) -> bytes | None:
    """The key from `file`, else from `env` (default BREACHWATCH_DEID_KEY); None when neither is set."""
    if file:
        p = Path(file)
        try:
            raw = p.read_bytes().strip()
        except OSError as e:
            raise ValueError(f"{file}: cannot read the key file ({e.strerror}). Fix: give a readable file.") from e
        source = f"key file {file}"
    else:
        name = env or DEFAULT_KEY_ENV
        value = os.environ.get(name)
        if value is None:
            if env:
                raise ValueError(f"environment variable {name} is not set. Fix: export {name}=<secret of 16+ bytes>.")
            return None
        raw = value.strip().encode()
        source = f"environment variable {name}"
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"the key in {source} is {len(raw)} bytes. Fix: use at least {MIN_KEY_BYTES} random bytes, "
                         "e.g. from 'openssl rand -hex 32'.")
    return raw

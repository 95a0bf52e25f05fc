"""Password hashing for dashboard accounts: argon2id, a memory-hard function.

A stolen store should not turn into a list of passwords: argon2id makes every
guess cost tens of megabytes of memory, which is what defeats GPU cracking.
"""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12

# 64 MiB, 3 passes: the parameters RFC 9106 recommends for memory-constrained hosts.
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2)
# Verified when the account does not exist, so a missing user costs as much as a wrong password.
_DUMMY = _hasher.hash("breachwatch-no-such-user")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password has {len(password)} characters; at least {MIN_LENGTH} are required. "
                         "Fix: choose a longer passphrase.")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False

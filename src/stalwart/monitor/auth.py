"""API keys: high-entropy random tokens shown once, stored as their SHA-256 only, with one scope
per key and project.

A key reads ``sw_<id>_<secret>``: the short ``id`` finds the row (it is not secret and is what
logs and listings show), the hash of the whole token is compared in constant time. The
``admin`` scope includes ``ingest`` and ``read``; ``ingest`` and ``read`` are separate, so a
dashboard's read key cannot write and a producer's ingest key cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["SCOPES", "new_token", "token_hash", "token_id", "same_hash", "allows"]

SCOPES = ("ingest", "read", "admin")
_ID_CHARS = 10


def new_token() -> tuple[str, str]:
    """A fresh ``(token, id)``: 256 random bits, prefixed by a 10-character lookup id."""
    ident = secrets.token_hex(_ID_CHARS // 2)
    return f"sw_{ident}_{secrets.token_urlsafe(32)}", ident


def token_id(token: str) -> str | None:
    """The lookup id of a well-formed token, None for anything else."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "sw" or len(parts[1]) != _ID_CHARS or not parts[2]:
        return None
    if parts[1].strip("0123456789abcdef"):  # ids are hex: anything else is never looked up
        return None
    return parts[1]


def token_hash(token: str) -> str:
    """SHA-256 of the token (hex): enough for a 256-bit random secret, which needs no slow hash."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_hash(stored: str, token: str) -> bool:
    """Whether ``token`` hashes to ``stored``, compared in constant time."""
    return hmac.compare_digest(stored.encode("ascii"), token_hash(token).encode("ascii"))


def allows(scope: str, needed: str) -> bool:
    """Whether a key of ``scope`` may do what needs ``needed``.

    >>> allows("admin", "ingest"), allows("read", "ingest"), allows("ingest", "read")
    (True, False, False)
    """
    return scope == needed or scope == "admin"

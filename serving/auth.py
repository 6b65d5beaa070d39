"""API keys with roles, checked before any endpoint runs (an ASGI middleware).

No key or an unknown key: 401. A known key whose role may not use the endpoint: 403. Keys come
from ``CRISK_API_KEYS`` (``role:key,role:key``) or a file named by ``CRISK_API_KEYS_FILE``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from serving.middleware import send_json

__all__ = ["ENDPOINT_ROLES", "ROLES", "ApiKeyMiddleware", "parse_api_keys"]

ROLES = ("scorer", "officer", "auditor", "admin")

# Which roles may call which endpoint; anything not listed is open (health, metrics, docs).
ENDPOINT_ROLES: dict[str, frozenset[str]] = {
    "/score": frozenset({"scorer", "admin"}),
    "/feedback": frozenset({"officer", "admin"}),
    "/explain": frozenset({"auditor", "admin"}),
}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def parse_api_keys(text: str | None, file: Path | None = None) -> dict[str, str]:
    """key -> role. Raises ValueError naming the bad entry."""
    if not text and file is not None:
        text = ",".join(line.strip() for line in file.read_text().splitlines() if line.strip())
    keys: dict[str, str] = {}
    for position, entry in enumerate((text or "").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        role, sep, key = entry.partition(":")
        if not sep or not key:
            raise ValueError(f"CRISK_API_KEYS entry {position}: expected role:key")
        if role not in ROLES:
            raise ValueError(
                f"CRISK_API_KEYS entry {position}: unknown role {role!r}; roles are {ROLES}"
            )
        keys[key] = role
    return keys


class ApiKeyMiddleware:
    """Bearer-key authentication and role authorisation for the protected endpoints."""

    def __init__(
        self, app: Callable[..., Awaitable[None]], keys: Callable[[], Mapping[str, str]]
    ) -> None:
        self.app = app
        self._load_keys = keys
        self._keys: dict[str, str] | None = None

    @property
    def keys(self) -> dict[str, str]:
        # Loaded on first use, in the worker, from the settings the service was started with.
        if self._keys is None:
            self._keys = dict(self._load_keys())
        return self._keys

    def _role(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None
                for key, role in self.keys.items():
                    if hmac.compare_digest(key.encode(), token.strip().encode()):
                        return role
                return None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = ENDPOINT_ROLES.get(scope.get("path", "").rstrip("/") or "/")
        if allowed is None:
            await self.app(scope, receive, send)
            return
        role = self._role(scope)
        if role is None:
            await send_json(
                send,
                401,
                {
                    "error": "unauthorized",
                    "message": "a valid API key is required (Authorization: Bearer KEY)",
                },
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if role not in allowed:
            await send_json(
                send,
                403,
                {
                    "error": "forbidden",
                    "message": f"role {role!r} may not call {scope['path']}",
                    "roles_allowed": sorted(allowed),
                },
            )
            return
        scope.setdefault("state", {})["crisk_role"] = role
        await self.app(scope, receive, send)

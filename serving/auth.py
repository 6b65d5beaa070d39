"""Routes, API keys and roles, checked before any endpoint runs (an ASGI middleware).

Routes are closed unless listed in :data:`ROUTES`: an unknown path is 404 for everybody, a method
a route does not take is 405 (with ``Allow``). On a protected route, no key or an unknown key is
401 and a known key whose role may not use the endpoint is 403. Keys come from
``CRISK_API_KEYS`` (``role:key,role:key``) or a file named by ``CRISK_API_KEYS_FILE``; one key
given to two roles is an error at start (whoever holds it would hold both).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from serving.middleware import error_body, send_json

__all__ = ["ENDPOINT_ROLES", "OPEN_ROUTES", "ROLES", "ROUTES", "ApiKeyMiddleware", "parse_api_keys"]

ROLES = ("scorer", "officer", "auditor", "admin")

# Which roles may call which endpoint (all of them POST).
ENDPOINT_ROLES: dict[str, frozenset[str]] = {
    "/score": frozenset({"scorer", "admin"}),
    "/feedback": frozenset({"officer", "admin"}),
    "/explain": frozenset({"auditor", "admin"}),
}
# Open to everybody, explicitly: health, readiness, metrics and the API's own description.
OPEN_ROUTES = ("/healthz", "/livez", "/readyz", "/metrics", "/docs.json")
_READ = frozenset({"GET", "HEAD"})
# path -> methods; anything else does not exist.
ROUTES: dict[str, frozenset[str]] = {
    **{path: frozenset({"POST"}) for path in ENDPOINT_ROLES},
    **{path: _READ for path in OPEN_ROUTES},
}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def parse_api_keys(text: str | None, file: Path | None = None) -> dict[str, str]:
    """key -> role. Raises ValueError naming the bad entry."""
    if not text and file is not None:
        text = ",".join(line.strip() for line in file.read_text().splitlines() if line.strip())
    source = "CRISK_API_KEYS" if text or file is None else str(file)
    keys: dict[str, str] = {}
    for position, entry in enumerate((text or "").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        role, sep, key = entry.partition(":")
        if not sep or not key:
            raise ValueError(f"{source} entry {position}: expected role:key")
        if role not in ROLES:
            raise ValueError(f"{source} entry {position}: unknown role {role!r}; roles are {ROLES}")
        if keys.get(key, role) != role:
            raise ValueError(
                f"{source} entry {position}: the key of role {role!r} is also the key of role "
                f"{keys[key]!r}; give every role its own key"
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
        path = scope.get("path", "")
        methods = ROUTES.get(path)
        if methods is None:
            await send_json(
                send, 404, error_body("not_found", f"no route {path[:100]}", "path", "route")
            )
            return
        method = scope.get("method", "")
        if method not in methods:
            allow = ", ".join(sorted(methods))
            await send_json(
                send,
                405,
                error_body(
                    "method_not_allowed",
                    f"{path} takes {allow}, not {method[:20]}",
                    "method",
                    "allowed_methods",
                    method[:20],
                ),
                [(b"allow", allow.encode())],
            )
            return
        allowed = ENDPOINT_ROLES.get(path)
        if allowed is None:
            await self.app(scope, receive, send)
            return
        role = self._role(scope)
        if role is None:
            await send_json(
                send,
                401,
                error_body(
                    "unauthorized",
                    "a valid API key is required (Authorization: Bearer KEY)",
                    "authorization",
                    "api_key",
                ),
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if role not in allowed:
            body = error_body(
                "forbidden", f"role {role!r} may not call {path}", "authorization", "role", role
            )
            await send_json(send, 403, {**body, "roles_allowed": sorted(allowed)})
            return
        scope.setdefault("state", {})["crisk_role"] = role
        await self.app(scope, receive, send)

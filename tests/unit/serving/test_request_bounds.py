"""Request bounds, routes and keys as ASGI middlewares, on a tiny app (no server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from serving.auth import ApiKeyMiddleware, parse_api_keys
from serving.middleware import BatchBound, RequestBounds, RequestLimits, ValidationErrors

LIMITS = RequestLimits(
    max_body_bytes=2_000,
    batches={"/score": BatchBound(("declarations", "ens"), 3, minimum=1)},
)


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": message.get("body", b"")})


def _call(
    app: Any,
    body: bytes = b"",
    path: str = "/score",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    chunks: int = 1,
) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    size = max(1, len(body) // chunks + 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    answer_headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], answer_headers, b"".join(m.get("body", b"") for m in sent[1:])


def _rule(body: bytes) -> str:
    return json.loads(body)["reasons"][0]["rule"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "rule"),
    [
        (b'{"declarations": [{}]}', {}, 200, None),
        (b"{}", {}, 422, "min_items"),
        (b'{"declarations": [{}, {}, {}, {}]}', {}, 422, "max_items"),
        (b'{"declarations": [{}], "ens": [{}, {}, {}]}', {}, 200, None),
        (b'{"declarations": [{}], "declarations": []}', {}, 422, "duplicate_key"),
        (b'{"declarations": [{"x": NaN}]}', {}, 422, "json"),
        (b'{"declarations": [{"x": Infinity}]}', {}, 422, "json"),
        (b"{not json", {}, 422, "json"),
        (b"[" * 5_000 + b"]" * 5_000, {}, 413, "max_body_bytes"),
        (b"[" * 900 + b"]" * 900, {}, 422, "nesting"),
        (b'{"declarations": [{}]}', {"content-type": "text/plain"}, 415, "media_type"),
        (b'{"declarations": [{}]}', {"content-encoding": "gzip"}, 415, "identity_only"),
        (b'{"declarations": [{}]}', {"content-length": "999999"}, 413, "max_body_bytes"),
        (b'{"declarations": [{}]}', {"content-length": "-1"}, 413, "max_body_bytes"),
    ],
)
def test_request_bounds(
    body: bytes, headers: dict[str, str], status: int, rule: str | None
) -> None:
    app = RequestBounds(_echo, limits=lambda: LIMITS)
    answer, _, content = _call(app, body, headers=headers)
    assert answer == status, content
    if rule is None:
        assert content == body, "a body within bounds reaches the app unchanged"
    else:
        assert _rule(content) == rule


def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    app = RequestBounds(_echo, limits=lambda: LIMITS)
    status, _, content = _call(app, b" " * 10_000, chunks=20)
    assert status == 413 and _rule(content) == "max_body_bytes"


def test_validation_reasons_are_capped_and_counted() -> None:
    details = [
        {"type": "missing", "loc": ("declarations", i, "hs_code"), "msg": "x"} for i in range(50)
    ]

    async def invalid(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = json.dumps({"error": "50 errors", "detail": details}).encode()
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": body})

    status, _, content = _call(ValidationErrors(invalid, max_reasons=lambda: 5), b"{}")
    answer = json.loads(content)
    assert status == 422 and len(answer["reasons"]) == 5
    assert answer["n_reasons"] == 50 and answer["reasons_omitted"] == 45
    assert answer["reasons"][0] == {
        "field": "declarations.0.hs_code", "rule": "required", "value": None, "message": "x",
    }  # fmt: skip


KEYS = {"s-key": "scorer", "o-key": "officer"}


@pytest.mark.parametrize(
    ("method", "path", "key", "status", "rule"),
    [
        ("POST", "/score", "s-key", 200, None),
        ("POST", "/score", None, 401, "api_key"),
        ("POST", "/score", "wrong", 401, "api_key"),
        ("POST", "/score", "o-key", 403, "role"),
        ("GET", "/score", "s-key", 405, "allowed_methods"),
        ("TRACE", "/readyz", None, 405, "allowed_methods"),
        ("GET", "/readyz", None, 200, None),
        ("GET", "/metrics", None, 200, None),
        ("GET", "/", None, 404, "route"),
        ("POST", "/score/", "s-key", 404, "route"),
        ("GET", "/static_content/../../etc/passwd", None, 404, "route"),
    ],
)
def test_routes_are_closed_unless_listed(
    method: str, path: str, key: str | None, status: int, rule: str | None
) -> None:
    app = ApiKeyMiddleware(_echo, keys=lambda: KEYS)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    answer, answer_headers, content = _call(app, b"{}", path=path, method=method, headers=headers)
    assert answer == status, content
    if rule is not None:
        assert _rule(content) == rule
    if status == 405:
        assert answer_headers["allow"]


def test_a_key_given_to_two_roles_is_refused() -> None:
    with pytest.raises(ValueError, match="also the key of role 'scorer'"):
        parse_api_keys("scorer:k1,auditor:k1")
    assert parse_api_keys("scorer:k1,scorer:k1") == {"k1": "scorer"}, "a repeated entry is fine"

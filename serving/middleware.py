"""ASGI middlewares around the BentoML app: request hygiene and operational endpoints.

- JSON only: a POST with another content type gets 415 (BentoML would answer a malformed
  multipart body with a 500).
- Validation errors: BentoML answers an invalid body with 400 and pydantic's details; this
  rewrites them into 422 with contract reasons ``{field, rule, value, message}``, the same shape
  batch validation uses. The body is never echoed into logs.
- ``/readyz``: says which models serve and whether the service fell back to a bundled champion.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from data_contracts.models import reason_from_error_item

__all__ = ["JsonOnly", "ReadinessEndpoint", "ValidationErrors"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(
    send: Send,
    status: int,
    body: Mapping[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with a JSON body (and any extra headers) without going further into the app."""
    payload = json.dumps(body, default=str).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class JsonOnly:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            content_type = (
                dict(scope.get("headers", [])).get(b"content-type", b"").decode("latin-1")
            )
            if content_type.split(";")[0].strip().lower() != "application/json":
                await send_json(
                    send,
                    415,
                    {
                        "error": "unsupported_media_type",
                        "message": "send the body as application/json",
                    },
                )
                return
        await self.app(scope, receive, send)


class ValidationErrors:
    """Turn BentoML's 400 validation answers into 422 contract reasons."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if message["status"] != 400:
                    await send(message)
                    return
                start.update(message)
                return
            if not start:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                await send_json(send, 422, _reasons_body(b"".join(chunks)))

        await self.app(scope, receive, capture)


def _reasons_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {
            "error": "invalid_request",
            "reasons": [
                {
                    "field": "",
                    "rule": "json",
                    "value": None,
                    "message": raw.decode(errors="replace")[:500],
                }
            ],
        }
    details = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(details, list):
        message = body.get("error") if isinstance(body, dict) else str(body)
        return {
            "error": "invalid_request",
            "reasons": [
                {"field": "", "rule": "json", "value": None, "message": str(message)[:500]}
            ],
        }
    return {"error": "invalid_request", "reasons": [reason_from_error_item(d) for d in details]}


class ReadinessEndpoint:
    """Answers ``/readyz`` with the service's own state (``state()`` is read per request)."""

    def __init__(self, app: App, state: Callable[[], Mapping[str, Any]]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == "/readyz":
            state = dict(self.state())
            await send_json(send, 200 if state.get("ready") else 503, state)
            return
        await self.app(scope, receive, send)

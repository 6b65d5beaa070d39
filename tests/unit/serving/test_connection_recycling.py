"""With several workers, one response in N asks the client to reconnect (Connection: close)."""

from __future__ import annotations

import asyncio
from typing import Any

from serving.middleware import (
    PARSED_BODY,
    BatchBound,
    ConnectionRecycling,
    RequestBounds,
    RequestLimits,
)


async def _keep_alive(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"application/json"), (b"connection", b"keep-alive")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def _connection_headers(app: Any, requests: int) -> list[list[bytes]]:
    async def one() -> list[bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "http", "method": "GET", "path": "/x", "headers": []}, receive, send)
        return [v for k, v in sent[0]["headers"] if k == b"connection"]

    return [asyncio.run(one()) for _ in range(requests)]


def test_every_nth_response_closes_its_connection() -> None:
    seen = _connection_headers(ConnectionRecycling(_keep_alive, every=lambda: 4), 12)
    closing = [i for i, values in enumerate(seen) if values == [b"close"]]
    assert closing == [3, 7, 11]
    assert all(values == [b"keep-alive"] for i, values in enumerate(seen) if i not in closing)


def test_off_with_zero_leaves_every_response_alone() -> None:
    seen = _connection_headers(ConnectionRecycling(_keep_alive, every=lambda: 0), 8)
    assert seen == [[b"keep-alive"]] * 8


def test_request_bounds_hand_the_parsed_body_on() -> None:
    documents: list[Any] = []

    async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
        documents.append(scope.get(PARSED_BODY))
        await _keep_alive(scope, receive, send)

    limits = RequestLimits(1_000, {"/score": BatchBound(("declarations",), 3, minimum=1)})
    app = RequestBounds(endpoint, limits=lambda: limits)
    body = b'{"declarations": [{"a": 1}]}'

    async def call() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            return None

        headers = [(b"content-type", b"application/json")]
        scope = {"type": "http", "method": "POST", "path": "/score", "headers": headers}
        await app(scope, receive, send)

    asyncio.run(call())
    assert documents == [{"declarations": [{"a": 1}]}]

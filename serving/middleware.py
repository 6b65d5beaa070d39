"""ASGI middlewares around the BentoML app: request bounds, error shape, operational endpoints.

Every 4xx the service sends has one shape, ``{"error", "message", "reasons": [{field, rule,
value, message}]}``, the shape batch validation uses for quarantined rows, so a client (and a
fuzzer) can always read which field broke which rule.

- Request bounds (:class:`RequestBounds`), before anything parses the body: JSON only (415, also
  for compressed bodies: nothing is inflated, so no decompression bomb), at most
  ``max_body_bytes`` (413, from ``Content-Length`` before reading, or while reading a chunked
  body), strict JSON (422: no ``NaN``/``Infinity``, no duplicated keys, bounded nesting), and the
  number of items per list counted before a single item is validated (422, rule ``max_items``,
  as the OpenAPI document's ``maxItems`` says).
- Validation errors (:class:`ValidationErrors`): BentoML answers an invalid body with 400 and
  pydantic's details; this rewrites them into 422 with contract reasons, at most
  ``max_reasons`` of them and the count of the rest. The body is never echoed into logs.
- ``/readyz`` (:class:`ReadinessEndpoint`): which models serve, fallback, feature store state.
- Connection recycling (:class:`ConnectionRecycling`), with several workers: one response in N
  asks its client to reconnect, so a few long-lived connections do not pin the load on one worker.
- ``/docs.json`` (:class:`OpenApiDocument`): BentoML's document completed with what the service
  really answers (the statuses, the error shape, the key scheme, the batch bounds).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from data_contracts.models import reason_from_error_item

__all__ = [
    "PARSED_BODY",
    "BatchBound",
    "ConnectionRecycling",
    "OpenApiDocument",
    "ReadinessEndpoint",
    "RequestBounds",
    "RequestLimits",
    "ValidationErrors",
    "error_body",
    "parse_strict_json",
    "send_json",
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAX_NESTING = 32
_UNSURE = object()
# Scope key of the body RequestBounds parsed (strict JSON, counted): the endpoint reads it there.
PARSED_BODY = "crisk.parsed_body"


def error_body(
    error: str, message: str, field: str, rule: str, value: Any = None
) -> dict[str, Any]:
    """The one 4xx shape: an error code, a sentence, and the field and rule that were broken."""
    return {
        "error": error,
        "message": message,
        "reasons": [{"field": field, "rule": rule, "value": value, "message": message}],
    }


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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


@dataclass(frozen=True)
class BatchBound:
    """At most ``limit`` items in each list ``fields`` of a route's body; at least ``minimum``
    in all of them together."""

    fields: tuple[str, ...]
    limit: int
    minimum: int = 0


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry: body bytes, and items per route (by path)."""

    max_body_bytes: int
    batches: Mapping[str, BatchBound]


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["message"])
        self.status = status
        self.body = body


def _no_constants(name: str) -> Any:
    raise _Refused(422, error_body("invalid_json", f"{name} is not a JSON value", "", "json", name))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        duplicate = ""
        for key, _ in pairs:
            if key in seen:
                duplicate = key
                break
            seen.add(key)
        raise _Refused(
            422,
            error_body(
                "invalid_json",
                f"key {duplicate!r} appears twice in one object: which value counts is ambiguous",
                duplicate,
                "duplicate_key",
            ),
        )
    return record


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_NESTING:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        # Items of a batch are alike: their depth is read off the first few.
        return max((_depth(v, level + 1) for v in value[:3]), default=level)
    return level


# A colon written as an escape (\u003a) is the only way a parsed text can hold a colon the raw
# bytes lack; any \u003 sends the body to the strict parser.
_ESCAPE_PREFIX = b"\\u003"
# orjson reads integers beyond 64 bits as floats; the standard library keeps them exact. Digits
# become 9 and everything else a space, so a run of 19 digits is one substring search.
_DIGIT_RUNS = bytes(57 if 48 <= c <= 57 else 32 for c in range(256))
_LONG_NUMBER = b"9" * 19


def _plain_json(raw: bytes) -> Any:
    """orjson's parse of ``raw`` when it is provably the strict parser's, else ``_UNSURE``.

    orjson refuses NaN, Infinity, invalid UTF-8 and lone surrogates itself, but reads integers
    beyond 64 bits as floats (such bodies go to the strict parser) and keeps the last of
    duplicated keys silently. A duplicate is seen by counting colons: each key of the parsed
    document, and each colon in its texts, is one colon of its re-encoding; the raw body has one
    per key written (duplicates included) and one per colon in its texts (dropped values'
    included). The counts are equal only if no key was dropped, unless a colon was written as
    an escape, which sends the body to the strict parser too.
    """
    if _ESCAPE_PREFIX in raw or _LONG_NUMBER in raw.translate(_DIGIT_RUNS):
        return _UNSURE
    try:
        document = orjson.loads(raw)
        written = orjson.dumps(document)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _UNSURE  # the strict parser says what is wrong (same messages as ever)
    return document if written.count(b":") == raw.count(b":") else _UNSURE


def parse_strict_json(raw: bytes) -> Any:
    """The JSON document in ``raw``, or :class:`_Refused` naming what is wrong with it."""
    document = _plain_json(raw)
    if document is _UNSURE:
        document = _strict_json(raw)
    if _depth(document) > _MAX_NESTING:
        raise _Refused(
            422,
            error_body(
                "invalid_json",
                f"the body is nested more than {_MAX_NESTING} levels deep",
                "",
                "nesting",
            ),
        )
    return document


def _strict_json(raw: bytes) -> Any:
    """The standard library's parse, refusing constants and duplicated keys as it reads."""
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except _Refused:
        raise
    except RecursionError:
        raise _Refused(
            422, error_body("invalid_json", "the body is nested too deeply", "", "nesting")
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise _Refused(
            422,
            error_body("invalid_json", f"the body is not valid JSON ({error})"[:300], "", "json"),
        ) from None


def _check_counts(document: Any, bound: BatchBound) -> None:
    if not isinstance(document, dict) or any(
        name in document and not isinstance(document[name], list) for name in bound.fields
    ):
        return  # the request model says what is wrong with it (422, rule type)
    counts = {f: len(v) for f in bound.fields if isinstance(v := document.get(f), list)}
    for name, count in counts.items():
        if count > bound.limit:
            raise _Refused(
                422,
                error_body(
                    "too_many_items",
                    f"{name}: {count} items; at most {bound.limit} per request",
                    name,
                    "max_items",
                    count,
                ),
            )
    total = sum(counts.values())
    names = ", ".join(bound.fields)
    if total < bound.minimum:
        raise _Refused(
            422,
            error_body(
                "invalid_request",
                f"{names}: send at least {bound.minimum} item",
                names,
                "min_items",
                total,
            ),
        )


class RequestBounds:
    """Refuse what is too big or not plain JSON before the app parses or validates anything."""

    def __init__(self, app: App, limits: Callable[[], RequestLimits]) -> None:
        self.app = app
        self._load_limits = limits
        self._limits: RequestLimits | None = None

    @property
    def limits(self) -> RequestLimits:
        # Read on first use, in the worker, from the settings the service was started with.
        if self._limits is None:
            self._limits = self._load_limits()
        return self._limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        try:
            self._check_headers(scope)
            body = await self._read(receive)
            bound = self.limits.batches.get(scope.get("path", ""))
            if bound is not None:
                document = parse_strict_json(body)
                _check_counts(document, bound)
                # Handed on, so the endpoint need not parse the same bytes again.
                scope[PARSED_BODY] = document
        except _Refused as refused:
            await send_json(send, refused.status, refused.body)
            return
        await self.app(scope, _replay(body), send)

    def _check_headers(self, scope: Scope) -> None:
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _Refused(
                415,
                error_body(
                    "unsupported_media_type",
                    "send the body as application/json",
                    "content-type",
                    "media_type",
                    content_type or None,
                ),
            )
        encoding = (_header(scope, b"content-encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise _Refused(
                415,
                error_body(
                    "unsupported_media_type",
                    "compressed bodies are not accepted: send plain JSON",
                    "content-encoding",
                    "identity_only",
                    encoding,
                ),
            )
        length = _header(scope, b"content-length")
        limit = self.limits.max_body_bytes
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            raise _Refused(413, _too_large(limit, length))

    async def _read(self, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Refused(413, _too_large(limit, None))
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _too_large(limit: int, length: str | None) -> dict[str, Any]:
    return error_body(
        "body_too_large",
        f"the body is larger than {limit} bytes",
        "body",
        "max_body_bytes",
        length,
    )


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class ValidationErrors:
    """Turn BentoML's 400 validation answers into 422 contract reasons (at most ``max_reasons``)."""

    def __init__(self, app: App, max_reasons: Callable[[], int]) -> None:
        self.app = app
        self._load_max_reasons = max_reasons
        self._max_reasons: int | None = None

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
                if self._max_reasons is None:
                    self._max_reasons = self._load_max_reasons()
                body = _reasons_body(b"".join(chunks), self._max_reasons)
                await send_json(send, 422, body)

        await self.app(scope, receive, capture)


def _reasons_body(raw: bytes, max_reasons: int) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return error_body("invalid_request", raw.decode(errors="replace")[:300], "", "json")
    details = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(details, list):
        message = body.get("error") if isinstance(body, dict) else str(body)
        return error_body("invalid_request", str(message)[:300], "", "json")
    reasons = [reason_from_error_item(d) for d in details[:max_reasons]]
    first = reasons[0] if reasons else {"field": "", "rule": "invalid"}
    out: dict[str, Any] = {
        "error": "invalid_request",
        "message": f"{len(details)} problem(s); first: {first['field']}: {first['rule']}",
        "reasons": reasons,
        "n_reasons": len(details),
    }
    if len(details) > max_reasons:
        out["reasons_omitted"] = len(details) - max_reasons
    return out


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


class OpenApiDocument:
    """Serves ``/docs.json``: BentoML's document, completed once by ``amend``."""

    def __init__(self, app: App, amend: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.app = app
        self._amend = amend
        self._document: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/docs.json":
            await self.app(scope, receive, send)
            return
        if self._document is None:
            status, raw = await _call(self.app, scope, receive)
            if status != 200:
                await send_json(
                    send, 503, error_body("unavailable", "no OpenAPI document", "path", "route")
                )
                return
            self._document = json.dumps(self._amend(json.loads(raw))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._document)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._document})


async def _call(app: App, scope: Scope, receive: Receive) -> tuple[int, bytes]:
    """Run ``app`` on a request and collect its answer instead of sending it."""
    status = 500
    chunks: list[bytes] = []

    async def collect(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, collect)
    return status, b"".join(chunks)


class ConnectionRecycling:
    """Every ``every()``-th response of this worker carries ``Connection: close`` (0: none).

    BentoML's workers share one listening socket and a connection stays with the worker that
    accepted it: a client's few keep-alive connections can leave one worker with most of the load
    (measured: 4 connections, two workers busy 75% and 22% of a core). A client that reconnects
    now and then is accepted by whichever worker is waiting, which is the idle one.
    """

    def __init__(self, app: App, every: Callable[[], int]) -> None:
        self.app = app
        self._load_every = every
        self._every: int | None = None
        self._responses = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._every is None:
            self._every = self._load_every()
        if scope["type"] != "http" or not self._every:
            await self.app(scope, receive, send)
            return
        self._responses += 1
        if self._responses % self._every:
            await self.app(scope, receive, send)
            return

        async def closing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)

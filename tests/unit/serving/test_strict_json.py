"""The fast (orjson) parse of a body gives what the strict parser gives, or leaves it to it."""

from __future__ import annotations

import json

import pytest

from serving.middleware import _MAX_NESTING, _depth, _Refused, _strict_json, parse_strict_json

_BODIES = [
    b'{"declarations": [{"a": 1, "b": "x:y"}]}',
    b'{"declarations": [{"a": 1, "a": 2}]}',
    b'{"declarations": [{"a": "x:y", "a": "z"}]}',
    b'{"declarations": [{"a": "x\\u003a", "a": 2}]}',
    b'{"declarations": [{"a": "x\\u003A", "b": 2}]}',
    b'{"a": {"b": {"c": 1, "c": 1}}}',
    b'{"k": "caf\\u00e9", "n": -0, "f": 1E2, "g": 1.5e-3, "big": 123456789012345678901234567890}',
    b'{"x": NaN}',
    b'{"x": Infinity}',
    b'{"x": -Infinity}',
    b'{"x": 1e999}',
    b'{"x": "\\ud800"}',
    b'{"x": "\xff"}',
    b"\xef\xbb\xbf{}",
    b'{"x": 1,}',
    b"[1, 2",
    b"",
    b"null",
    b'"text"',
    b'{"": 1, "": 2}',
    json.dumps({"d": [{"k": i, "t": f"{i}:{i}"} for i in range(50)]}).encode(),
    ('{"d": ' + "[" * 34 + "1" + "]" * 34 + "}").encode(),
    ("[" * 5000 + "]" * 5000).encode(),
    json.dumps({"u": "Müller: ü", "v": "\u202e"}, ensure_ascii=False).encode(),
    json.dumps({"u": "Müller: ü"}).encode(),
]


def _outcome(parse: object, raw: bytes) -> object:
    try:
        return ("ok", parse(raw))  # type: ignore[operator]
    except _Refused as refused:
        return ("refused", refused.status, refused.body)


@pytest.mark.parametrize("raw", _BODIES)
def test_fast_parse_agrees_with_the_strict_parser(raw: bytes) -> None:
    def strict(body: bytes) -> object:
        # The strict parser alone, then the same depth rule.
        document = _strict_json(body)
        if _depth(document) > _MAX_NESTING:
            raise _Refused(422, {"message": "deep", "reasons": [{"rule": "nesting"}]})
        return document

    expected = _outcome(strict, raw)
    got = _outcome(parse_strict_json, raw)
    if expected[0] == "ok":
        assert got == expected
        assert json.dumps(got[1]) == json.dumps(expected[1])  # same types (int vs float)
    else:
        assert got[0] == "refused" and expected[0] == "refused"
        if expected[2]["reasons"][0]["rule"] == "nesting":
            assert got[2]["reasons"][0]["rule"] == "nesting"
        else:
            assert got[1:] == expected[1:]

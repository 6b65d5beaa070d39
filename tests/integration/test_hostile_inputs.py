"""The hostile-input catalogue (docs/hostile_inputs.md): HTTP bodies, files and command lines.

Every input gets a clear answer (a 4xx naming the field and the rule, or an exit code with one
line naming the file or setting and the problem), the service stays up, and nothing already
stored changes. The table in the docs lists every case id below; a test keeps the two in step.
"""

from __future__ import annotations

import gzip
import html
import io
import json
import shutil
import sqlite3
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.definitions import contract_for
from data_contracts.safe_output import csv_safe_frame
from data_contracts.validate import validate_frame
from data_contracts.workspace import Workspace
from pipelines.cli import app
from pipelines.ingest import data_file, ingest_file
from world.generate import World

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "hostile_inputs.md"
Item = dict[str, Any]


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    """One hostile request: ``body(declaration, ens)`` gives the bytes to send."""

    body: Callable[[Item, Item], bytes]
    status: int
    rule: str | None = None
    path: str = "/score"
    method: str = "POST"
    role: str | None = "scorer"
    headers: dict[str, str] = field(default_factory=dict)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _one(change: dict[str, Any]) -> Callable[[Item, Item], bytes]:
    return lambda d, e: _json({"declarations": [{**d, **change}]})


def _ens(change: dict[str, Any]) -> Callable[[Item, Item], bytes]:
    return lambda d, e: _json({"ens": [{**e, **change}]})


def _raw(text: str) -> Callable[[Item, Item], bytes]:
    return lambda d, e: text.encode()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"k": value}
    return value


def _control() -> dict[str, Any]:
    return {
        "control_id": "HOSTILE-1", "subject_type": "declaration", "subject_id": "26XX1",
        "item_number": 1, "controlled_at": "2027-01-02T10:00:00Z", "control_type": "scan",
        "selection_reason": "random", "outcome": "no_irregularity",
        "revenue_recovered_eur": 0.0, "seizure": False,
    }  # fmt: skip


def _duplicate_key_in_item(d: Item, e: Item) -> bytes:
    text = json.dumps({"declarations": [d]})
    return text.replace('"hs_code":', '"hs_code": "000000", "hs_code":', 1).encode()


HTTP: dict[str, HttpCase] = {
    # wrong types
    "type_int_as_word": HttpCase(_one({"item_number": "abc"}), 422, "type"),
    "type_mass_as_word": HttpCase(_one({"net_mass_kg": "heavy"}), 422, "type"),
    "type_bool_as_word": HttpCase(_one({"container": "maybe"}), 422, "type"),
    "type_list_as_text": HttpCase(lambda d, e: _json({"declarations": "many"}), 422, "type"),
    "type_body_array": HttpCase(_raw("[]"), 422),
    "type_body_null": HttpCase(_raw("null"), 422),
    "type_body_string": HttpCase(_raw('"score me"'), 422),
    "type_explain_as_text": HttpCase(
        lambda d, e: _json({"declarations": [d], "explain": "yes"}), 422, "type"
    ),
    "unknown_field": HttpCase(_one({"surprise": 1}), 422, "unknown_field"),
    "empty_batch": HttpCase(_raw("{}"), 422, "min_items"),
    # huge arrays and bodies
    "huge_item_count": HttpCase(
        lambda d, e: _json({"declarations": [{}] * 200_000}), 422, "max_items"
    ),
    "huge_body_5mb": HttpCase(
        lambda d, e: _json({"declarations": [{"declaration_id": "D0000001"}] * 200_000}),
        413,
        "max_body_bytes",
    ),
    "huge_itinerary": HttpCase(_ens({"itinerary": ["CN"] * 10_000}), 422, "max_items"),
    "huge_extra_map": HttpCase(
        _one({"extra": {f"k{i}": i for i in range(1_000)}}), 422, "max_items"
    ),
    "huge_text_1mb": HttpCase(_one({"goods_description": "x" * 1_000_000}), 422, "max_length"),
    "extra_value_too_long": HttpCase(_one({"extra": {"note": "x" * 1_000}}), 422, "type"),
    "extra_bad_key": HttpCase(_one({"extra": {"bad key!": 1}}), 422, "type"),
    # deep nesting
    "deep_nesting_arrays": HttpCase(_raw("[" * 100_000 + "]" * 100_000), 422, "nesting"),
    "deep_nesting_objects": HttpCase(_one({"extra": _nested(40)}), 422, "nesting"),
    "nested_extra_value": HttpCase(_one({"extra": {"a": {"b": 1}}}), 422, "type"),
    # unicode edge cases
    "unicode_nul": HttpCase(_one({"goods_description": "cotton\x00shirts"}), 422, "type"),
    "unicode_rtl_override": HttpCase(
        _one({"goods_description": "invoice\u202egpj.exe"}), 422, "type"
    ),
    "unicode_lone_surrogate": HttpCase(
        lambda d, e: (
            json.dumps({"declarations": [{**d, "goods_description": "x"}]})
            .replace('"goods_description": "x"', '"goods_description": "\\ud800"')
            .encode()
        ),
        422,
        "json",
    ),
    "unicode_homoglyph_eori": HttpCase(
        _one({"importer_id": "NL12345678901\u0410"}), 422, "pattern"
    ),
    "unicode_rtl_text_accepted": HttpCase(
        _one({"goods_description": "\u200f\u0642\u0637\u0646 cotton"}), 200
    ),
    "unicode_emoji_accepted": HttpCase(
        _one({"goods_description": "\U0001f469\u200d\U0001f467 toys"}), 200
    ),
    # numbers
    "number_nan": HttpCase(
        lambda d, e: (
            json.dumps({"declarations": [{**d, "net_mass_kg": 1.5}]})
            .replace('"net_mass_kg": 1.5', '"net_mass_kg": NaN')
            .encode()
        ),
        422,
        "json",
    ),
    "number_infinity": HttpCase(
        lambda d, e: (
            json.dumps({"declarations": [{**d, "net_mass_kg": 1.5}]})
            .replace('"net_mass_kg": 1.5', '"net_mass_kg": -Infinity')
            .encode()
        ),
        422,
        "json",
    ),
    "number_overflow": HttpCase(
        lambda d, e: (
            json.dumps({"declarations": [{**d, "net_mass_kg": 1.5}]})
            .replace('"net_mass_kg": 1.5', '"net_mass_kg": 1e999')
            .encode()
        ),
        422,
        "type",
    ),
    "negative_net_mass": HttpCase(_one({"net_mass_kg": -1.0}), 422, "greater_than"),
    "negative_gross_mass": HttpCase(_one({"gross_mass_kg": -5.0}), 422, "greater_than"),
    "zero_value": HttpCase(_one({"customs_value_eur": 0}), 422, "greater_than"),
    # dates
    "date_year_9999": HttpCase(_one({"lodged_at": "9999-12-31T00:00:00Z"}), 422, "type"),
    "date_year_0001": HttpCase(_one({"lodged_at": "0001-01-01T00:00:00Z"}), 422, "type"),
    "date_february_30": HttpCase(_one({"lodged_at": "2026-02-30T00:00:00Z"}), 422, "type"),
    "date_unix_seconds": HttpCase(_one({"lodged_at": 1_700_000_000}), 422, "type"),
    # duplicated keys
    "duplicate_key_top": HttpCase(
        lambda d, e: ('{"declarations": ' + json.dumps([d]) + ', "declarations": []}').encode(),
        422,
        "duplicate_key",
    ),
    "duplicate_key_item": HttpCase(_duplicate_key_in_item, 422, "duplicate_key"),
    # content types and encodings
    "content_type_text": HttpCase(
        _one({}), 415, "media_type", headers={"content-type": "text/plain"}
    ),
    "content_type_missing": HttpCase(_one({}), 415, "media_type", headers={"content-type": ""}),
    "content_type_form": HttpCase(
        _one({}), 415, "media_type", headers={"content-type": "application/x-www-form-urlencoded"}
    ),
    "gzip_bomb": HttpCase(
        lambda d, e: gzip.compress(b"[" + b" " * 20_000_000 + b"]"),
        415,
        "identity_only",
        headers={"content-encoding": "gzip"},
    ),
    "body_not_utf8": HttpCase(lambda d, e: b'{"declarations": ["\xe9"]}', 422, "json"),
    # routes, methods, keys
    "method_trace": HttpCase(_raw(""), 405, "allowed_methods", method="TRACE"),
    "method_get_on_score": HttpCase(_raw(""), 405, "allowed_methods", method="GET"),
    "method_delete_on_readyz": HttpCase(
        _raw(""), 405, "allowed_methods", path="/readyz", method="DELETE"
    ),
    "unknown_route": HttpCase(_raw("{}"), 404, "route", path="/admin"),
    "trailing_slash_route": HttpCase(_one({}), 404, "route", path="/score/"),
    "no_key": HttpCase(_one({}), 401, "api_key", role=None),
    "basic_auth_scheme": HttpCase(
        _one({}), 401, "api_key", role=None, headers={"authorization": "Basic c2NvcmVyOng="}
    ),
    "wrong_role": HttpCase(_one({}), 403, "role", role="officer"),
    # feedback and explain
    "feedback_too_many": HttpCase(
        lambda d, e: _json({"control_results": [_control()] * 1_001}),
        422,
        "max_items",
        path="/feedback",
        role="officer",
    ),
    "feedback_nan": HttpCase(
        lambda d, e: _json({"control_results": [_control()]}).replace(
            b'"revenue_recovered_eur": 0.0', b'"revenue_recovered_eur": NaN'
        ),
        422,
        "json",
        path="/feedback",
        role="officer",
    ),
    "feedback_wrong_type": HttpCase(
        lambda d, e: _json({"control_results": "all of them"}),
        422,
        "type",
        path="/feedback",
        role="officer",
    ),
    "explain_path_traversal": HttpCase(
        lambda d, e: _json({"scoring_id": "../../etc/passwd"}),
        422,
        "pattern",
        path="/explain",
        role="auditor",
    ),
    "explain_unknown_id": HttpCase(
        lambda d, e: _json({"scoring_id": "0" * 32}), 404, "not_found", "/explain", role="auditor"
    ),
}


def _records(home: Path, name: str, kind: str) -> Item:
    frame = pd.read_parquet(home / "data" / f"{name}.parquet").sample(1, random_state=3)
    fields = contract_for(kind).field_names
    record = json.loads(frame[fields].to_json(orient="records", date_format="iso"))[0]
    return {k: v for k, v in record.items() if v is not None}


@pytest.fixture(scope="module")
def valid_items(server: Any, trained_workspace: Path) -> tuple[Item, Item]:
    items = (
        _records(trained_workspace, "declarations", "declarations"),
        _records(trained_workspace, "ens", "ens"),
    )
    scored = httpx.post(
        f"{server.url}/score",
        json={"declarations": [items[0]], "ens": [items[1]]},
        headers={"authorization": f"Bearer {server.keys['scorer']}"},
        timeout=60,
    )
    assert scored.status_code == 200, "the unaltered items are valid: " + scored.text[:300]
    return items


def _stored_counts(home: Path) -> tuple[int, int]:
    with sqlite3.connect(home / "service" / "audit" / "audit.sqlite") as audit:
        entries = audit.execute("SELECT count(*) FROM audit").fetchone()[0]
    with sqlite3.connect(home / "service" / "feedback.sqlite") as feedback:
        results = feedback.execute("SELECT count(*) FROM control_results").fetchone()[0]
    return int(entries), int(results)


@pytest.mark.parametrize("case_id", sorted(HTTP))
def test_http(
    case_id: str, server: Any, trained_workspace: Path, valid_items: tuple[Item, Item]
) -> None:
    case = HTTP[case_id]
    headers = {"content-type": "application/json", **case.headers}
    if case.role is not None:
        headers["authorization"] = f"Bearer {server.keys[case.role]}"
    headers = {k: v for k, v in headers.items() if v}
    before = _stored_counts(trained_workspace)
    started = time.perf_counter()
    response = httpx.request(
        case.method,
        f"{server.url}{case.path}",
        content=case.body(*valid_items),
        headers=headers,
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == case.status, response.text[:500]
    assert len(response.content) < 20_000, "the answer is short, whatever the request"
    assert elapsed < 10, f"answered in {elapsed:.1f} s"  # a generous sanity bound, not a timing
    if case.status != 200:
        reasons = response.json()["reasons"]
        assert all(r.get("rule") and "field" in r for r in reasons), reasons
        if case.rule is not None:
            assert case.rule in {r["rule"] for r in reasons}, reasons
        assert _stored_counts(trained_workspace) == before, "nothing stored changed"
    assert httpx.get(f"{server.url}/readyz", timeout=10).json()["ready"], "the service is up"


def test_huge_bodies_are_refused_at_once_while_readyz_stays_fast(server: Any) -> None:
    """200,000 small items (under the size limit: counted, 422) and 5 MB of them (over it:
    413), sent again and again while another client polls /readyz."""
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {server.keys['scorer']}",
    }
    bodies = [
        _json({"declarations": [{}] * 200_000}),
        _json({"declarations": [{"declaration_id": "D0000001"}] * 200_000}),
    ]
    answers: list[tuple[int, int, float]] = []
    ready: list[float] = []
    done = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=60) as client:
            for round_ in range(6):
                started = time.perf_counter()
                answer = client.post(
                    f"{server.url}/score", content=bodies[round_ % 2], headers=headers
                )
                answers.append(
                    (answer.status_code, len(answer.content), time.perf_counter() - started)
                )
        done.set()

    def poll() -> None:
        with httpx.Client(timeout=60) as client:
            # At least once, and once more after the last huge body: refusing them is fast
            # enough that the sender can finish before this thread's first turn.
            while True:
                finished = done.is_set()
                started = time.perf_counter()
                status = client.get(f"{server.url}/readyz").status_code
                ready.append(time.perf_counter() - started if status == 200 else float("inf"))
                if finished:
                    return
                time.sleep(0.02)

    threads = [threading.Thread(target=send), threading.Thread(target=poll)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted({status for status, _, _ in answers}) == [413, 422]
    assert all(size < 1_000 for _, size, _ in answers), "a short answer, whatever the request"
    # Generous sanity bounds (the figures are in docs/benchmarks.md), not a timing test.
    assert max(seconds for _, _, seconds in answers) < 5
    assert ready and max(ready) < 2


# --- files ---------------------------------------------------------------------------------------


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("declarations.csv", "declaration_id\nD1\n")
    return buffer.getvalue()


def _write_frame(frame: pd.DataFrame, path: Path, **options: Any) -> None:
    frame.to_csv(path, index=False, **options)


@dataclass(frozen=True)
class FileCase:
    """A hostile file: ``make(path, clean_frame)`` writes it; the exit code and a fragment of
    the message (or, for a valid file, of the output) ``crisk ingest`` must give."""

    name: str
    make: Callable[[Path, pd.DataFrame], object]
    exit_code: int
    fragment: str


def _with(column: str, value: str) -> Callable[[Path, pd.DataFrame], object]:
    def make(path: Path, frame: pd.DataFrame) -> None:
        changed = frame.copy()
        changed.loc[changed.index[0], column] = value
        changed.to_csv(path, index=False)

    return make


FILES: dict[str, FileCase] = {
    "file_zero_bytes": FileCase("zero.csv", lambda p, f: p.touch(), 2, "empty"),
    "file_header_only": FileCase(
        "header.csv", lambda p, f: f.head(0).to_csv(p, index=False), 0, "0 rows"
    ),
    "file_latin1": FileCase(
        "latin1.csv",
        lambda p, f: _write_frame(f.assign(goods_description="caf\u00e9"), p, encoding="latin-1"),
        2,
        "not UTF-8",
    ),
    "file_utf16": FileCase(
        "utf16.csv", lambda p, f: _write_frame(f, p, encoding="utf-16"), 2, "UTF-16"
    ),
    "file_zip_as_csv": FileCase(
        "archive.csv", lambda p, f: p.write_bytes(_zip_bytes()), 2, "NUL byte"
    ),
    "file_zip_as_parquet": FileCase(
        "archive.parquet", lambda p, f: p.write_bytes(_zip_bytes()), 2, "unreadable Parquet"
    ),
    "file_binary_garbage": FileCase(
        "garbage.csv", lambda p, f: p.write_bytes(bytes(range(256)) * 64), 2, "NUL byte"
    ),
    "file_directory": FileCase("folder.csv", lambda p, f: p.mkdir(), 2, "directory"),
    "file_missing": FileCase("nowhere.csv", lambda p, f: None, 2, "no such file"),
    "file_other_kind": FileCase(
        "ens.csv",
        lambda p, f: pd.DataFrame({"ens_id": ["E1"], "filed_at": ["2026-01-01"]}).to_csv(
            p, index=False
        ),
        2,
        "missing required column",
    ),
    "file_nul_in_text": FileCase("nul.csv", _with("goods_description", "a\x00b"), 2, "NUL byte"),
    "file_huge_field": FileCase(
        "huge.csv", _with("goods_description", "x" * 1_000_000), 1, "1 quarantined"
    ),
    "file_formula_injection": FileCase(
        "formula.csv",
        _with("goods_description", '=HYPERLINK("http://example.invalid","click")'),
        0,
        "0 quarantined",
    ),
    "file_html_in_value": FileCase(
        "script.csv", _with("hs_code", "<script>alert(1)</script>"), 1, "1 quarantined"
    ),
}


@pytest.fixture(scope="module")
def clean_declarations(small_world: World) -> pd.DataFrame:
    """Valid declaration rows as a CSV holds them (text; no national attributes)."""
    fields = [f for f in contract_for("declarations").field_names if f != "extra"]
    valid = validate_frame(small_world.declarations.head(400), "declarations").valid[fields]
    return pd.DataFrame(json.loads(valid.to_json(orient="records", date_format="iso")))


@pytest.fixture(scope="module")
def stored_workspace(
    clean_declarations: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A workspace holding 300 stored declarations (each test works on a copy of it)."""
    home = tmp_path_factory.mktemp("hostile") / "ws"
    base_path = home.parent / "base.csv"
    clean_declarations.iloc[:300].to_csv(base_path, index=False)
    ingest_file(Workspace.at(home), "declarations", base_path)
    return home


@pytest.fixture
def file_workspace(
    stored_workspace: Path, clean_declarations: pd.DataFrame, tmp_path: Path
) -> Iterator[tuple[Workspace, pd.DataFrame]]:
    home = shutil.copytree(stored_workspace, tmp_path / "ws")
    yield Workspace.at(home), clean_declarations.iloc[300:310]


@pytest.mark.parametrize("case_id", sorted(FILES))
def test_file(
    case_id: str,
    file_workspace: tuple[Workspace, pd.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace, clean = file_workspace
    case = FILES[case_id]
    path = tmp_path / "inputs" / case.name
    path.parent.mkdir()
    case.make(path, clean)
    stored = data_file(workspace, "declarations")
    before = stored.read_bytes()
    monkeypatch.setenv("CRISK_HOME", str(workspace.home))
    result = CliRunner().invoke(app, ["ingest", "declarations", str(path)])
    assert "Traceback" not in result.output
    assert result.exit_code == case.exit_code, result.output
    assert case.fragment in " ".join(result.output.split()), result.output
    if case.exit_code == 2 or case.fragment == "0 rows":
        assert stored.read_bytes() == before, "nothing stored changed"
    else:
        kept = pd.read_parquet(stored)
        assert len(kept) >= 300, "stored records are kept"


def test_formula_and_markup_are_neutralised_in_what_crisk_writes(
    file_workspace: tuple[Workspace, pd.DataFrame], tmp_path: Path
) -> None:
    _, clean = file_workspace
    path = tmp_path / "hostile.csv"
    frame = clean.copy()
    frame.loc[frame.index[0], "goods_description"] = "=1+2"
    frame.loc[frame.index[1], "hs_code"] = "<script>alert(1)</script>"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["validate", "declarations", str(path), "--out", str(out)])
    assert result.exit_code == 1, result.output
    report = (out / "report.html").read_text()
    assert "<script>alert(1)" not in report
    assert "<script>alert(1)" not in html.unescape(report), "escaped inside Data Docs too"
    assert 'sandbox=""' in report, "the embedded page runs no script"
    safe = csv_safe_frame(pd.DataFrame({"text": ["=1+2", "+cmd", "@SUM(A1)", "-x", "plain"],
                                        "number": [-1.5, 2, 3, 4, 5]}))  # fmt: skip
    assert safe["text"].tolist() == ["'=1+2", "'+cmd", "'@SUM(A1)", "'-x", "plain"]
    assert safe["number"].tolist() == [-1.5, 2, 3, 4, 5], "numbers stay numbers"


# --- command line --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliCase:
    """``prepare(tmp_path)`` sets up and returns (arguments, environment); exit 2 and the
    fragment expected."""

    prepare: Callable[[Path], tuple[list[str], dict[str, str]]]
    fragment: str


def _layout(text: str) -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    def prepare(tmp: Path) -> tuple[list[str], dict[str, str]]:
        home = tmp / "ws"
        Workspace.at(home).ensure()
        (home / "workspace.json").write_text(text)
        return ["audit", "verify"], {"CRISK_HOME": str(home)}

    return prepare


def _unwritable(tmp: Path) -> tuple[list[str], dict[str, str]]:
    blocker = tmp / "a-file"
    blocker.write_text("not a directory")
    source = tmp / "one.csv"
    source.write_text("declaration_id\nD1\n")
    return ["ingest", "declarations", str(source)], {"CRISK_HOME": str(blocker / "ws")}


def _with_home(arguments: list[str], **env: str) -> Callable[[Path], Any]:
    return lambda tmp: (arguments, {"CRISK_HOME": str(tmp / "ws"), **env})


def _bad_head(tmp: Path) -> tuple[list[str], dict[str, str]]:
    home = tmp / "ws"
    (home / "service" / "audit").mkdir(parents=True)
    sqlite3.connect(home / "service" / "audit" / "audit.sqlite").close()
    (tmp / "head.json").write_text("{not json")
    return ["audit", "head", "--out", str(tmp / "no" / "such" / "dir.json")], {
        "CRISK_HOME": str(home)
    }


CLI: dict[str, CliCase] = {
    "cli_missing_file": CliCase(
        _with_home(["ingest", "declarations", "/nonexistent/decl.csv"]), "no such file"
    ),
    "cli_unwritable_workspace": CliCase(_unwritable, "cannot be written"),
    "cli_workspace_newer_version": CliCase(
        _layout('{"layout_version": 99}'), "workspace layout version 99"
    ),
    "cli_workspace_corrupt_layout": CliCase(_layout("{not json"), "unreadable layout record"),
    "cli_unknown_kind": CliCase(_with_home(["ingest", "invoices", "x.csv"]), "KIND 'invoices'"),
    "cli_bad_setting": CliCase(
        _with_home(["ingest", "declarations", "x.csv"], CRISK_WORLD_DECLARATIONS="many"),
        "invalid settings",
    ),
    "cli_audit_without_log": CliCase(_with_home(["audit", "verify"]), "no audit log yet"),
    "cli_audit_unknown_id": CliCase(_with_home(["audit", "show", "0" * 32]), "no audit log"),
    "cli_audit_head_unwritable_out": CliCase(_bad_head, "No such file or directory"),
    "cli_reused_key": CliCase(
        _with_home(["serve"], CRISK_API_KEYS="scorer:same,officer:same"), "give every role its own"
    ),
    "cli_serve_empty_workspace": CliCase(_with_home(["serve"]), "nothing to serve"),
    "cli_world_too_small": CliCase(
        lambda tmp: (["world", "generate", "--out", str(tmp / "w"), "--declarations", "5"], {}),
        "1000",
    ),
}


@pytest.mark.parametrize("case_id", sorted(CLI))
def test_cli(case_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arguments, env = CLI[case_id].prepare(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    layout = tmp_path / "ws" / "workspace.json"
    before = layout.read_bytes() if layout.exists() else None
    result = CliRunner().invoke(app, arguments)
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert CLI[case_id].fragment in " ".join(result.output.split()), result.output
    if before is not None:
        assert layout.read_bytes() == before, "a workspace of another version is not touched"


# --- the table in the docs -----------------------------------------------------------------------


def test_the_catalogue_table_lists_every_input() -> None:
    text = DOC.read_text()
    missing = [case for case in (*HTTP, *FILES, *CLI) if f"`{case}`" not in text]
    assert not missing, f"docs/hostile_inputs.md lacks {missing}"
    for entry_point, cases in (("HTTP", HTTP), ("files", FILES), ("command line", CLI)):
        assert f"{entry_point}: {len(cases)} inputs" in text, entry_point

"""Progress of long steps and the CLI's warning hygiene."""

from __future__ import annotations

import io
import logging
import warnings

from rich.console import Console

from data_contracts.progress import advance
from pipelines.cli import _configure_logging
from pipelines.progress import TerminalProgress


def test_a_plain_callable_still_works_as_progress() -> None:
    seen: list[str] = []
    advance(seen.append, "training declaration models", 0, 6)
    advance(seen.append, "training declaration models", 3, 6)
    assert seen == ["training declaration models (6)"]


def test_counts_are_printed_as_lines_when_not_a_terminal() -> None:
    buffer = io.StringIO()
    with TerminalProgress(Console(file=buffer, force_terminal=False, width=120)) as progress:
        progress("reading declarations.parquet")
        for done in range(4):
            advance(progress, "validating 100 declarations", done, 3)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "• reading declarations.parquet"
    assert lines[1] == "• validating 100 declarations (3)"
    assert lines[2].startswith("  validating 100 declarations: 3/3 in ")


def test_bars_with_counts_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with TerminalProgress(console) as progress:
        advance(progress, "training ens models", 0, 5)
        advance(progress, "training ens models", 5, 5)
    assert "training ens models" in buffer.getvalue() and "5/5" in buffer.getvalue()


def test_third_party_warnings_go_to_the_debug_log(capsys) -> None:
    saved = warnings.showwarning
    try:
        _configure_logging(debug=False)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("old API", DeprecationWarning, stacklevel=1)
        logging.getLogger("great_expectations.core").warning("library chatter")
        logging.getLogger("training.train").warning("our own warning")
        err = capsys.readouterr().err
        assert "old API" not in err and "library chatter" not in err
        assert "our own warning" in err
        _configure_logging(debug=True)
        logging.getLogger("great_expectations.core").warning("library chatter")
        assert "library chatter" in capsys.readouterr().err
    finally:
        warnings.showwarning = saved
        _configure_logging(debug=False)
        logging.getLogger().setLevel(logging.WARNING)

"""The HTML report of a validation: a summary, the quarantine reasons, and GX's Data Docs page."""

from __future__ import annotations

import html
import logging
from pathlib import Path

from data_contracts.validate import ValidationResult

__all__ = ["write_report"]

logger = logging.getLogger(__name__)

NO_ROWS = '<tr><td colspan="2">none</td></tr>'
FRAME_STYLE = "width:100%;height:80vh;border:1px solid #ccc"


def _escape_values(suite_result: object) -> None:
    """GX's renderer writes the rows' values into its page as they are: a value such as
    ``<script>`` would become markup. They are escaped first (the page is a report, not data)."""
    for expectation in getattr(suite_result, "results", []):
        found = getattr(expectation, "result", None) or {}
        for key in ("partial_unexpected_list", "unexpected_list"):
            if isinstance(found.get(key), list):
                found[key] = [html.escape(v) if isinstance(v, str) else v for v in found[key]]
        for count in found.get("partial_unexpected_counts") or []:
            if isinstance(count, dict) and isinstance(count.get("value"), str):
                count["value"] = html.escape(count["value"])


def _data_docs(result: ValidationResult) -> str:
    """GX's own rendering of the suite result (its styles load from a CDN when online)."""
    if result.suite_result is None:
        return "<p>No rows to validate.</p>"
    _escape_values(result.suite_result)
    try:
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        return str(
            DefaultJinjaPageView().render(
                ValidationResultsPageRenderer().render(result.suite_result)
            )
        )
    except Exception as error:  # a rendering problem must not lose the validation itself
        logger.warning("Data Docs rendering failed: %s", error)
        return f"<p>Data Docs could not be rendered: {html.escape(str(error))}</p>"


def write_report(result: ValidationResult, path: Path, source: str) -> Path:
    rows = "".join(
        f"<tr><td>{html.escape(rule)}</td><td>{count}</td></tr>"
        for rule, count in result.rule_counts().items()
    )
    title = f"crisk validation: {html.escape(source)}"
    style = (
        "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
        "td,th{border:1px solid #ccc;padding:4px 8px}"
    )
    summary = f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>{style}</style>
</head><body>
<h1>Validation of {html.escape(source)}</h1>
<p>Record kind <b>{result.kind}</b>, contract version {result.contract_version}.</p>
<table><tr><th>input rows</th><th>valid</th><th>quarantined</th></tr>
<tr><td>{result.n_input}</td><td>{result.n_valid}</td><td>{result.n_quarantined}</td></tr></table>
<h2>Quarantined rows by field and rule</h2>
<table><tr><th>field:rule</th><th>rows</th></tr>{rows or NO_ROWS}</table>
<h2>Great Expectations Data Docs</h2>
<iframe sandbox="" style="{FRAME_STYLE}" srcdoc="{html.escape(_data_docs(result))}"></iframe>
</body></html>"""
    path.write_text(summary)
    return path

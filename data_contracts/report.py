"""The HTML report of a validation: a summary, the quarantine reasons, and GX's Data Docs page."""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from data_contracts.pages import page, table
from data_contracts.validate import ValidationResult

__all__ = ["LOCAL_DATA_DOCS_STYLE", "localize_data_docs", "write_report"]

logger = logging.getLogger(__name__)

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


# The few Bootstrap 4 rules GX's page layout relies on, written out here: the page must look
# right offline, and GX's own template loads Bootstrap, Font Awesome, jQuery and Vega from CDNs.
LOCAL_DATA_DOCS_STYLE = """
*,::before,::after{box-sizing:border-box}
body{margin:0;font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;font-size:14px;
 line-height:1.45;color:#212529;background:#fff}
a{color:#1f5fa8;text-decoration:none}
h1,h2,h3,h4,h5,h6,.h6{margin:0.4em 0;font-weight:600;line-height:1.2}
h3{font-size:1.35em}h4{font-size:1.15em}h5,h6,.h6{font-size:1em}
.container,.container-fluid{width:100%;padding:0 12px;margin:0 auto}
.container{padding-top:12px}
.row{display:flex;flex-wrap:wrap;margin:0 -12px}
[class*="col-"]{position:relative;width:100%;padding:0 12px}
.col-12{flex:0 0 100%;max-width:100%}.col-6{flex:0 0 50%;max-width:50%}
@media(min-width:768px){.col-md-2{flex:0 0 16.66%;max-width:16.66%}
 .col-md-10{flex:0 0 83.33%;max-width:83.33%}.d-md-block{display:block!important}
 .d-md-inline-flex{display:inline-flex!important}.pl-md-4{padding-left:1.5rem!important}
 .pr-md-3{padding-right:1rem!important}}
.d-none{display:none!important}.d-flex{display:flex!important}.d-sm-block{display:block}
.float-left{float:left}.h-100{height:100%}.align-items-center{align-items:center}
.justify-content-center{justify-content:center}.mr-auto{margin-right:auto}
.m-0{margin:0!important}.m-2{margin:0.5rem!important}.mt-0{margin-top:0!important}
.mt-1{margin-top:0.25rem!important}.mt-3{margin-top:1rem!important}
.mb-0{margin-bottom:0!important}.mb-1{margin-bottom:0.25rem!important}
.mb-2{margin-bottom:0.5rem!important}.mb-3{margin-bottom:1rem!important}
.mb-4{margin-bottom:1.5rem!important}.ml-1{margin-left:0.25rem!important}
.ml-2{margin-left:0.5rem!important}.mr-0{margin-right:0!important}
.mr-2{margin-right:0.5rem!important}.p-0{padding:0!important}.p-1{padding:0.25rem!important}
.p-2{padding:0.5rem!important}.p-3{padding:1rem!important}.px-0{padding-left:0!important;
 padding-right:0!important}.pt-0{padding-top:0!important}.pt-4{padding-top:1.5rem!important}
.pb-0{padding-bottom:0!important}.pb-1{padding-bottom:0.25rem!important}
.pb-4{padding-bottom:1.5rem!important}.pl-5{padding-left:3rem!important}
.pr-3{padding-right:1rem!important}.pr-5{padding-right:3rem!important}
.pl-sm-3{padding-left:1rem!important}
.text-success{color:#2e8540!important}.text-danger{color:#c0392b!important}
.bg-light{background:#f4f6f8!important}.border-bottom{border-bottom:1px solid #dee2e6!important}
.rounded{border-radius:4px}.lead{font-size:1.15em}
.sticky-top{position:sticky;top:0;z-index:10}
.navbar{display:flex;align-items:center;padding:0.5rem 1rem;background:#f4f6f8}
.navbar-brand{font-weight:600;margin-right:1rem}
.breadcrumb{display:flex;flex-wrap:wrap;list-style:none;margin:0;padding:0.4rem 0}
.breadcrumb-item+.breadcrumb-item::before{content:"/";padding:0 0.5rem;color:#6c757d}
.nav{display:flex;flex-direction:column;list-style:none;padding:0;margin:0}
.nav-link{display:block;padding:0.25rem 0.5rem}
.card{border:1px solid #dee2e6;border-radius:4px;margin-bottom:0.75rem;background:#fff}
.card-header{padding:0.5rem 0.75rem;background:#f4f6f8;border-bottom:1px solid #dee2e6}
.card-body{padding:0.75rem}.card-text{margin:0}
.collapse{display:block}
.alert{padding:0.5rem 0.75rem;border-radius:4px;margin-bottom:0.5rem}
.alert-secondary{background:#eef1f4;border:1px solid #d6dbe0}
.badge{display:inline-block;padding:0.15em 0.45em;font-size:85%;font-weight:600;
 border-radius:4px;white-space:nowrap}
.badge-secondary{background:#6c757d;color:#fff}
.btn{display:inline-block;padding:0.25rem 0.6rem;border:1px solid #1f5fa8;border-radius:4px;
 background:#1f5fa8;color:#fff;font-size:0.9em}
.btn-group{display:inline-flex}
.table{width:100%;border-collapse:collapse;margin-bottom:0.75rem}
.table td,.table th{padding:0.3rem 0.5rem;border-top:1px solid #dee2e6;vertical-align:top;
 text-align:left}
.table-sm td,.table-sm th{padding:0.2rem 0.4rem}
.table-bordered td,.table-bordered th{border:1px solid #dee2e6}
.table-responsive{overflow-x:auto}
.fas{font-style:normal;font-weight:700}
.fa-check-circle::before{content:"\\2714"}.fa-times::before{content:"\\2716"}
.fa-exclamation-triangle::before{content:"\\26A0"}
.ge-walkthrough-modal,.modal,.btn-group-toggle{display:none!important}
"""

_EXTERNAL_TAGS = re.compile(
    r"<link\b[^>]*>|<script\b[^>]*>.*?</script>|<img\b[^>]*\bsrc\s*=\s*[\"']?https?:[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_EXTERNAL_URLS = re.compile(r"url\(\s*['\"]?https?:[^)]*\)", re.IGNORECASE)


def localize_data_docs(page: str) -> str:
    """GX's Data Docs page without anything fetched from the network, styled locally.

    Stylesheets, scripts (they need jQuery and Bootstrap from CDNs and would only raise errors
    offline), the favicon and remote logos are removed; the page keeps GX's own inline styles
    and gets :data:`LOCAL_DATA_DOCS_STYLE` for the Bootstrap layout it was written for.
    """
    local = _EXTERNAL_URLS.sub("none", _EXTERNAL_TAGS.sub("", page))
    style = f"<style>{LOCAL_DATA_DOCS_STYLE}</style>"
    head = re.search(r"<head[^>]*>", local, re.IGNORECASE)
    if head is None:
        return style + local
    return local[: head.end()] + style + local[head.end() :]


def _data_docs(result: ValidationResult) -> str:
    """GX's own rendering of the suite result, made self-contained (see localize_data_docs)."""
    if result.suite_result is None:
        return "<p>No rows to validate.</p>"
    _escape_values(result.suite_result)
    try:
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        return localize_data_docs(
            str(
                DefaultJinjaPageView().render(
                    ValidationResultsPageRenderer().render(result.suite_result)
                )
            )
        )
    except Exception as error:  # a rendering problem must not lose the validation itself
        logger.warning("Data Docs rendering failed: %s", error)
        return f"<p>Data Docs could not be rendered: {html.escape(str(error))}</p>"


def write_report(result: ValidationResult, path: Path, source: str) -> Path:
    """The validation report: summary, quarantine reasons and the Data Docs, all offline."""
    counts = table(
        ("input rows", "valid", "quarantined"),
        [(result.n_input, result.n_valid, result.n_quarantined)],
    )
    reasons = table(("field:rule", "rows"), list(result.rule_counts().items()) or [("none", 0)])
    body = (
        f"<p>Record kind <b>{html.escape(result.kind)}</b>, contract version "
        f"{html.escape(str(result.contract_version))}.</p>{counts}"
        f"<h2>Quarantined rows by field and rule</h2>{reasons}"
        "<h2>Great Expectations Data Docs</h2>"
        f'<iframe title="Data Docs" sandbox="" style="{FRAME_STYLE}" '
        f'srcdoc="{html.escape(_data_docs(result))}"></iframe>'
    )
    path.write_text(page(f"Validation of {source}", body))
    return path

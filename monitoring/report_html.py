"""Evidently's report page with its embedded data safe inside the `<script>` element holding it.

Evidently 0.7 (`evidently/legacy/utils/dashboard.py`, `file_html_template`) writes the report's
data as plain `json.dumps` output into a `<script>` element, and JSON does not escape `<`. The data
holds customer text (the text drift widget's typical words and example messages) and intent
names, so a message containing `</script><img src=x onerror=...>` ended the element and ran as
HTML in the browser of whoever opened the report: a stored XSS from any customer's chat box.
"""

from __future__ import annotations

import re

# The data element: `<script>\n    var metric_<32 hex> = {...};\n    var additional_graphs_... =
# {...};\n</script>`. `json.dumps` never emits a raw newline (it writes `\n` inside strings), so
# the first ";\n</script>" after the start is the element's own end, whatever the data says.
_DATA_START = re.compile(r"<script>\n[ \t]*var metric_[0-9a-f]{32} = ")
_DATA_END = ";\n</script>"
# Outside JSON strings the data element has none of these; inside, `\u003c` is the same string.
_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class ReportTemplateChanged(RuntimeError):
    """Evidently's page no longer has the data element this module knows how to make safe."""


def safe_report_html(html: str) -> str:
    """Evidently's page with `<`, `>` and `&` escaped in its data element (same data for JS).

    Raises `ReportTemplateChanged` rather than return a page whose data may still break out.
    """
    starts = list(_DATA_START.finditer(html))
    if len(starts) != 1:
        raise ReportTemplateChanged(f"expected one Evidently data element, found {len(starts)}")
    begin = starts[0].end()
    end = html.find(_DATA_END, begin)
    if end < 0:
        raise ReportTemplateChanged("the Evidently data element has no end")
    return html[:begin] + html[begin:end].translate(_ESCAPES) + html[end:]

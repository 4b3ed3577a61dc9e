"""The standalone document: a body of HTML, the specs of its plots as JSON, the style and the
drawing script inline (`page.css`, `page.js`, beside this module), and a Content-Security-Policy
that lets the page load nothing else."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from ctpipe.reporting.page.markup import esc

SCRIPT_FILE = Path(__file__).with_name("page.js")
STYLE_FILE = Path(__file__).with_name("page.css")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page_html(title: str, body: str, specs: dict[str, dict[str, Any]]) -> str:
    """A standalone page: `body` (HTML), the plot specs its figures name, the style and the
    drawing script inline, and a policy that lets it load nothing else."""
    script, style = SCRIPT_FILE.read_text(), STYLE_FILE.read_text()
    # JSON in a script element: "<" escaped so that no text in it can end the element.
    data = json.dumps(specs, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    policy = (f"default-src 'none'; script-src {_csp_hash(script)}; "
              f"style-src {_csp_hash(style)}; img-src data:")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{style}</style></head><body>{body}"
            f'<script type="application/json" id="plot-specs">{data}</script>'
            f"<script>{script}</script></body></html>\n")

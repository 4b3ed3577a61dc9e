"""The workspace report (`ctpipe report`): one HTML page that shows what the continuous-training
loop did and saw, for people who will not read metadata stores.

The page is a single file that needs no network: its style and the script that draws its
plots (`page.css`, `page.js`, inlined) travel with it, the plots' data is JSON
inside it, and a Content-Security-Policy lets the page load nothing else, so it can be mailed,
attached to a ticket or opened from a bucket as it is. The data is read from the workspace
without TensorFlow (`ctpipe.reporting.contents`), so the command takes seconds.

This module puts the page together; each section has its module: `runs` (the overview and each
run, with its `data` checks and `evaluation`), `history` (the model over time), `monitor`
(serving); `markup` holds what they are made of and `document` the standalone page around them.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from ctpipe.common.files import write_atomically
from ctpipe.reporting.contents import WorkspaceReport, read_workspace
from ctpipe.reporting.lineage import read_lineage
from ctpipe.reporting.page.document import page_html
from ctpipe.reporting.page.history import history_section
from ctpipe.reporting.page.markup import Page, esc
from ctpipe.reporting.page.monitor import monitor_section
from ctpipe.reporting.page.runs import overview, run_section


def _lineage(lines: list[str] | None) -> str:
    if not lines:
        return '<p class="note">Nothing pushed yet.</p>'
    return ("<details open><summary>Lineage of the newest pushed version (ctpipe lineage)"
            "</summary><pre>" + esc("\n".join(lines)) + "</pre></details>")


def render(report: WorkspaceReport, generated_at: dt.datetime,
           lineage: list[str] | None = None) -> tuple[str, int]:
    """The whole page as one string, and how many plots it holds; `lineage`: the newest
    pushed version's lineage lines."""
    page = Page()
    anchors = {run.summary.run_id: f"run-{i + 1}" for i, run in enumerate(report.runs)}
    newest = report.runs[-1].summary
    served = report.pushes[-1].version if report.pushes else "none"
    body = [
        "<h1>Continuous training report</h1>",
        f'<p class="meta">Workspace {esc(report.workspace)} · generated '
        f"{esc(generated_at.strftime('%Y-%m-%d %H:%M:%S %Z'))} · {len(report.runs)} runs · "
        f"latest run {esc(newest.state)} · newest pushed version {esc(served)}</p>",
        '<nav><a href="#overview">Runs</a><a href="#lineage">Lineage</a>'
        '<a href="#history">Model over time</a><a href="#monitor">Serving monitor</a>'
        '<a href="#details">Run details</a></nav>',
        '<h2 id="overview">Runs (newest first)</h2>', overview(report, anchors),
        '<h2 id="lineage">Lineage of the served version</h2>', _lineage(lineage),
        '<h2 id="history">Model over time</h2>', history_section(page, report, anchors),
        '<h2 id="monitor">Serving monitor</h2>', monitor_section(page, report),
        '<h2 id="details">Run details (newest first)</h2>',
    ]
    # Open: the newest run, and the newest that evaluated a model (not cached).
    opened = {report.runs[-1].summary.run_id} | {
        next((r.summary.run_id for r in reversed(report.runs) if r.evaluation), "")}
    body += [run_section(page, run, anchors, run.summary.run_id in opened)
             for run in reversed(report.runs)]
    return (page_html(f"ctpipe report: {report.workspace.name}", "".join(body), page.specs),
            len(page.specs))


def write_report(workspace: Path, out: Path) -> tuple[int, int]:
    """Writes the page for `workspace` to `out` (atomically); returns (runs, plots)."""
    report = read_workspace(workspace)
    lineage = (read_lineage(workspace, report.pushes[-1].version).lines() if report.pushes
               else None)
    text, plots = render(report, dt.datetime.now(dt.timezone.utc), lineage)
    write_atomically(str(out), text)
    return len(report.runs), plots

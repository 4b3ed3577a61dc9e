"""The README and docs/ as a reader meets them: short enough to read, every page reachable from
the README, no link or repository path that leads nowhere. Reads files only (fast)."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 350

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# A path in backticks that starts at one of the repository's top-level folders, e.g.
# `pipeline/kubeflow/runner.py` or `tests/containers/`; what follows a space, a colon or
# a glob character is not a path.
TOP_LEVEL = sorted(p.name for p in REPO.iterdir() if p.is_dir() and not p.name.startswith("."))
REPO_PATH = re.compile(r"`((?:%s)/[\w./-]*)`" % "|".join(map(re.escape, TOP_LEVEL)))
# Files the build makes (git-ignored): named in the docs, absent from a clean checkout; and
# everything under build/, where the image's base, benchmarks and the demo write.
GENERATED = {"serving/client/tf_serving_protos.binpb"}
BUILD_OUTPUTS = "build/"


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def without_code_blocks(text: str) -> str:
    """The text outside ``` fences: commands in examples name paths of a user's machine."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def relative_links(page: Path) -> list[str]:
    links = LINK.findall(without_code_blocks(page.read_text()))
    return [link for link in links if not re.match(r"[a-z][a-z0-9+.-]*:", link)]


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}"


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to
    hyphens."""
    headings = re.findall(r"^#+ (.+)$", without_code_blocks(page.read_text()), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_relative_links_resolve():
    broken = []
    for page in pages():
        for link in relative_links(page):
            target, _, anchor = link.partition("#")
            path = page.parent / target if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)}: {link} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{page.relative_to(REPO)}: {link} (no such heading)")
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


def test_every_page_is_reachable_from_the_readme():
    reached, queue = {README}, [README]
    while queue:
        page = queue.pop()
        for link in relative_links(page):
            target = (page.parent / link.split("#", 1)[0]).resolve()
            if target.suffix == ".md" and target.exists() and target not in reached:
                reached.add(target)
                queue.append(target)
    unreached = [p.relative_to(REPO).as_posix() for p in pages() if p.resolve() not in reached]
    assert not unreached, f"pages no link from README.md leads to: {unreached}"


def test_repository_paths_exist():
    missing = []
    for page in pages():
        for path in REPO_PATH.findall(without_code_blocks(page.read_text())):
            path = path.rstrip(".")
            if (path not in GENERATED and not path.startswith(BUILD_OUTPUTS)
                    and not (REPO / path).exists()):
                missing.append(f"{page.relative_to(REPO)}: {path}")
    assert not missing, "paths in the docs that the repository does not hold:\n" + "\n".join(
        missing)


def test_the_checks_see_links_and_headings(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Offline scoring: `ctpipe score`\n[a](missing.md#x) [b](https://example.com)"
                    "\n```\n[c](in-code.md)\n# not a heading\n```\n")
    assert relative_links(page) == ["missing.md#x"]
    assert anchors(page) == {"offline-scoring-ctpipe-score"}

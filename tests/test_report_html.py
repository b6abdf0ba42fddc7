"""report.html from ``evaluate`` and ``compare``: self-contained, parsed as HTML, and rendered in
headless Chromium (Debian's ``chromium``) the way a person opens it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import toy_texts, write_csv

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


class Page(HTMLParser):
    """Collects what the tests check: ids, image sources, external references, tables."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.external: list[str] = []
        self.tables = 0
        self.highlight_spans = 0

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("data:", "#")):
                self.external.append(a[key])
        self.tables += tag == "table"
        self.highlight_spans += tag == "span" and a.get("class") == "ch"


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and not os.environ.get("CI"):
        pytest.skip("chromium is not installed (CI installs it: apt-get install -y chromium)")
    assert found, "CI must have chromium (.ci/run installs it)"
    return found


def render(html: Path, tmp: Path) -> tuple[str, str, Path]:
    """Load ``html`` in headless Chromium: (DOM after scripts ran, console log lines, screenshot PNG)."""
    exe = chromium()
    url = html.resolve().as_uri()
    common = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}"]
    dom = subprocess.run([*common, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom",
                          url], capture_output=True, text=True, timeout=120)
    png = tmp / "report.png"
    subprocess.run([*common, f"--screenshot={png}", "--window-size=1280,1600", url], capture_output=True,
                   timeout=120, check=True)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    return dom.stdout, "\n".join(console), png


def _main(*args: str) -> None:
    from cls_app.commands import main

    assert main(list(args)) == 0


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    train = write_csv(root / "train.csv", *toy_texts(160, 1))
    texts, labels = toy_texts(40, 3)
    for i in (0, 5, 9):  # wrong gold labels: the model's errors on these rows
        labels[i] = "负面" if labels[i] == "正面" else "正面"
    test = write_csv(root / "test.csv", texts, labels)
    _main("-q", "baseline", "--train", str(train), "--out", str(root / "baselines"), "--models", "char_lr", "char_nb")
    out = root / "eval"
    _main("-q", "evaluate", "--model", str(root / "baselines" / "char_lr"), "--data", str(test), "--out", str(out))
    cmp_out = root / "cmp"
    _main("-q", "compare", "--models", str(root / "baselines"), "--data", str(test), "--out", str(cmp_out))
    return {"eval": out, "compare": cmp_out}


def test_evaluate_report_html_is_self_contained(evaluated) -> None:
    page = parse(evaluated["eval"] / "report.html")
    assert not page.external
    assert len(page.images) >= 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert {"metrics", "errors", "calibration", "confusion-matrix", "js-status"} <= page.ids
    assert page.highlight_spans > 0  # the errors carry explain's character highlights


def test_report_html_carries_the_cjk_characters_it_uses_as_a_web_font(evaluated) -> None:
    import base64
    import io

    from fontTools.ttLib import TTFont

    html = (evaluated["eval"] / "report.html").read_text(encoding="utf-8")
    found = re.search(r"font-family:'cls-cjk';src:url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)", html)
    assert found, "no embedded CJK web font"
    cmap = TTFont(io.BytesIO(base64.b64decode(found.group(1)))).getBestCmap()
    assert {ord(c) for c in "正面负面"} <= set(cmap)  # the class names' characters
    assert len(found.group(1)) < 400_000  # a subset, not the 19 MB collection


def test_compare_report_html_has_table_and_chart(evaluated) -> None:
    page = parse(evaluated["compare"] / "report.html")
    assert not page.external and page.tables >= 1
    assert any(src.startswith("data:image/png;base64,") for src in page.images)
    assert "comparison" in page.ids


@pytest.mark.slow
def test_report_renders_in_chromium_without_script_errors(evaluated, tmp_path) -> None:
    dom, console, png = render(evaluated["eval"] / "report.html", tmp_path)
    assert console == ""  # no uncaught exception, no failed load
    assert 'data-ready="1"' in dom
    assert re.search(r'id="js-status"[^>]*>interactive: 3 error rows<', dom)
    assert 'data-cjk-font="1"' in dom  # the embedded subset of Noto Sans CJK loaded (no system CJK font needed)
    assert png.stat().st_size > 10_000
    dom, console, _ = render(evaluated["compare"] / "report.html", tmp_path)
    assert console == "" and 'data-ready="1"' in dom and re.search(r'id="js-status"[^>]*>interactive<', dom)

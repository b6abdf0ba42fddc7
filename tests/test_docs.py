"""The README and docs/ stay short, linked, complete and free of placeholders.

``python tests/test_docs.py`` rewrites docs/options.md from the CLI's help (after adding or changing a flag).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # when run as a script
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ROOT / "data" / "README.md", *DOCS]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Command name -> its parser, in the order the CLI registers them."""
    from cls_app.commands import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"run.py": parser, **sub.choices}


def options_page() -> str:
    """docs/options.md as the CLI's help makes it (wrapped at 100 columns)."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width
    try:
        parts = [
            "# Options of every command\n\n"
            "The help of `run.py` and of each command (`python run.py COMMAND --help`), written by\n"
            "`python tests/test_docs.py`; `tests/test_docs.py` fails when it differs from the CLI.\n"
        ]
        parts += [f"\n## {name}\n\n```\n{p.format_help()}```\n" for name, p in commands().items()]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "".join(parts)


def anchors(text: str) -> set[str]:
    """GitHub's anchors of the headings of a markdown text."""
    out = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", prose(text), flags=re.M):
        out.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return out


def test_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8")) <= 12_000


def test_docs_exist_and_readme_links_each() -> None:
    readme = README.read_text(encoding="utf-8")
    assert DOCS, "docs/*.md missing"
    unlinked = [p.name for p in DOCS if f"(docs/{p.name})" not in readme]
    assert not unlinked, f"docs pages not linked from README.md: {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_placeholders(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    found = re.findall(r"\b(?:TODO|TBD|XXX|FIXME|LONG_TEXT_TABLE)\b|placeholder", text, flags=re.I)
    assert not found, f"{page.name}: {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(prose(text)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: broken links {broken}"


def test_readme_has_an_example_of_every_command() -> None:
    readme = README.read_text(encoding="utf-8")
    names = [c for c in commands() if c != "run.py"]
    missing = [c for c in names if f"python run.py {c} " not in readme and f"python run.py {c}\n" not in readme]
    assert not missing, f"README.md has no example of: {missing}"


def test_readme_layout_names_every_subpackage_in_layer_order() -> None:
    from tests.test_layout import RANKS

    readme = README.read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    named = re.findall(r"^  (\w+)/\s+\S", layout[layout.index("\ncls_app/"):], flags=re.M)
    packages = sorted(p.parent.name for p in (ROOT / "cls_app").glob("*/__init__.py"))
    missing = [name for name in packages if name not in named]
    assert not missing, f"README layout lacks a line for the subpackages {missing}"
    unknown = [name for name in named if name not in RANKS and name not in packages]
    assert not unknown, f"README layout names subpackages that neither exist nor have a layer: {unknown}"
    ranks = [RANKS.get(name, -1) for name in named]
    assert ranks == sorted(ranks), f"README layout is not in layer order (low to high): {named}"


def test_options_page_is_the_help_of_every_command() -> None:
    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    expected = options_page()
    if page != expected:
        documented = set(re.findall(r"^## (\S+)$", page, flags=re.M))
        missing = [name for name in commands() if name not in documented]
        flags = set(FLAG.findall(expected)) - set(FLAG.findall(page))
        pytest.fail(f"docs/options.md differs from the CLI's help (run `python tests/test_docs.py`); "
                    f"commands missing: {missing}, flags missing: {sorted(flags)}")


def test_readme_and_docs_commands_parse() -> None:
    """Every ``python run.py ...`` line in a bash block of README.md and docs/ parses with the real CLI."""
    import shlex

    parser = commands()["run.py"]
    bad = []
    for page in PAGES:
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].strip()
                if "python run.py" not in line or line.startswith("#"):
                    continue
                argv = shlex.split(line.split("python run.py", 1)[1])
                argv = [a for a in argv if not (a.startswith("[") or a.endswith("]"))]  # optional parts
                try:
                    parser.parse_args(argv)
                except SystemExit:
                    bad.append(f"{page.name}: {line}")
    assert not bad, f"examples that the CLI rejects: {bad}"


if __name__ == "__main__":
    (ROOT / "docs" / "options.md").write_text(options_page(), encoding="utf-8")
    print("wrote docs/options.md")

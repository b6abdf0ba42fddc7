"""``report.html``: one self-contained page a person can open anywhere, offline.

Everything is inline: the CSS, a few lines of script (a filter box over the error table and
a ``data-ready`` mark the browser check reads), and the pictures as ``data:image/png;base64``
URIs, and the CJK characters it uses as a subset of the bundled Noto Sans CJK SC in a WOFF data URI
(Chinese class names render in a browser without a CJK font). No external fonts, scripts or images,
so the page needs no network.
"""

from __future__ import annotations

import base64
import functools
import html
import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

CSS = """
body{font-family:'cls-cjk','Noto Sans CJK SC','Noto Sans',Arial,sans-serif;margin:0;color:#1d2330;background:#f6f7fb}
header{background:#1f3b73;color:#fff;padding:18px 32px}header h1{margin:0;font-size:1.5em}
header p{margin:4px 0 0;opacity:.85}main{padding:16px 32px;max-width:1200px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:12px 20px;margin:14px 0;
overflow-x:auto}
h2{font-size:1.15em;margin:.3em 0 .6em;color:#1f3b73}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#eef2fb;border-radius:6px;padding:10px 16px;min-width:120px}
.card .v{font-size:1.6em;font-weight:700}.card .k{font-size:.8em;color:#566}
table{border-collapse:collapse;font-size:.9em}th,td{padding:4px 10px;border-bottom:1px solid #e3e6ee;text-align:right}
th{background:#f0f2f8}td.t,th.t{text-align:left}.best{font-weight:700;color:#0a6b2b}
figure{margin:0}figure img{max-width:620px;width:100%;border:1px solid #e3e6ee}
.ch{padding:0 1px;border-radius:2px}.text{font-size:1.1em;line-height:1.7}
input#filter{padding:4px 8px;margin-bottom:8px;width:300px}.muted{color:#667;font-size:.85em}
"""

SCRIPT = """
(function(){
  var box=document.getElementById('filter');
  if(box){box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    document.querySelectorAll('#error-table tbody tr').forEach(function(tr){
      tr.style.display=tr.textContent.toLowerCase().indexOf(q)>=0?'':'none';});
  });}
  var n=document.querySelectorAll('#error-table tbody tr').length;
  var s=document.getElementById('js-status');
  if(s){s.textContent=document.getElementById('error-table')?'interactive: '+n+' error rows':'interactive';}
  document.body.setAttribute('data-ready','1');
  if(document.fonts&&document.fonts.load){document.fonts.load("16px cls-cjk","\u4e2d").then(function(f){
    document.body.setAttribute('data-cjk-font',f.length?'1':'0');});}
})();
"""


def esc(value: object) -> str:
    return html.escape(str(value))


def image_uri(path: str | Path) -> str:
    """A PNG file as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure(path: str | Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return ""
    return (f'<figure><img alt="{esc(alt)}" src="{image_uri(path)}">'
            f'<figcaption class="muted">{esc(alt)}</figcaption></figure>')


def cards(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>' for k, v in items
    ) + "</div>"


def table(header: Sequence[str], rows: Sequence[Sequence[object]], table_id: str = "", text_cols: int = 1,
          bold: Sequence[Sequence[bool]] | None = None, raw: bool = False, left: Sequence[int] = ()) -> str:
    """An HTML table; the first ``text_cols`` columns and those in ``left`` left-aligned; :class:`Markup`
    cells are HTML already when ``raw``."""
    def cell(k: int, value: object, b: bool) -> str:
        cls = ' class="t"' if k < text_cols or k in left else ""
        body = str(value) if raw and isinstance(value, Markup) else esc(value)
        return f"<td{cls}>{'<span class=best>' + body + '</span>' if b else body}</td>"

    head = "".join(f'<th{" class=t" if k < text_cols or k in left else ""}>{esc(h)}</th>'
                   for k, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell(k, v, bool(bold and bold[i][k])) for k, v in enumerate(row)) + "</tr>"
        for i, row in enumerate(rows)
    )
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Markup(str):
    """A string that is HTML already (not escaped by :func:`table`)."""


WEB_FONT = "cls-cjk"
MAX_FONT_CHARS = 4000  # a page with more distinct CJK characters embeds the first ones only


def web_font_css(text: str) -> str:
    """An ``@font-face`` rule carrying the bundled Noto Sans CJK SC, cut down to the CJK characters of ``text``
    (a WOFF data URI of a few KB), so Chinese renders in a browser without a CJK font; "" when ``text`` has
    none or the font cannot be read."""
    chars = sorted({c for c in text if ord(c) > 0x2E7F})[:MAX_FONT_CHARS]
    if not chars:
        return ""
    try:
        return _font_face("".join(chars))
    except Exception as exc:  # the font package missing or unreadable: the page still works
        log.warning("report.html: no embedded CJK font (%s)", exc)
        return ""


@functools.lru_cache(maxsize=8)
def _font_face(chars: str) -> str:
    import io

    import noto_cjk_sans_otc
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(noto_cjk_sans_otc.FONT_PATH), lazy=True)
    font = next(f for f in collection.fonts if f["name"].getDebugName(1) == "Noto Sans CJK SC")
    options = subset.Options()
    options.flavor, options.name_IDs, options.layout_features = "woff", ["*"], []
    sub = subset.Subsetter(options)
    sub.populate(text=chars)
    sub.subset(font)
    buffer = io.BytesIO()
    font.flavor = "woff"
    font.save(buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"@font-face{{font-family:'{WEB_FONT}';src:url(data:font/woff;base64,{data}) format('woff')}}"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: header, then one ``<section>`` per (heading, HTML body); the CJK characters it uses
    carried in an embedded web font (:func:`web_font_css`)."""
    body = "".join(f'<section id="{esc(_slug(h))}"><h2>{esc(h)}</h2>{content}</section>' for h, content in sections)
    font = web_font_css(title + subtitle + body)
    return (
        '<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{font}{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p><p class="muted" id="js-status">static</p></header>'
        f"<main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def metric_cards(metrics: dict) -> str:
    items = [("accuracy", f"{metrics['accuracy']:.4f}"), ("macro-F1", f"{metrics['macro_f1']:.4f}"),
             ("weighted-F1", f"{metrics['weighted_f1']:.4f}")]
    for k in (2, 3):
        if f"top{k}_accuracy" in metrics:
            items.append((f"top-{k} accuracy", f"{metrics[f'top{k}_accuracy']:.4f}"))
    cal = metrics.get("calibration")
    if cal and cal.get("n"):
        items.append((f"ECE ({cal['bins']} bins)", f"{cal['ece']:.4f}"))
    items.append(("texts", f"{metrics['n']}"))
    errors = metrics.get("errors")
    if errors:
        items.append(("errors", f"{errors['count']}"))
    return cards(items)


def per_class_table(metrics: dict, labels: Sequence[str]) -> str:
    rows = [[name, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1-score']:.4f}", int(r["support"])]
            for name, r in ((n, metrics["per_class"][n]) for n in labels)]
    return table(["class", "precision", "recall", "F1", "support"], rows)


def pairs_table(pairs: Sequence[dict]) -> str:
    if not pairs:
        return "<p>No errors.</p>"
    rows = [[p["gold"], p["predicted"], p["count"], f"{p['share_of_gold']:.1%}",
             " | ".join(f"row {e['row']}: {e['text'][:40]}" for e in p["examples"][:2])] for p in pairs]
    return table(["gold", "predicted", "errors", "share of gold", "examples"], rows, text_cols=2, left=(4,))


def errors_table(errors, highlights: dict[int, str], limit: int) -> str:
    """The most confident errors; texts with explanation highlights where given (by row)."""
    if errors is None or not len(errors):
        return "<p>No errors.</p>"
    rows = []
    for r in errors.head(limit).itertuples():
        text = Markup(f'<span class="text">{highlights[r.row]}</span>') if r.row in highlights else r.text
        rows.append([r.row, text, r.gold, r.predicted, f"{r.probability:.3f}", f"{r.margin:.3f}"])
    note = (f'<p class="muted">The {min(limit, len(errors))} most confident of {len(errors)} errors '
            "(all in errors.csv). Highlighted texts: green characters pushed toward the predicted class, red "
            "against it (explain's scores).</p>")
    box = '<input id="filter" type="search" placeholder="filter rows (text, class)">'
    return note + box + table(["row", "text", "gold", "predicted", "probability", "margin"], rows, "error-table",
                              text_cols=4, raw=True)


def _number(col: str, value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if col == "texts_per_s":
        return f"{value:,.0f}"
    if col in ("train_seconds", "size_mb"):
        return f"{value:,.2f}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _markdown_bold(text: str) -> str:
    """The significance paragraph (Markdown ``**bold**``) as HTML."""
    parts = esc(text).split("**")
    return "".join(f"<b>{p}</b>" if k % 2 else p for k, p in enumerate(parts))


def comparison_page(title: str, subtitle: str, table, best: dict[str, list[int]], significance: str,
                    chart: str | Path | None, headers: dict[str, str]) -> str:
    """``report.html`` of ``compare``: the side-by-side table (best of each column in bold), the chart
    and the significance test."""
    cols = list(table.columns)
    rows, bold = [], []
    for i, row in table.iterrows():
        rows.append([row[c] if k < 2 else _number(c, row[c]) for k, c in enumerate(cols)])
        bold.append([i in best.get(c, []) for c in cols])
    sections = [
        ("comparison", table_markup(cols, rows, bold, headers)),
        ("chart", figure(chart, "accuracy, macro-F1 and weighted-F1 per model")),
        ("significance", f"<p>{_markdown_bold(significance)}</p>"),
    ]
    return page(title, subtitle, sections)


def table_markup(cols: Sequence[str], rows: Sequence[Sequence[object]], bold: Sequence[Sequence[bool]],
                 headers: dict[str, str]) -> str:
    return table([headers.get(c, c) for c in cols], rows, "comparison-table", text_cols=2, bold=bold)

"""Markdown (from the templates), HTML and PDF for each report and notice.

The PDF embeds NanumGothic (Debian's fonts-nanum) so Hangul renders on any
reader; without the font a Korean PDF would show empty boxes, so its absence is
an error that says how to install it, never a silent fallback.
"""
from __future__ import annotations

import html as html_lib
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt

FONT_DIRS = ("/usr/share/fonts/truetype/nanum", "/usr/share/fonts/nanum", "/usr/local/share/fonts/nanum")
FONT_ENV = "BREACHWATCH_FONT_DIR"
KST = timezone(timedelta(hours=9), "KST")


@dataclass(frozen=True)
class Document:
    id: str
    law: str
    title: str
    title_ko: str


DOCUMENTS = (
    Document("pipa_regulator", "PIPA Art. 34(3)", "Personal information breach report to the PIPC / KISA",
             "개인정보 유출 등 신고서"),
    Document("pipa_notice", "PIPA Art. 34(1)", "Notice to the people affected", "개인정보 유출 등 통지문"),
    Document("gdpr_art33", "GDPR Art. 33", "Notification of a personal data breach to the supervisory authority",
             "개인정보 침해 감독기관 통지 (GDPR 제33조)"),
    Document("gdpr_art34", "GDPR Art. 34", "Communication of a personal data breach to the data subjects",
             "정보주체에 대한 개인정보 침해 통지 (GDPR 제34조)"),
)
LANGUAGES = ("ko", "en")


class FontMissing(ValueError):
    """The Hangul font is not installed."""


def _kst(t: datetime | None) -> str:
    return t.astimezone(KST).strftime("%Y-%m-%d %H:%M KST") if t else "-"


def _utc(t: datetime | None) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if t else "-"


def _num(n: Any) -> str:
    return f"{int(n):,}" if n is not None else "-"


def _cell(v: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(v).replace("|", "\\|").replace("\n", " ")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("breachwatch.scope.reports", "templates"),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters.update(kst=_kst, utc=_utc, num=_num, cell=_cell)
    return env


def render_markdown(doc_id: str, lang: str, ctx: dict[str, Any], env: jinja2.Environment | None = None) -> str:
    doc = next(d for d in DOCUMENTS if d.id == doc_id)
    env = env or environment()
    return env.get_template(f"{doc_id}.{lang}.md.j2").render(doc=doc, lang=lang, **ctx)


_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
_CSS = """body{font-family:'NanumGothic','Noto Sans KR','Malgun Gothic',sans-serif;max-width:52rem;margin:2rem auto;
line-height:1.55;color:#111;padding:0 1rem}table{border-collapse:collapse;margin:.6rem 0}
th,td{border:1px solid #bbb;padding:.25rem .6rem;text-align:left}th{background:#f2f2f2}
h1{font-size:1.5rem;border-bottom:2px solid #222}h2{font-size:1.15rem;margin-top:1.6rem}strong{color:#000}"""


def to_html(markdown: str, title: str, lang: str) -> str:
    body = _MD.render(markdown)
    return (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html_lib.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


_TABLE = re.compile(r"<table>(.*?)</table>", re.DOTALL)
_ROW = re.compile(r"<tr>(.*?)</tr>", re.DOTALL)
_CELL = re.compile(r"<(t[hd])([^>]*)>(.*?)</t[hd]>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _ems(text: str) -> float:
    """Rough printed width: Hangul and other wide characters take about twice a Latin letter."""
    return sum(1.8 if ord(ch) >= 0x1100 else 1.0 for ch in text)


def _pdf_tables(html: str) -> str:
    """Column widths from the text each column holds, and left-aligned cells, for fpdf2's tables.

    Without widths fpdf2 splits a table evenly, so a column of long reasons and a column of
    'yes' get the same room.
    """
    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        rows = [_CELL.findall(r) for r in _ROW.findall(body)]
        ncol = max((len(r) for r in rows), default=0)
        if not ncol:
            return m.group(0)
        need = [4.0] * ncol
        for r in rows:
            for i, (_, _, text) in enumerate(r):
                words = html_lib.unescape(_TAG.sub("", text)).split()
                # A column is at least as wide as its longest word, and wants its whole text up to a cap.
                need[i] = max(need[i], min(30.0, _ems(" ".join(words))),
                              max((_ems(w) for w in words), default=0.0) * 1.3 + 1.5)
        total = sum(need)
        widths = [round(100 * n / total, 1) for n in need]
        first = [True]

        def cell(c: re.Match[str]) -> str:
            tag, attrs, text = c.group(1), c.group(2), c.group(3)
            align = "right" if "text-align:right" in attrs else "left"
            return f'<{tag} align="{align}">{text}</{tag}>'

        def row(r: re.Match[str]) -> str:
            cells = _CELL.sub(cell, r.group(1))
            if first[0]:
                first[0] = False
                it = iter(widths)
                cells = re.sub(r"<(t[hd]) ", lambda c: f'<{c.group(1)} width="{next(it)}%" ', cells)
            return f"<tr>{cells}</tr>"
        return f'<table width="100%">{_ROW.sub(row, body)}</table>'
    return _TABLE.sub(one, html)


def font_paths() -> tuple[str, str]:
    dirs = ([os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else []) + list(FONT_DIRS)
    for d in dirs:
        regular, bold = Path(d, "NanumGothic.ttf"), Path(d, "NanumGothicBold.ttf")
        if regular.exists():
            return str(regular), str(bold if bold.exists() else regular)
    raise FontMissing("the Hangul font NanumGothic.ttf is not installed, so Korean PDFs cannot be made. Fix: "
                      "'apt-get install fonts-nanum' (or 'make setup'), or set BREACHWATCH_FONT_DIR to a folder "
                      "holding NanumGothic.ttf.")


def to_pdf(markdown: str, title: str, path: str | Path) -> None:
    from fpdf import FPDF
    from fpdf.fonts import FontFace
    # fontTools reports every hinting table it drops while subsetting; that is expected.
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    regular, bold = font_paths()
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("breachwatch")
    for style, f in (("", regular), ("B", bold), ("I", regular), ("BI", bold)):
        pdf.add_font("NanumGothic", style, f)
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, 16)
    pdf.add_page()
    pdf.set_font("NanumGothic", size=10)
    black = (20, 20, 20)
    pdf.write_html(_pdf_tables(_MD.render(markdown)), font_family="NanumGothic", table_line_separators=True,
                   li_prefix_color=black, tag_styles={
                       "h1": FontFace(color=black, size_pt=17, emphasis="BOLD"),
                       "h2": FontFace(color=black, size_pt=13, emphasis="BOLD"),
                       "h3": FontFace(color=black, size_pt=11, emphasis="BOLD")})
    pdf.output(str(path))


def render_documents(ctx: dict[str, Any], out_dir: str | Path, *, pdf: bool = True) -> dict[str, str]:
    """Every document in both languages as .md, .html and .pdf; returns name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    files: dict[str, str] = {}
    for doc in DOCUMENTS:
        for lang in LANGUAGES:
            md = render_markdown(doc.id, lang, ctx, env)
            title = doc.title_ko if lang == "ko" else doc.title
            stem = f"{doc.id}.{lang}"
            (out / f"{stem}.md").write_text(md, "utf-8")
            (out / f"{stem}.html").write_text(to_html(md, title, lang), "utf-8")
            files[f"{stem}.md"], files[f"{stem}.html"] = str(out / f"{stem}.md"), str(out / f"{stem}.html")
            if pdf:
                to_pdf(md, title, out / f"{stem}.pdf")
                files[f"{stem}.pdf"] = str(out / f"{stem}.pdf")
    return files

"""Regulator reports and notices from a manifest: PIPA Art. 34 and GDPR Art. 33/34, in Korean and English.

Each document is a Jinja2 Markdown template per law and language under
`templates/`; `render.py` turns the Markdown into HTML and into a PDF with
Hangul embedded (Debian's fonts-nanum).
"""
from breachwatch.scope.reports.context import report_context
from breachwatch.scope.reports.render import DOCUMENTS, render_documents

__all__ = ["DOCUMENTS", "render_documents", "report_context"]

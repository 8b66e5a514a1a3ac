"""Reading back the PDFs the application makes (reports, invoices) with pypdf."""

from __future__ import annotations

import io

from pypdf import PdfReader


def read(pdf: bytes) -> tuple[PdfReader, str]:
    """The document and its text as one line: no-break spaces and line ends become spaces."""
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return reader, " ".join(text.replace("\u00a0", " ").split())

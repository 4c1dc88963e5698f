"""Knowledge-base PDFs written by the tests, in the Cyrillic font that make install provides."""

from pathlib import Path

from fpdf import FPDF

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def text_pdf(*paragraphs: str) -> bytes:
    """One page with the paragraphs as text a PDF reader extracts."""
    pdf = FPDF()
    pdf.add_font("Body", fname=str(FONT))
    pdf.set_font("Body", size=11)
    pdf.add_page()
    for paragraph in paragraphs:
        pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    return bytes(pdf.output())

"""The knowledge base in Chromium: a new PDF is uploaded and its passage found by "try a question"; a scan
without text is refused with that reason."""

from fpdf import FPDF
from pdfs import text_pdf
from playwright.async_api import expect

# The PDF is read in a freshly started process (services/knowledge_upload.py): seconds on a busy machine.
READ_PDF_MS = 60_000
BRANCH = "Новый филиал «СкладПро» открыт в Актау, ул. Портовая 12, с 9 до 18."


def scanned_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    for row in range(10):
        pdf.rect(20, 20 + row * 12, 160, 5, style="F")
    return bytes(pdf.output())


async def test_an_uploaded_pdf_is_found_by_a_question(console):
    await console.get_by_role("link", name="База знаний").click()
    await expect(console.locator('tr[data-file="pricing.pdf"]')).to_be_visible()

    await console.get_by_label("Добавить PDF").set_input_files(
        {"name": "aktau.pdf", "mimeType": "application/pdf", "buffer": text_pdf("Филиалы", BRANCH)}
    )
    await console.get_by_role("button", name="Загрузить").click(no_wait_after=True)

    await expect(console.get_by_role("status")).to_have_text(
        "PDF «aktau.pdf» добавлен, база знаний переиндексирована.", timeout=READ_PDF_MS
    )
    row = console.locator('tr[data-file="aktau.pdf"]')
    await expect(row.locator("td").nth(1)).to_have_text("1")
    await console.get_by_label("Вопрос клиента").fill("Есть ли у вас филиал в Актау?")
    await console.get_by_role("button", name="Найти").click()
    first = console.locator("ol.passages > li").first
    await expect(first).to_contain_text("aktau.pdf, стр. 1")
    await expect(first).to_contain_text("ул. Портовая 12")


async def test_a_scan_without_text_is_refused_with_the_reason(console):
    await console.goto("/console/knowledge")
    await console.get_by_label("Добавить PDF").set_input_files(
        {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": scanned_pdf()}
    )
    await console.get_by_role("button", name="Загрузить").click(no_wait_after=True)

    await expect(console.get_by_role("alert")).to_contain_text(
        "В PDF нет текста, который можно извлечь", timeout=READ_PDF_MS
    )
    await expect(console.get_by_role("alert")).to_contain_text("похоже, это скан")
    await console.get_by_role("link", name="Вернуться").click()
    await expect(console.locator('tr[data-file="scan.pdf"]')).to_have_count(0)

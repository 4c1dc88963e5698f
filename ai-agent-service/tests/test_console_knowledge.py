"""The console's knowledge-base page: the PDFs listed with pages, chunks and when indexed; a new PDF taken and
found at once; a replaced PDF's new text found and its old text gone; what is not a usable PDF refused with
the reason (not a PDF, damaged, too large, a scan without text) and the base left as it was."""

import shutil
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fpdf import FPDF

from tests.conftest import SERVICE_DIR
from tests.console_client import console_app, csrf_of
from tests.test_knowledge_base import pdf_bytes

TRUCKS = "Доставка грузовиком по Шымкенту стоит 7 700 ₸ за рейс."


def scanned_pdf() -> bytes:
    """Pages of pictures only, as a scanner makes them: nothing to extract."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(40, 40, 40)
    for row in range(20):
        pdf.rect(20, 20 + row * 10, 150, 4, style="F")
    return bytes(pdf.output())


@pytest.fixture
async def app(settings, db, broker, queues, tmp_path) -> AsyncIterator[FastAPI]:
    folder = tmp_path / "kb"
    shutil.copytree(SERVICE_DIR / "knowledge_base", folder, ignore=shutil.ignore_patterns(".cache"))
    async with console_app(settings, KNOWLEDGE_BASE_PATH=folder, CONSOLE_MAX_PDF_MB=0.05) as app:
        yield app


async def upload(client: httpx.AsyncClient, content: bytes, name: str, path: str = "/console/knowledge"):
    token = await csrf_of(client, "/console/knowledge")
    return await client.post(
        path, data={"csrf_token": token}, files={"file": (name, content, "application/pdf")}
    )


async def test_the_pdfs_are_listed_with_pages_chunks_and_when_indexed(operator):
    page = (await operator.get("/console/knowledge")).text

    for name in ("faq.pdf", "pricing.pdf", "product_info.pdf"):
        row = page.split(f'<tr data-file="{name}">')[1].split("</tr>")[0]
        cells = row.split("<td>")
        assert int(cells[2].split("<")[0]) >= 1 and int(cells[3].split("<")[0].split()[0]) >= 1
        assert "15:00" in row  # indexed at the service's start, on its clock


async def test_a_new_pdf_is_indexed_and_its_passage_found(operator):
    added = await upload(operator, pdf_bytes(TRUCKS, pages=2), "доставка_юг.pdf")
    listed = await operator.get(added.headers["location"])
    tried = await operator.get("/console/knowledge", params={"q": "доставка грузовиком Шымкент"})

    assert added.status_code == 303
    assert "PDF «доставка_юг.pdf» добавлен" in listed.text
    row = listed.text.split('<tr data-file="доставка_юг.pdf">')[1].split("</tr>")[0]
    assert "<td>2</td>" in row
    first = tried.text.split('<ol class="passages">')[1].split("</li>")[0]
    assert "доставка_юг.pdf, стр. 1" in first and "7 700 ₸" in first


async def test_a_replaced_pdf_answers_with_its_new_text(operator):
    await upload(operator, pdf_bytes(TRUCKS), "доставка_юг.pdf")
    replaced = await upload(
        operator,
        pdf_bytes("Доставка грузовиком по Шымкенту теперь 9 900 ₸ за рейс."),
        "любое_имя.pdf",
        "/console/knowledge/доставка_юг.pdf/replace",
    )
    tried = await operator.get("/console/knowledge", params={"q": "доставка грузовиком Шымкент"})

    assert replaced.headers["location"].startswith("/console/knowledge?done=replaced")
    assert "9 900 ₸" in tried.text and "7 700 ₸" not in tried.text


@pytest.mark.parametrize(
    ("content", "name", "status", "reason"),
    [
        (b"just some words", "notes.pdf", 422, "Это не PDF"),
        (b"%PDF-1.7\n garbage that is no PDF at all", "broken.pdf", 422, "повреждён"),
        (pdf_bytes(TRUCKS) + b"%" + bytes(60_000), "big.pdf", 422, "больше допустимого размера (0.05 МБ)"),
        (scanned_pdf(), "scan.pdf", 422, "похоже, это скан"),
        (pdf_bytes(TRUCKS), "notes.txt", 422, "только PDF"),
        (pdf_bytes(TRUCKS), "faq.pdf", 409, "уже есть"),
    ],
)
async def test_what_is_not_a_usable_pdf_is_refused_with_the_reason(
    operator, app, content, name, status, reason
):
    folder = app.state.runtime.settings.KNOWLEDGE_BASE_PATH
    before = sorted(path.name for path in folder.iterdir())

    refused = await upload(operator, content, name)

    assert refused.status_code == status
    assert "PDF не принят" in refused.text or status == 409
    assert reason in refused.text
    assert sorted(path.name for path in folder.iterdir()) == before  # nothing left behind


async def test_uploading_needs_the_csrf_token(operator):
    refused = await operator.post(
        "/console/knowledge", files={"file": ("x.pdf", pdf_bytes(TRUCKS), "application/pdf")}
    )

    assert refused.status_code == 403

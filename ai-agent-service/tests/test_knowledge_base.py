import shutil
import subprocess
import sys
import time
from pathlib import Path

import pdfplumber
import pytest
from fpdf import FPDF
from loguru import logger

from services.knowledge_base import KnowledgeBase
from services.knowledge_index import format_chunks, tokenize

SERVICE = Path(__file__).resolve().parent.parent
SHIPPED = SERVICE / "knowledge_base"
SCRIPT = SERVICE / "scripts" / "make_knowledge_base.py"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PRICE_QUESTION = "Сколько стоит тариф Старт?"
START_PRICE = "Тариф Старт — 15 000 ₸ в месяц"


@pytest.fixture
def kb_dir(tmp_path):
    folder = tmp_path / "kb"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns(".cache"))
    return folder


@pytest.fixture
def warnings():
    messages: list[str] = []
    handler = logger.add(messages.append, level="WARNING", format="{message}")
    yield messages
    logger.remove(handler)


@pytest.fixture(scope="module")
def large_base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kb300")
    subprocess.run([sys.executable, str(SCRIPT), "--pages", "300", "--out", str(folder)], check=True)
    return folder


def pdf_bytes(*paragraphs: str, pages: int = 1) -> bytes:
    """`pages` pages, each with the paragraphs as text a PDF reader extracts."""
    pdf = FPDF()
    pdf.add_font("Body", fname=str(FONT))
    pdf.set_font("Body", size=11)
    for _ in range(pages):
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    return bytes(pdf.output())


def write_pdf(path: Path, *paragraphs: str) -> None:
    path.write_bytes(pdf_bytes(*paragraphs))


def pdf_text(path: Path) -> str:
    with pdfplumber.open(path) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


def wait_for_refresh_window() -> None:
    time.sleep(1.1)  # search looks at the folder at most once per second


def test_shipped_pdfs_hold_readable_russian_text():
    pricing = pdf_text(SHIPPED / "pricing.pdf")
    assert START_PRICE in pricing
    assert "Тариф Бизнес — 35 000 ₸ в месяц" in pricing
    assert "скидка 10%" in pricing
    product = pdf_text(SHIPPED / "product_info.pdf")
    assert "ТОО «СкладПро»" in product and "1С:Бухгалтерия" in product and "Kaspi.kz" in product
    faq = pdf_text(SHIPPED / "faq.pdf")
    assert sum(line.endswith("?") for line in faq.splitlines()) >= 10
    with pdfplumber.open(SHIPPED / "product_info.pdf") as pdf:
        assert 2 <= len(pdf.pages) <= 3


def test_shipped_pdfs_are_indexed_with_the_same_words_pdfplumber_reads():
    kb = KnowledgeBase(SHIPPED)
    assert kb.chunk_count > 0
    for name in ("product_info.pdf", "pricing.pdf", "faq.pdf"):
        chunks = [chunk for chunk in kb.chunks if chunk.source == name]
        assert chunks, name
        assert all(len(chunk.text) <= kb.chunk_chars for chunk in chunks)
        indexed = set(tokenize("\n".join(chunk.text for chunk in chunks)))
        assert indexed == set(tokenize(pdf_text(SHIPPED / name))), name


def test_committed_pdfs_match_the_script(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("product_info.pdf", "pricing.pdf", "faq.pdf"):
        assert pdf_text(tmp_path / name) == pdf_text(SHIPPED / name), f"re-run {SCRIPT.name}, commit {name}"


def test_script_names_a_missing_font(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--font", str(tmp_path / "none.ttf"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Font not found" in result.stderr and "none.ttf" in result.stderr


def test_price_question_finds_the_pricing_chunk_first():
    kb = KnowledgeBase(SHIPPED)
    found = kb.search(PRICE_QUESTION)
    assert 1 <= len(found) <= 4
    assert found[0].source == "pricing.pdf" and found[0].page == 1
    assert START_PRICE in found[0].text
    prompt_part = format_chunks(found)
    assert prompt_part.startswith(f"[pricing.pdf, стр. 1]\n{START_PRICE}")
    assert "15 000 ₸" in prompt_part


@pytest.mark.parametrize(
    ("question", "source", "expected"),
    [
        ("У вас есть интеграция с 1С?", "faq.pdf", "Работает ли «СкладПро» с 1С?"),
        ("а с каспи работаете?", "faq.pdf", "Есть ли интеграция с Kaspi.kz?"),
        ("Где хранятся наши данные?", "faq.pdf", "дата-центре в г. Алматы"),
        ("есть скидка при оплате за год?", "pricing.pdf", "скидка 10%"),
        ("Сәлеметсіз бе! Старт тарифінің бағасы қанша?", "pricing.pdf", START_PRICE),  # Kazakh
        ("Жылдық төлемге жеңілдік бар ма?", "pricing.pdf", "скидка 10%"),
    ],
)
def test_questions_find_the_section_that_answers_them(question, source, expected):
    best = KnowledgeBase(SHIPPED).search(question, limit=1)
    assert [chunk.source for chunk in best] == [source]
    assert expected in best[0].text


def test_no_matching_terms_means_no_chunks():
    kb = KnowledgeBase(SHIPPED)
    assert kb.search("Здравствуйте! Как дела?") == []
    assert kb.search("") == []
    assert format_chunks([]) == "(нет подходящих сведений в базе знаний)"


def test_chunks_are_separated_by_blank_lines_with_their_source():
    found = KnowledgeBase(SHIPPED).search("тарифы Старт Бизнес Профи", limit=3)
    blocks = format_chunks(found).split("\n\n")
    assert len(blocks) == 3
    assert all(block.startswith("[pricing.pdf, стр. ") for block in blocks)


def test_added_and_removed_pdfs_are_picked_up_without_a_new_object(kb_dir):
    kb = KnowledgeBase(kb_dir)
    before = kb.chunk_count
    question = "Есть ли у вас филиал в Караганде?"
    assert kb.search(question) == []

    write_pdf(kb_dir / "branches.pdf", "Филиалы", "Филиал «СкладПро» в Караганде открыт с марта 2026 года.")
    wait_for_refresh_window()
    found = kb.search(question)
    assert [chunk.source for chunk in found] == ["branches.pdf"]
    assert kb.chunk_count > before

    (kb_dir / "branches.pdf").unlink()
    wait_for_refresh_window()
    assert kb.search(question) == []
    assert kb.chunk_count == before


def test_changed_pdf_is_reindexed_and_unchanged_folder_is_not(kb_dir):
    kb = KnowledgeBase(kb_dir)
    assert kb.refresh() is False
    write_pdf(kb_dir / "pricing.pdf", "Тариф Старт — 19 000 ₸ в месяц")
    assert kb.refresh() is True
    assert "19 000 ₸" in format_chunks(kb.search(PRICE_QUESTION))
    assert "15 000 ₸" not in format_chunks(kb.search(PRICE_QUESTION))
    assert kb.refresh() is False


def test_unreadable_pdf_is_skipped_with_a_warning(kb_dir, warnings):
    (kb_dir / "bad.pdf").write_bytes(b"\x00\x13 this is not a PDF at all \xff" * 50)
    kb = KnowledgeBase(kb_dir)
    assert any("bad.pdf" in message for message in warnings)
    assert {chunk.source for chunk in kb.chunks} == {"product_info.pdf", "pricing.pdf", "faq.pdf"}
    assert START_PRICE in kb.search(PRICE_QUESTION)[0].text


def test_missing_folder_is_empty_until_it_appears(tmp_path, warnings):
    folder = tmp_path / "later"
    kb = KnowledgeBase(folder)
    assert kb.chunk_count == 0
    assert kb.search(PRICE_QUESTION) == []
    assert any("later" in message for message in warnings)

    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns(".cache"))
    wait_for_refresh_window()
    assert kb.search(PRICE_QUESTION)[0].source == "pricing.pdf"


def test_300_pages_index_in_seconds_and_prompt_size_stays_flat(large_base):
    with pdfplumber.open(large_base / "articles.pdf") as pdf:
        assert len(pdf.pages) == 300

    started = time.perf_counter()
    kb = KnowledgeBase(large_base)
    elapsed = time.perf_counter() - started
    assert elapsed < 8, f"indexing 300 pages took {elapsed:.1f}s"
    assert kb.chunk_count > 300

    found = kb.search(PRICE_QUESTION)
    assert len(found) <= 4
    assert START_PRICE in found[0].text
    long_query = " ".join(["инвентаризация приёмка остатки склад поставщик"] * 200)
    assert len(kb.search(long_query)) == 4
    assert len(kb.search(long_query, limit=2)) == 2

    small = format_chunks(KnowledgeBase(SHIPPED).search(long_query))
    large = format_chunks(kb.search(long_query))
    bound = 4 * (kb.chunk_chars + len("[articles.pdf, стр. 300]\n\n"))
    assert len(small) <= bound and len(large) <= bound


def test_with_the_cache_on_a_restart_reads_no_pdf_again(kb_dir, monkeypatch):
    write_pdf(kb_dir / "tariffs.pdf", "Тариф Старт — 15 000 ₸ в месяц")
    first = KnowledgeBase(kb_dir, cache_enabled=True)
    assert "Тариф Старт — 15 000 ₸ в месяц" in [c.text for c in first.chunks]
    assert len(list((kb_dir / ".cache").glob("*.json"))) == len(list(kb_dir.glob("*.pdf")))

    def no_pdf_reading(*args, **kwargs):
        raise AssertionError("a cached PDF was read again")

    monkeypatch.setattr("services.knowledge_base._read_pdf_pages", no_pdf_reading)
    again = KnowledgeBase(kb_dir, cache_enabled=True)
    assert again.chunks == first.chunks


def test_with_the_cache_off_nothing_is_written_beside_the_pdfs(kb_dir):
    write_pdf(kb_dir / "tariffs.pdf", "Тариф Старт — 15 000 ₸ в месяц")

    KnowledgeBase(kb_dir, cache_enabled=False)

    assert not (kb_dir / ".cache").exists()

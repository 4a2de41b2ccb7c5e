import pytest

from evalsets import Document
from pipelines.chunking import (
    FixedSizeChunker,
    MarkdownChunker,
    ParagraphChunker,
    SentenceChunker,
    WholeDocumentChunker,
    sentence_spans,
)

KOREAN = ("1989년 2월 15일 여의도 농민 폭력 시위를 주도한 혐의로 지명수배되었다. "
          "1989년 3월 12일 서울지방검찰청 공안부는 임종석의 사전구속영장을 발부받았다. "
          "같은 해 6월 30일 평양축전에 임수경을 대표로 파견하여 국가보안법위반 혐의가 추가되었다")


def test_whole_document_prepends_title_and_maps_back():
    doc = Document("d1", "Title", "Body text.")
    (chunk,) = WholeDocumentChunker().chunk(doc)
    assert (chunk.chunk_id, chunk.doc_id, chunk.text) == ("d1#0", "d1", "Title\nBody text.")
    assert WholeDocumentChunker(include_title=False).chunk(doc)[0].text == "Body text."


def test_fixed_chars_windows_overlap_and_cover_the_text():
    text = "".join(chr(ord("a") + i % 26) for i in range(100))
    spans = FixedSizeChunker(30, 10, "chars").spans(text)
    assert spans[0] == (0, 30) and spans[1] == (20, 50)
    assert spans[-1][1] == 100
    assert all(b[0] == a[1] - 10 for a, b in zip(spans, spans[1:]))


def test_fixed_tokens_counts_whitespace_tokens():
    text = " ".join(f"w{i}" for i in range(25))
    chunks = FixedSizeChunker(10, 2, "tokens", include_title=False).chunk(Document("d", "", text))
    assert [len(c.text.split()) for c in chunks] == [10, 10, 9]
    assert chunks[1].text.split()[0] == "w8"
    with pytest.raises(ValueError, match="overlap"):
        FixedSizeChunker(10, 10)


def test_korean_sentences_split_with_kiwi():
    sentences = [KOREAN[a:b] for a, b in sentence_spans(KOREAN)]
    assert len(sentences) == 3
    assert sentences[1].startswith("1989년 3월 12일") and sentences[1].endswith("발부받았다.")


def test_english_sentences_and_packing_with_overlap():
    text = "First one is here. Second one follows. Third is last. Fourth ends it."
    assert len(sentence_spans(text)) == 4
    chunks = SentenceChunker(40, overlap=1, include_title=False).chunk(Document("d", "", text))
    assert chunks[0].text == "First one is here. Second one follows."
    assert chunks[1].text.startswith("Second one follows.")  # one sentence repeated
    assert all(len(c.text) <= 40 for c in chunks)


def test_paragraphs_pack_and_long_paragraphs_split_by_sentence():
    text = "Para one.\n\nPara two.\n\n" + " ".join(["A long sentence here."] * 10)
    chunks = ParagraphChunker(60, include_title=False).chunk(Document("d", "", text))
    assert chunks[0].text.startswith("Para one.\n\nPara two.")  # packed with what still fits
    assert all(len(c.text) <= 60 for c in chunks)
    assert "".join(c.text for c in chunks).count("A long sentence here.") == 10


def test_markdown_sections_start_at_headings():
    text = "Intro line.\n# Setup\nInstall it.\n## Usage\nRun it.\n"
    chunks = MarkdownChunker(1000, include_title=False).chunk(Document("d", "", text))
    assert [c.text.splitlines()[0] for c in chunks] == ["Intro line.", "# Setup", "## Usage"]
    assert {c.doc_id for c in chunks} == {"d"}
    assert [c.chunk_id for c in chunks] == ["d#0", "d#1", "d#2"]


def test_empty_text_still_yields_one_chunk():
    assert len(SentenceChunker(100).chunk(Document("d", "Only a title", ""))) == 1

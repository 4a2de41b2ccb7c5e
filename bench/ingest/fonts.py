"""The Korean font the generated PDFs are written in, shared by the ingest benches and tests."""

from __future__ import annotations

from pathlib import Path


def korean_font() -> str:
    """NanumGothic as koreanize-matplotlib ships it (OFL): a Hangul TrueType font fpdf2 can embed, no download."""
    import koreanize_matplotlib

    return str(Path(koreanize_matplotlib.__file__).parent / "fonts" / "NanumGothic.ttf")

"""Word spaces for PDF pages whose Korean words run together, read again from where the glyphs stand.

PDFs exported from HWP, and pdfTeX/Quartz PDFs set with Hangul subfonts, write no space characters: each syllable
or word is placed on its own, a gap apart. pypdf's plain extraction turns a gap into a space only when it is wider
than the font's space glyph, and these fonts have none (pypdf then takes half the font's average width) or a full-width
syllable in the space's code (0.95 em), so "11월 코스피는" comes out "11월코스피는". This module walks the page's text
operators (form XObjects included, which pypdf's layout mode skips), measures each gap in the current font size
and writes a space where the gap is wider than :data:`WORD_GAP` of an em (as pdftotext does, measuring gaps). Lines follow the
content stream's order, so a two-column page stays column by column (layout mode, which sorts by position,
interleaves the columns).

pypdf's layout-mode state classes do the font decoding and the text-matrix arithmetic. They are private API: pypdf is
pinned in pyproject.toml, and tests/evalsets/test_ingest_pdf_spacing.py fails if an upgrade changes them (a walker
that raises only costs the re-read: the page keeps its plain reading).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from evalsets.text import HANGUL, HANGUL_RUN, hangul_run_of_a_syllable

RUN_TOGETHER = 3.2
"""A page whose average Hangul syllable sits in a run longer than this (:func:`hangul_run_of_a_syllable`) may have
lost word spaces and is read again. Measured per page against pdftotext on the 17 Korean PDFs of Debian's
texlive-lang-korean 2022.20230122-1 (279 pages with 20+ syllables; bench/ingest/pdf_spacing.py has the per-file
numbers):
on the 195 pages whose word recall the re-read does not raise by 0.05 it is 2.2-3.9 (median 3.2); on the 84 it
raises 2.0-16.8 (median 7.5; the issue's HWP export has a mean run of 9.0). Above 3.2, 160 of the 279 pages are read
twice and 4 of the 84 are missed (tables and short lines; their plain reading keeps 0.78-0.98 word recall). The plain
mean run, the issue's first idea, misses pages whose prose runs together between tables of contents and numbers
(mean 2.2-2.9 at word recall 0.43-0.79)."""
MORE_WORDS = 1.03
"""The re-read replaces the plain reading only when it splits the page's Hangul into at least this many times as many
runs (keeping its syllables): on the 195 pages above it makes 1.00-1.04 times as many, on the 84 it improves 1.16
times or more in nine cases of ten. Of the pages this lets through, none reads worse (word recall down by 0.01)."""
WORD_GAP = 0.15
"""A gap wider than this share of the font size between two glyph runs on one line is a word space. Word recall of
the gap reading against pdftotext on six of the Korean PDFs above is the same for 0.08, 0.10 and 0.15 (0.984-1.000),
drops a little at 0.20 and far at 0.25 (to 0.79 and 0.81 on two files): Korean word gaps there are 0.22-0.36 em."""
MIN_HANGUL = 20
"""Pages with fewer Hangul syllables are not judged: a mean over three words says nothing."""


def needs_spacing(text: str) -> bool:
    """True when ``text`` (one page, plain extraction) holds Korean whose words run together."""
    return len(HANGUL.findall(text)) >= MIN_HANGUL and hangul_run_of_a_syllable(text) > RUN_TOGETHER


def respaced(page: Any, plain: str) -> str | None:
    """The page read again with spaces from glyph gaps, or None when that reading is not better than ``plain``
    (fewer Hangul syllables, say from a font it cannot decode, or hardly more words)."""
    try:
        text = _gap_text(page)
    except Exception:  # noqa: BLE001 - a content stream this walker trips on keeps its plain reading
        return None
    if len(HANGUL.findall(text)) < 0.99 * len(HANGUL.findall(plain)) \
            or len(HANGUL_RUN.findall(text)) < MORE_WORDS * len(HANGUL_RUN.findall(plain)):
        return None
    return text


def _gap_text(page: Any) -> str:
    lines: list[str] = []
    line = ""
    last = None
    for text, x, y, end, height in _pieces(page, page.pdf):
        if not text:
            continue
        if last is not None:
            _, _, last_y, last_end, last_height = last
            size = min(height, last_height) or 1.0
            if abs(y - last_y) > 0.5 * size:  # another baseline: a new line (sub/superscripts move less)
                lines.append(line)
                line = ""
            else:  # a gap wider than a word space, or a jump back along the baseline, separates two words
                gap = x - last_end
                if (gap > WORD_GAP * size or gap < -3 * size) and not line.endswith(" ") \
                        and not text.startswith(" "):
                    line += " "
        line += text
        last = (text, x, y, end, height)
    lines.append(line)
    return "\n".join(re.sub(r"[ \t]{2,}", " ", one).strip() for one in lines if one.strip())


def _pieces(page: Any, pdf: Any) -> Iterator[tuple[str, float, float, float, float]]:
    """(text, x start, baseline y, x end, font height) for each string shown, in content-stream order."""
    from pypdf._text_extraction._layout_mode._fixed_width_page import resolve_font
    from pypdf._text_extraction._layout_mode._text_state_manager import TextStateManager
    from pypdf.generic import ArrayObject, ContentStream, DictionaryObject
    from pypdf.generic._font import Font

    def fonts_of(resources: Any, prefix: str) -> dict[str, Font]:
        fonts: dict[str, Font] = {}
        table = resources.get("/Font") if isinstance(resources, DictionaryObject) else None
        table = table.get_object() if table is not None else None
        if isinstance(table, DictionaryObject):
            for name, ref in table.items():
                font = ref.get_object()
                if isinstance(font, DictionaryObject):
                    fonts[prefix + name] = Font.from_font_resource(font)
        return fonts

    def operations(owner: Any, resources: Any, prefix: str, fonts: dict[str, Font], depth: int) -> Iterator:
        """Operators of ``owner``'s content, with each form XObject it draws inlined (q, its /Matrix cm, its
        operators with font names made unique, Q)."""
        fonts.update(fonts_of(resources, prefix))
        contents = owner.get("/Contents") if prefix == "" else owner
        if contents is None:
            return
        contents = contents.get_object()
        xobjects = resources.get("/XObject") if isinstance(resources, DictionaryObject) else None
        xobjects = xobjects.get_object() if xobjects is not None else None
        for operands, op in ContentStream(contents, pdf, "bytes").operations:
            if op == b"Tf" and operands:
                operands = [prefix + operands[0], *operands[1:]]
            if op == b"Do" and depth < 8 and isinstance(xobjects, DictionaryObject) and operands \
                    and operands[0] in xobjects:
                form = xobjects[operands[0]].get_object()
                if form.get("/Subtype") != "/Form":
                    continue
                inner = form.get("/Resources")
                inner = inner.get_object() if inner is not None else resources
                yield [], b"q"
                yield [float(v) for v in form.get("/Matrix", [1, 0, 0, 1, 0, 0])], b"cm"
                yield from operations(form, inner, f"{prefix}{operands[0]}/", fonts, depth + 1)
                yield [], b"Q"
                continue
            yield operands, op

    fonts: dict[str, Font] = {}
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else DictionaryObject()
    state = TextStateManager()
    for operands, op in operations(page, resources, "", fonts, 0):
        if op == b"q":
            state.add_q()
        elif op == b"Q":
            if state.q_depth:
                state.remove_q()
        elif op == b"cm":
            state.add_cm(*operands)
        elif op in (b"BT", b"ET"):
            state.reset_tm()
        elif op == b"Tf":
            state.set_font(resolve_font(fonts, operands[0]), state._as_float(operands[1] if len(operands) > 1
                                                                             else None, state.font_size))
        elif op in (b"Td", b"TD", b"Tm", b"T*"):
            state.reset_trm()
            if op == b"Tm":
                state.reset_tm()
            elif op == b"TD" and len(operands) >= 2:
                state.set_state_param(b"TL", -operands[1])
            elif op == b"T*":
                operands = [0, -state.TL]
            state.add_tm(operands)
        elif op in (b"Tj", b"'", b'"', b"TJ"):
            if op in (b"'", b'"'):
                if op == b'"' and len(operands) >= 3:
                    state.set_state_param(b"Tw", operands[0])
                    state.set_state_param(b"Tc", operands[1])
                state.reset_trm()
                state.add_tm([0, -state.TL])
            shown = operands[-1] if operands else None
            items = list(shown) if op == b"TJ" and isinstance(shown, ArrayObject) else [shown]
            for item in items:
                if isinstance(item, (str, bytes)):
                    piece = state.text_state_params(item)
                    if piece.font.interpretable and not piece.rotated:
                        yield piece.text, piece.tx, piece.ty, piece.displaced_tx, piece.font_height
                    state.add_trm(piece.displacement_matrix())
                elif isinstance(item, (int, float)):
                    state.add_trm(state.text_state_params().displacement_matrix(td_offset=item))
        else:  # Tc, Tw, Tz, TL, Ts; other operators draw no text
            state.set_state_param(op, operands)

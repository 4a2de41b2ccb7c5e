"""`evolve ingest` on a folder of company files: files per second on this machine, and how much known text comes out.

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m bench.ingest.company_files [--files 1000] [--seed 13] [--workers N]
        [--no-serial] [--work DIR] [--out ingest]

A seeded generator writes ``--files`` readable files (default 1,000) under ``<work>/company-files``, mixed across
every format the readers know: Markdown (some under Notion export names, "Title <32 hex>.md", with a Notion
database index CSV beside its folder), plain text (UTF-8, CP949, UTF-16), HTML (UTF-8 and CP949 declared as
EUC-KR, with navigation, scripts and footers around the body), DOCX (python-docx), PPTX (python-pptx, several
slides, tables, notes), XLSX (openpyxl, several sheets), PDF (fpdf2 with NanumGothic, several pages, some with a
table), HWPX (python-hwpx), HWP 5 (python-hwpx's writer, and the compound-file writer of
bench/ingest/hwp_writer.py) and ticket exports (CSV and JSON/JSONL, many tickets
each). On top come files that give no document: damaged, encrypted, scanned, empty and unsupported ones, and
hidden/system files that are ignored. Every text is built from generated Korean and English sentences, and the
generator records what it put in each file: sentences (paragraphs, list items, slide text, ticket bodies) and
table cells (short strings, each checked on its own, as a row's cells come out joined by " | ").

Timed, each as one ``ingest([folder], corpus, workers=...)`` call in this process:

- cold: a new corpus, every file read, with ``--workers`` (default os.cpu_count()) and, unless ``--no-serial``,
  again into a second new corpus with workers=1;
- unchanged: the same folder again (no readable file is read: size and mtime match the manifest; files that gave
  no document are not in the manifest and are extracted again, counted as "extracted");
- 1% changed: 1% of the readable files rewritten with new text, then ingested again (only those are read).

Reader speed: every readable file read once more by its reader in this process, one after another, per format
(files/s and MB/s), which tells where the cold run's time goes.

Text recovered: for every readable file, the share of its known strings found in its documents (title and text of
every document of that file), both sides with runs of whitespace collapsed to one space; "ignoring whitespace"
also drops all whitespace and applies NFKC, to tell lost text from text that only comes out differently spaced.
The first misses per format are kept in the JSON. Writes bench/results/<out>.json and .md and prints the tables.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import logging
import os
import random
import re
import shutil
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from bench import RESULTS
from bench.ingest import hwp_writer
from bench.ingest.fonts import korean_font
from evalsets.ingest import READERS, CorpusFolder, IngestReport, ReadOptions, ingest
from evalsets.ingest import run as ingest_run

LABEL = "company-files"

# share of the readable files per format (the ticket exports hold many tickets each)
MIX = {"markdown": 18, "text": 14, "html": 14, "docx": 12, "pptx": 8, "xlsx": 8, "pdf": 9, "hwpx": 6, "hwp": 6,
       "tickets-csv": 2.5, "tickets-json": 2.5}

# ------------------------------------------------------------------------------------------------ known sentences

SYSTEMS = ["그룹웨어", "전자결재", "사내 메일", "VPN", "ERP", "인사 시스템", "회계 시스템", "고객 포털", "위키", "메신저"]
DAYS = ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일"]
TEAMS = ["인사", "재무", "보안", "영업", "고객지원", "개발", "총무", "법무", "구매", "품질"]
ITEMS = ["출장", "교육", "장비", "복지", "휴가", "보안 점검", "소프트웨어 라이선스", "법인카드", "재택근무", "건강검진"]
CITIES = ["서울", "부산", "대구", "인천", "광주", "대전", "제주", "수원", "울산", "세종"]
NAMES = ["김민수", "이서연", "박지훈", "최유진", "정하늘", "강동원", "윤서아", "장태호", "한지민", "오세훈"]
SYSTEMS_EN = ["groupware", "e-approval", "mail", "VPN", "ERP", "HR portal", "billing", "wiki", "CRM", "build"]
TEAMS_EN = ["HR", "finance", "security", "sales", "support", "platform", "facilities", "legal", "procurement", "QA"]
DAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
ROLES = ["team lead", "director", "CFO", "security officer", "site manager"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
CITIES_EN = ["Seoul", "Busan", "Daegu", "Incheon", "Gwangju", "Daejeon", "Jeju", "Suwon", "Ulsan", "Sejong"]

KOREAN = [
    "{system} 점검은 매주 {day} 오후 {h}시에 진행됩니다.",
    "{team}팀의 {item} 예산은 {money}원으로 확정되었습니다.",
    "{n}번 회의실은 {floor}층에 있으며 최대 {m}명이 사용할 수 있습니다.",
    "{system} 접속 오류가 발생하면 {team}팀 {name} 담당자에게 문의하세요.",
    "신규 입사자는 입사 후 {n}일 이내에 {item} 교육을 이수해야 합니다.",
    "{city} 지사의 {q}분기 매출은 전년 대비 {p}% 증가했습니다.",
    "{item} 신청서는 매월 {d}일까지 {system}에 등록해야 합니다.",
    "{name} 님은 {month}월 {d}일부터 {city} 지사로 발령됩니다.",
    "{item} 관련 문의는 내선 {ext}번 {team}팀으로 연락 바랍니다.",
    "{system} 비밀번호는 {n}일마다 변경해야 하며 이전 {m}개와 같을 수 없습니다.",
    "{q}분기 {item} 만족도 조사 결과 응답자의 {p}%가 만족한다고 답했습니다.",
    "{city} 물류센터의 출고 마감 시간은 오후 {h}시 {mm}분입니다.",
]
ENGLISH = [
    "The {system_en} maintenance window starts at {h}:00 every {day_en}.",
    "Ticket {code} was escalated to the {team_en} team after {n} minutes.",
    "Expense reports above {n} dollars need approval from a {role}.",
    "The {city_en} office moves to floor {floor} on {month_en} {d}.",
    "Backups of the {system_en} database are kept for {m} days.",
    "Please submit the {team_en} survey by {month_en} {d} ({p}% have answered so far).",
    "Error {code} means the {system_en} session expired; sign in again.",
    "New laptops are shipped from {city_en} within {n} business days.",
]
MIXED = [
    "{system} 계정은 {n}일마다 password를 변경해야 합니다 (policy {code}).",
    "{team_en} 팀의 on-call 담당자는 {name}이며 SLA는 {m}분입니다.",
    "{city} 지사 VPN gateway 주소는 vpn{n}.example.co.kr 입니다.",
    "Q{q} OKR: {item} 처리 시간을 {p}% 단축 & 재문의율 {m}% 이하 유지.",
]
CELLS = ["{city} {team}", "{money}원", "{item} {n}건", "P{q} {team_en}", "{name}", "{code}", "{system_en} v{n}.{m}",
         "{month}월 {d}일", "{p}% 달성"]


def slots(rng: random.Random) -> dict[str, Any]:
    return {
        "system": rng.choice(SYSTEMS), "day": rng.choice(DAYS), "team": rng.choice(TEAMS), "item": rng.choice(ITEMS),
        "city": rng.choice(CITIES), "name": rng.choice(NAMES), "system_en": rng.choice(SYSTEMS_EN),
        "team_en": rng.choice(TEAMS_EN), "day_en": rng.choice(DAYS_EN), "role": rng.choice(ROLES),
        "month_en": rng.choice(MONTHS), "city_en": rng.choice(CITIES_EN), "h": rng.randint(1, 11),
        "mm": rng.choice(["00", "15", "30", "45"]), "n": rng.randint(2, 999), "m": rng.randint(2, 90),
        "floor": rng.randint(2, 40), "q": rng.randint(1, 4), "p": rng.randint(2, 99), "d": rng.randint(1, 28),
        "month": rng.randint(1, 12), "ext": rng.randint(2000, 8999), "money": f"{rng.randint(10, 99_999) * 1000:,}",
        "code": f"{rng.choice(['REQ', 'INC', 'OPS', 'HR', 'FIN'])}-{rng.randint(100, 99_999)}",
    }


class Text:
    """Known strings for one file, drawn from one seeded generator."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def sentence(self) -> str:
        pool = self.rng.choices([KOREAN, ENGLISH, MIXED], weights=[6, 3, 1])[0]
        return self.rng.choice(pool).format(**slots(self.rng))

    def sentences(self, low: int, high: int) -> list[str]:
        return [self.sentence() for _ in range(self.rng.randint(low, high))]

    def cell(self) -> str:
        return self.rng.choice(CELLS).format(**slots(self.rng))

    def heading(self) -> str:
        s = slots(self.rng)
        return self.rng.choice([f"{s['item']} 안내", f"{s['system']} 운영 규정", f"{s['team_en']} handbook",
                                f"{s['city']} 지사 {s['q']}분기 보고", f"{s['item']} policy {s['code']}"])

    def table(self, rows: int, cols: int) -> list[list[str]]:
        return [[self.cell() for _ in range(cols)] for _ in range(rows)]


@dataclass
class Known:
    """What the generator put in one readable file."""

    path: str  # relative to the source folder
    format: str
    variant: str = ""  # how it was written (cp949, notion, euc-kr, python-hwpx, cfb-writer, ...)
    sentences: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # in the file, but a reader should leave it out (HTML nav)


# ------------------------------------------------------------------------------------------------------- writers

def notion_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def write_markdown(path: Path, t: Text, known: Known) -> None:
    heading = t.heading()
    parts = [f"# {heading}"]
    known.sentences.append(heading)
    for _ in range(t.rng.randint(2, 4)):
        body = t.sentences(1, 3)
        known.sentences += body
        parts.append(" ".join(body))
    sub = t.heading()
    known.sentences.append(sub)
    parts.append(f"## {sub}")
    items = t.sentences(2, 4)
    known.sentences += items
    parts.append("\n".join(f"- {s}" for s in items))
    if t.rng.random() < 0.6:
        rows = t.table(t.rng.randint(2, 5), 3)
        known.cells += [c for row in rows for c in row]
        parts.append("\n".join([f"| {' | '.join(rows[0])} |", "| --- | --- | --- |"]
                               + [f"| {' | '.join(r)} |" for r in rows[1:]]))
    tail = t.sentences(1, 2)
    known.sentences += tail
    parts.append(" ".join(tail))
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def write_text(path: Path, t: Text, known: Known) -> None:
    paragraphs = []
    for _ in range(t.rng.randint(3, 7)):
        body = t.sentences(1, 3)
        known.sentences += body
        # some paragraphs wrapped mid-sentence, as text files often are
        line = " ".join(body)
        if t.rng.random() < 0.3 and " " in line:
            cut = line.index(" ", len(line) // 2) if " " in line[len(line) // 2:] else line.index(" ")
            line = line[:cut] + "\n" + line[cut + 1:]
        paragraphs.append(line)
    text = "\n\n".join(paragraphs) + "\n"
    encoding = {"cp949": "cp949", "utf-16": "utf-16", "": "utf-8"}[known.variant]
    if encoding == "cp949":
        text = text.replace("\n", "\r\n")
    path.write_bytes(text.encode(encoding))


BOILERPLATE = ["메뉴 스크립트 menu script", "도움말 센터 바로가기", "Copyright 2024 예시 주식회사 All rights reserved."]


def write_html(path: Path, t: Text, known: Known) -> None:
    e = html.escape
    heading = t.heading()
    known.sentences.append(heading)
    body = [f"<h1>{e(heading)}</h1>"]
    for _ in range(t.rng.randint(2, 5)):
        sentences = t.sentences(1, 3)
        known.sentences += sentences
        body.append("<p>" + " ".join(e(s) for s in sentences) + "</p>")
    if t.rng.random() < 0.5:
        sub = t.heading()
        known.sentences.append(sub)
        items = t.sentences(2, 4)
        known.sentences += items
        body.append(f"<h2>{e(sub)}</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in items) + "</ul>")
    if t.rng.random() < 0.6:
        rows = t.table(t.rng.randint(2, 5), 3)
        known.cells += [c for row in rows for c in row]
        body.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in rows[0]) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
                    + "</table>")
    if t.rng.random() < 0.3:
        inline = t.sentence()
        known.sentences.append(inline)
        words = inline.split(" ")
        body.append("<div>" + " ".join(f"<b>{e(w)}</b>" if i % 3 == 1 else e(w) for i, w in enumerate(words))
                    + "</div>")
    known.absent += BOILERPLATE
    charset = "euc-kr" if known.variant == "euc-kr" else "utf-8"
    page = (f'<!DOCTYPE html>\n<html lang="ko"><head><meta charset="{charset}"><title>{e(heading)}</title>'
            f"<script>var menu = '{BOILERPLATE[0]}';</script><style>p {{ margin: 0 }}</style></head>\n<body>"
            f"<nav><a href='/'>홈</a> | <a href='/help'>{BOILERPLATE[1]}</a></nav>\n<main>\n" + "\n".join(body)
            + f"\n</main><footer>{BOILERPLATE[2]}</footer></body></html>\n")
    path.write_bytes(page.encode("cp949" if charset == "euc-kr" else "utf-8"))


def write_docx(path: Path, t: Text, known: Known) -> None:
    import docx

    document = docx.Document()
    if t.rng.random() < 0.3:
        document.core_properties.title = t.heading()
    for section in range(t.rng.randint(1, 3)):
        heading = t.heading()
        known.sentences.append(heading)
        document.add_heading(heading, level=1 if section == 0 else 2)
        for _ in range(t.rng.randint(1, 3)):
            body = t.sentences(1, 3)
            known.sentences += body
            if t.rng.random() < 0.5:
                document.add_paragraph(" ".join(body))
            else:  # edited text: one run per few words, some bold, a line break between sentences
                paragraph = document.add_paragraph()
                for number, sentence in enumerate(body):
                    if number:
                        paragraph.add_run().add_break()
                    words = sentence.split(" ")
                    for at in range(0, len(words), 3):
                        run = paragraph.add_run(" ".join(words[at:at + 3]) + (" " if at + 3 < len(words) else ""))
                        run.bold = t.rng.random() < 0.3
        if t.rng.random() < 0.5:
            rows = t.table(t.rng.randint(2, 5), t.rng.randint(2, 4))
            known.cells += [c for row in rows for c in row]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for row, values in zip(table.rows, rows):
                for cell, value in zip(row.cells, values):
                    cell.text = value
        if t.rng.random() < 0.4:
            for s in t.sentences(2, 3):
                known.sentences.append(s)
                document.add_paragraph(s, style="List Bullet")
    document.save(str(path))


def write_pptx(path: Path, t: Text, known: Known) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for number in range(t.rng.randint(3, 6)):
        title = t.heading()
        known.sentences.append(title)
        if number > 0 and t.rng.random() < 0.3:
            slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only, with a table
            slide.shapes.title.text = title
            rows = t.table(t.rng.randint(2, 4), 3)
            known.cells += [c for row in rows for c in row]
            table = slide.shapes.add_table(len(rows), 3, Inches(0.5), Inches(1.8), Inches(9), Inches(3)).table
            for r, values in enumerate(rows):
                for c, value in enumerate(values):
                    table.cell(r, c).text = value
        else:
            slide = deck.slides.add_slide(deck.slide_layouts[1])
            slide.shapes.title.text = title
            body = t.sentences(2, 4)
            known.sentences += body
            slide.placeholders[1].text_frame.text = "\n".join(body)
        if t.rng.random() < 0.3:
            box = slide.shapes.add_textbox(Inches(0.5), Inches(6.3), Inches(9), Inches(1)).text_frame
            lines = t.sentences(1, 2)
            known.sentences += lines
            box.text = lines[0]
            for line in lines[1:]:
                box.add_paragraph().text = line
        if t.rng.random() < 0.4:
            notes = t.sentences(1, 2)
            known.sentences += notes
            slide.notes_slide.notes_text_frame.text = " ".join(notes)
    deck.save(str(path))


def write_xlsx(path: Path, t: Text, known: Known) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    for number in range(t.rng.randint(1, 3)):
        sheet = workbook.active if number == 0 else workbook.create_sheet()
        sheet.title = f"{t.rng.choice(ITEMS)} {number + 1}"
        header = ["코드 Code", "담당 Owner", "금액 Amount", "설명 Description"]
        sheet.append(header)
        known.cells += header
        for _ in range(t.rng.randint(5, 30)):
            code, owner, amount = t.cell(), t.rng.choice(NAMES), t.rng.randint(10_000, 9_999_999)
            description = t.sentences(1, 2)
            sheet.append([code, owner, amount, "\n".join(description)])
            known.cells += [code, owner, str(amount)]
            known.sentences += description
    workbook.save(str(path))


def write_pdf(path: Path, t: Text, known: Known) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("nanum", fname=korean_font())
    pdf.set_font("nanum", size=11)
    pages = t.rng.randint(2, 5)
    for number in range(pages):
        pdf.add_page()
        heading = t.heading()
        known.sentences.append(heading)
        pdf.set_font("nanum", size=15)
        pdf.cell(text=heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("nanum", size=11)
        for _ in range(t.rng.randint(2, 4)):
            body = t.sentences(1, 3)
            known.sentences += body
            pdf.multi_cell(0, 7, text=" ".join(body), new_x="LMARGIN", new_y="NEXT",
                           align="J" if known.variant == "justified" else "L")
            pdf.ln(3)
        if number == pages - 1 and t.rng.random() < 0.4:
            rows = t.table(t.rng.randint(2, 4), 3)
            known.cells += [c for row in rows for c in row]
            with pdf.table(first_row_as_headings=False) as table:
                for values in rows:
                    row = table.row()
                    for value in values:
                        row.cell(value)
    pdf.output(str(path))


def hancom(t: Text, known: Known):
    from hwpx import HwpxDocument

    doc = HwpxDocument.new()
    heading = t.heading()
    known.sentences.append(heading)
    doc.add_heading(heading, level=1)
    for _ in range(t.rng.randint(2, 5)):
        body = t.sentences(1, 3)
        known.sentences += body
        doc.add_paragraph(" ".join(body), inherit_style=False)
    if t.rng.random() < 0.6:
        rows = t.table(t.rng.randint(2, 4), 3)
        known.cells += [c for row in rows for c in row]
        table = doc.add_table(len(rows), 3)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                table.set_cell_text(r, c, value)
        caption = t.heading()
        known.sentences.append(caption)
        table.set_caption(caption)
    tail = t.sentences(1, 2)
    known.sentences += tail
    doc.add_paragraph(" ".join(tail), inherit_style=False)
    return doc


def write_hwpx(path: Path, t: Text, known: Known) -> None:
    hancom(t, known).save_to_path(path)


def write_hwp(path: Path, t: Text, known: Known) -> None:
    if known.variant != "cfb-writer":
        hancom(t, known).save_to_path(path)  # python-hwpx's own HWP 5 writer
        return
    m = hwp_writer
    body = b""
    for _ in range(t.rng.randint(2, 5)):
        sentences = t.sentences(1, 3)
        known.sentences += sentences
        body += m.paragraph(m.u(" ".join(sentences)))
    if t.rng.random() < 0.5:  # a table as Hangul anchors it: caption list, TABLE record, one list per cell
        rows = t.table(t.rng.randint(2, 4), 3)
        known.cells += [c for row in rows for c in row]
        caption = t.heading()
        known.sentences.append(caption)
        body += m.paragraph(m.control(11, b"tbl "))
        body += m.record(m.CTRL_HEADER, 1, b" lbt" + b"\0" * 40)
        body += m.record(m.LIST_HEADER, 2, b"\x01\0\0\0\0\0\0\0" + b"\0" * 14) + m.paragraph(m.u(caption), 2)
        body += m.record(m.TABLE, 2, b"\0\0\0\0" + len(rows).to_bytes(2, "little") + (3).to_bytes(2, "little")
                         + b"\0" * 14)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                body += m.cell(r, c, [value], 2)
    tail = t.sentence()
    known.sentences.append(tail)
    body += m.paragraph(m.u(tail))
    sections = {"Section0": body}
    if t.rng.random() < 0.3:
        second = t.sentence()
        known.sentences.append(second)
        sections["Section1"] = m.paragraph(m.u(second))
    m.hwp(path, compressed=t.rng.random() < 0.8, sections=sections, title=t.heading())


STATUSES = ["open", "pending", "solved", "closed"]
PRIORITIES = ["low", "normal", "high", "urgent"]


def ticket_records(t: Text, known: Known, count: int) -> list[dict[str, Any]]:
    records = []
    for number in range(count):
        subject = t.heading()
        description = t.sentences(1, 3)
        comments = [(t.rng.choice(NAMES), t.sentence()) for _ in range(t.rng.randint(0, 3))]
        known.sentences += [subject, *description, *(body for _, body in comments)]
        records.append({"id": 10_000 + t.rng.randint(0, 89_999) * 10 + number % 10, "subject": subject,
                        "description": "\n".join(description) if t.rng.random() < 0.5 else " ".join(description),
                        "status": t.rng.choice(STATUSES), "priority": t.rng.choice(PRIORITIES),
                        "comments": comments})
    return records


def write_tickets_csv(path: Path, t: Text, known: Known) -> None:
    records = ticket_records(t, known, t.rng.randint(20, 60))
    width = max([len(r["comments"]) for r in records] + [1])
    out = io.StringIO(newline="")
    semicolon = known.variant == "cp949"  # a Jira export from Korean Windows: cp949, semicolons, "Comment" columns
    writer = csv.writer(out, delimiter=";" if semicolon else ",")
    if semicolon:
        writer.writerow(["Issue key", "Summary", "Description", "Status", "Priority"] + ["Comment"] * width)
    else:
        writer.writerow(["ticket_id", "subject", "description", "status", "priority"] + ["comment"] * width)
    for r in records:
        comments = [f"{who}: {body}" for who, body in r["comments"]]
        writer.writerow([r["id"], r["subject"], r["description"], r["status"], r["priority"]]
                        + comments + [""] * (width - len(comments)))
    path.write_bytes(out.getvalue().encode("cp949" if semicolon else "utf-8-sig"))


def write_tickets_json(path: Path, t: Text, known: Known) -> None:
    records = ticket_records(t, known, t.rng.randint(20, 60))
    tickets = [{"id": r["id"], "subject": r["subject"], "description": r["description"], "status": r["status"],
                "priority": r["priority"], "tags": [t.rng.choice(TEAMS_EN).lower()],
                "requester": {"name": t.rng.choice(NAMES)},
                "comments": [{"author": {"name": who}, "body": body, "public": True} for who, body in r["comments"]]}
               for r in records]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in tickets), encoding="utf-8")
    else:
        path.write_text(json.dumps({"tickets": tickets, "count": len(tickets)}, ensure_ascii=False, indent=1),
                        encoding="utf-8")


WRITERS: dict[str, Callable[[Path, Text, Known], None]] = {
    "markdown": write_markdown, "text": write_text, "html": write_html, "docx": write_docx, "pptx": write_pptx,
    "xlsx": write_xlsx, "pdf": write_pdf, "hwpx": write_hwpx, "hwp": write_hwp, "tickets-csv": write_tickets_csv,
    "tickets-json": write_tickets_json}
FOLDERS = ["공지사항", "인사", "재무/2024", "영업/보고서", "IT 지원", "projects/alpha", "projects/beta", "archive/old",
           "회의록", "exports"]


def plan(total: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(format, relative path, variant) of each readable file."""
    weight = sum(MIX.values())
    counts = {fmt: max(1, round(total * share / weight)) for fmt, share in MIX.items()}
    counts["markdown"] += total - sum(counts.values())
    out: list[tuple[str, str, str]] = []
    suffix = {"markdown": ".md", "text": ".txt", "html": ".html", "docx": ".docx", "pptx": ".pptx", "xlsx": ".xlsx",
              "pdf": ".pdf", "hwpx": ".hwpx", "hwp": ".hwp", "tickets-csv": ".csv", "tickets-json": ".json"}
    notion = f"Notion/업무 위키 {notion_id(rng)}"
    for fmt, count in counts.items():
        for number in range(count):
            folder = rng.choice(FOLDERS)
            name = f"{fmt}-{number:04d}"
            variant = ""
            if fmt == "markdown" and number % 3 == 0:
                folder, name, variant = notion, f"페이지 {number} Page {notion_id(rng)}", "notion"
            elif fmt == "text":
                variant = "cp949" if number % 3 == 0 else ("utf-16" if number % 10 == 1 else "")
            elif fmt == "html" and number % 4 == 0:
                variant = "euc-kr"
            elif fmt == "pdf" and number % 2 == 0:
                variant = "justified"
            elif fmt == "hwp":
                variant = "cfb-writer" if number % 2 == 0 else "python-hwpx"
            elif fmt == "tickets-csv" and number % 2 == 0:
                variant = "cp949"
            elif fmt == "tickets-json" and number % 3 == 0:
                variant = "jsonl"
            ext = ".jsonl" if variant == "jsonl" else suffix[fmt]
            out.append((fmt, f"{folder}/{name}{ext}", variant))
    return out


def write_one(root: Path, fmt: str, rel: str, variant: str, seed: Any) -> Known:
    known = Known(rel, fmt, variant)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[fmt](path, Text(random.Random(f"{seed}/{rel}")), known)
    return known


def write_unreadable(root: Path, rng: random.Random) -> dict[str, str]:
    """Files that give no document, and hidden/system files; what the report should say of each (ignored: "")."""
    bad = root / "기타"
    bad.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    noise = bytes(rng.randrange(256) for _ in range(6000)) + b"\xff\x80\x00"

    def put(name: str, data: bytes, kind: str) -> Path:
        (bad / name).write_bytes(data)
        expected[f"기타/{name}"] = kind
        return bad / name

    scratch = Path(tempfile.mkdtemp())
    try:
        for n in range(3):
            write_docx(scratch / "x.docx", Text(random.Random(n)), Known("", "docx"))
            data = (scratch / "x.docx").read_bytes()
            put(f"잘린 문서 {n}.docx", data[: len(data) // 2], "corrupt")
        for n in range(2):
            write_pptx(scratch / "x.pptx", Text(random.Random(n)), Known("", "pptx"))
            data = (scratch / "x.pptx").read_bytes()
            put(f"truncated-{n}.pptx", data[: len(data) // 3], "corrupt")
        write_xlsx(scratch / "x.xlsx", Text(random.Random(1)), Known("", "xlsx"))
        put("truncated.xlsx", (scratch / "x.xlsx").read_bytes()[:900], "corrupt")
        put("noise.pdf", noise, "corrupt")
        put("noise.hwp", noise, "corrupt")
        put("noise.hwpx", b"PK\x03\x04" + noise, "corrupt")
        put("broken.json", b'{"tickets": [{"id": 1, "subject": "', "corrupt")
        put("binary.txt", noise, "corrupt")
        # encrypted: a PDF with a user password; a password and a 배포용 (distribution) HWP
        from pypdf import PdfReader, PdfWriter

        write_pdf(scratch / "x.pdf", Text(random.Random(2)), Known("", "pdf"))
        locked = PdfWriter(clone_from=PdfReader(scratch / "x.pdf"))
        locked.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
        locked.write(bad / "잠긴 문서.pdf")
        expected["기타/잠긴 문서.pdf"] = "encrypted"
        hwp_writer.hwp(bad / "비밀번호.hwp", flags=2)
        hwp_writer.hwp(bad / "배포용.hwp", flags=4,
                       sections={"Section0": hwp_writer.paragraph(hwp_writer.u("배포용 문서입니다."))})
        expected["기타/비밀번호.hwp"] = expected["기타/배포용.hwp"] = "encrypted"
        # scanned: image-only pages
        from fpdf import FPDF
        from PIL import Image

        pdf = FPDF()
        for shade in (40, 200):
            pdf.add_page()
            pdf.image(Image.new("RGB", (64, 48), (shade, shade, shade)), x=10, y=10, w=120)
        pdf.output(str(bad / "스캔본.pdf"))
        expected["기타/스캔본.pdf"] = "scanned"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # empty
    put("zero.docx", b"", "empty")
    put("빈 메모.md", b"\n\n  \n", "empty")
    put("blank.txt", b"", "empty")
    # unsupported
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024)
    put("옛날 문서.doc", ole, "unsupported")
    put("budget.xls", ole, "unsupported")
    put("slides.ppt", ole, "unsupported")
    put("memo.rtf", b"{\\rtf1\\ansi hello}", "unsupported")
    put("logo.png", b"\x89PNG\r\n\x1a\n" + noise[:500], "unsupported")
    put("backup.zip", b"PK\x05\x06" + bytes(18), "unsupported")
    put("setup.exe", b"MZ" + noise[:500], "unsupported")
    put("README", b"no suffix", "unsupported")
    put("saved-as-docx.docx", ole, "unsupported")  # a legacy .doc renamed .docx
    # hidden and system files: ignored, not skipped
    for name, data in ((".DS_Store", b"\0\0\0\1Bud1"), ("Thumbs.db", ole), ("~$초안.docx", b"\x0bowner")):
        (bad / name).write_bytes(data)
        expected[f"기타/{name}"] = ""
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "config").write_text("[core]\n")
    expected[".git/config"] = ""
    return expected


def notion_index(root: Path, knowns: list[Known]) -> str:
    """A Notion database index CSV beside the folder of its pages: reported as skipped."""
    pages = [k for k in knowns if k.variant == "notion"]
    if not pages:
        return ""
    folder = Path(pages[0].path).parent
    index = root / folder.parent / f"{folder.name}.csv"
    index.write_text("Name,Tags\n" + "".join(f"{Path(k.path).stem},wiki\n" for k in pages[:20]), encoding="utf-8")
    return index.relative_to(root).as_posix()


def generate(root: Path, total: int, seed: int) -> tuple[list[Known], dict[str, str], dict[str, float]]:
    rng = random.Random(seed)
    knowns: list[Known] = []
    seconds: Counter[str] = Counter()
    for fmt, rel, variant in plan(total, rng):
        started = time.perf_counter()
        knowns.append(write_one(root, fmt, rel, variant, seed))
        seconds[fmt] += time.perf_counter() - started
    started = time.perf_counter()
    expected = write_unreadable(root, rng)
    if index := notion_index(root, knowns):
        expected[index] = "skipped"
    seconds["unreadable"] += time.perf_counter() - started
    return knowns, expected, {k: round(v, 2) for k, v in seconds.items()}


# ----------------------------------------------------------------------------------------------- measuring

def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def recovered(knowns: list[Known], corpus: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per format: files, known strings found (whitespace collapsed; ignoring whitespace), and the first misses."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for doc in CorpusFolder(corpus).documents():
        by_source[doc.metadata["source"]].append(f"{doc.title}\n{doc.text}")
    rows: dict[str, dict[str, Any]] = {}
    misses: list[dict[str, Any]] = []
    for known in knowns:
        row = rows.setdefault(known.format, {"files": 0, "files_without_documents": 0, "sentences": 0,
                                             "sentences_found": 0, "cells": 0, "cells_found": 0,
                                             "found_ignoring_whitespace": 0, "absent": 0, "absent_found": 0,
                                             "control_found": 0, "misses": []})
        row["files"] += 1
        texts = by_source.get(f"{LABEL}/{known.path}", [])
        if not texts:
            row["files_without_documents"] += 1
        text = collapse("\n".join(texts))
        loose = squeeze(text)
        row["absent"] += len(known.absent)
        row["absent_found"] += sum(collapse(s) in text for s in known.absent)
        # a sentence from the same generator that no file holds: finding it would mean the check is too lax
        row["control_found"] += squeeze(Text(random.Random(f"control/{known.path}")).sentence()) in loose
        for kind, strings in (("sentences", known.sentences), ("cells", known.cells)):
            for s in strings:
                row[kind] += 1
                hit = collapse(s) in text
                row[f"{kind}_found"] += hit
                row["found_ignoring_whitespace"] += hit or squeeze(s) in loose
                if not hit:
                    miss = {"file": known.path, "variant": known.variant, "kind": kind[:-1], "expected": s}
                    misses.append(miss)
                    if len(row["misses"]) < 5:
                        row["misses"].append(miss)
    total = {"files": 0, "files_without_documents": 0, "sentences": 0, "sentences_found": 0, "cells": 0,
             "cells_found": 0, "found_ignoring_whitespace": 0, "absent": 0, "absent_found": 0, "control_found": 0}
    for row in rows.values():
        for key in total:
            total[key] += row[key]
    out: dict[str, Any] = {}
    for fmt, row in sorted(rows.items()) + [("all", total)]:
        strings = row["sentences"] + row["cells"]
        out[fmt] = {**row,
                    "share_sentences": round(row["sentences_found"] / row["sentences"], 4) if row["sentences"] else None,
                    "share_cells": round(row["cells_found"] / row["cells"], 4) if row["cells"] else None,
                    "share": round((row["sentences_found"] + row["cells_found"]) / strings, 4) if strings else None,
                    "share_ignoring_whitespace": round(row["found_ignoring_whitespace"] / strings, 4)
                    if strings else None}
    return out, misses


class Extraction:
    """Wraps ingest's reading step (in this process; the readers run in its workers) to count the files it hands
    to the readers and the time until their last result: ``read`` in the report counts only files that gave
    documents, so a file re-read only to fail again shows here, not there."""

    def __init__(self) -> None:
        self.files = 0
        self.seconds = 0.0
        self.inner = ingest_run._read_all

    def __call__(self, to_read, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.files += len(to_read)
        started = time.perf_counter()
        try:
            yield from self.inner(to_read, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def __enter__(self) -> Self:
        ingest_run._read_all = self
        return self

    def __exit__(self, *exc: object) -> None:
        ingest_run._read_all = self.inner


def timed_ingest(name: str, source: Path, corpus: Path, workers: int) -> tuple[dict[str, Any], IngestReport]:
    with Extraction() as extraction:
        started = time.perf_counter()
        report = ingest([source], corpus, workers=workers)
        seconds = time.perf_counter() - started
    row = {"run": name, "workers": workers, "files": report.files, "read": report.read,
           "unchanged": report.unchanged, "changed_files": report.changed_files, "added_files": report.added_files,
           "skipped": len(report.skipped), "ignored": report.ignored, "documents": report.documents,
           "seconds": round(seconds, 2), "files_per_s": round(report.files / seconds, 1),
           "read_per_s": round(report.read / seconds, 1) if report.read else 0.0,
           "extracted": extraction.files, "extracting_seconds": round(extraction.seconds, 2),
           "formats": dict(sorted(report.formats.items())), "skipped_by_kind": report.skipped_by_kind()}
    print(f"{name:<22} workers={workers} files={report.files} read={report.read} unchanged={report.unchanged} "
          f"skipped={len(report.skipped)} extracted={extraction.files} documents={report.documents} {seconds:.1f} s "
          f"({row['files_per_s']} files/s)", flush=True)
    return row, report


def reader_speed(source: Path, knowns: list[Known]) -> dict[str, dict[str, float]]:
    """Each readable file read once more by its reader in this process, serially: seconds, files/s and MB/s per
    format (its library imported beforehand, by reading its first file once untimed)."""
    out: dict[str, dict[str, float]] = {}
    for fmt in sorted({k.format for k in knowns}):
        paths = [source / k.path for k in knowns if k.format == fmt]
        READERS.for_path(paths[0]).read(paths[0], ReadOptions())
        started = time.perf_counter()
        for path in paths:
            READERS.for_path(path).read(path, ReadOptions())
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in paths) / 1e6
        out[fmt] = {"files": len(paths), "mb": round(size, 2), "seconds": round(seconds, 3),
                    "files_per_s": round(len(paths) / seconds, 1), "mb_per_s": round(size / seconds, 2)}
    return out


def check_skips(report: IngestReport, expected: dict[str, str]) -> list[dict[str, str]]:
    """Unreadable files the report names with another kind than expected, or readable files it skipped."""
    got = {s.path.removeprefix(f"{LABEL}/"): s for s in report.skipped}
    problems = []
    for rel, kind in expected.items():
        if kind and (rel not in got or got[rel].kind != kind):
            problems.append({"file": rel, "expected": kind, "got": got[rel].kind if rel in got else "read",
                             "reason": got[rel].reason if rel in got else ""})
    for rel, skip in got.items():
        if rel not in expected:
            problems.append({"file": rel, "expected": "read", "got": skip.kind, "reason": skip.reason})
    return problems


def markdown(out: dict[str, Any]) -> str:
    m = out["machine"]
    lines = [(f"# `evolve ingest` on {out['generated']['files_on_disk']} files ({out['generated']['readable']} "
             f"readable, {m['cpu_count']} CPUs, seed {out['seed']})"), "",
             "| run | workers | files | read | unchanged | skipped | extracted | seconds | files/s | read/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in out["runs"]:
        lines.append(f"| {r['run']} | {r['workers']} | {r['files']} | {r['read']} | {r['unchanged']} | "
                     f"{r['skipped']} | {r['extracted']} | {r['seconds']} | {r['files_per_s']} | {r['read_per_s']} |")
    lines += ["", ("files: walked (hidden/system files not counted); read: gave documents; extracted: handed to the "
              "readers (a file that gave no document is not read again until it changes); files/s: walked files per second; "
              f"load average at the end: {', '.join(f'{x:.1f}' for x in m['load_average'])}.")]
    cold = out["runs"][0]
    lines += ["", "Files read per format (cold): " + ", ".join(f"{k} {v}" for k, v in cold["formats"].items()) + ".",
              "Skipped by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(cold["skipped_by_kind"].items()))
              + f"; ignored (hidden/system): {cold['ignored']}.", "",
              "| format | files | known strings | share recovered | sentences | cells | ignoring whitespace |",
              "| --- | --- | --- | --- | --- | --- | --- |"]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    for fmt, r in out["recovered"].items():
        lines.append(f"| {fmt} | {r['files']} | {r['sentences'] + r['cells']} | {pct(r['share'])} | "
                     f"{pct(r['share_sentences'])} | {pct(r['share_cells'])} | {pct(r['share_ignoring_whitespace'])} |")
    total = out["recovered"]["all"]
    lines += ["", (f"Boilerplate (HTML navigation, script, footer) left in the text: {total['absent_found']} of "
              f"{total['absent']} strings. Control (a generated sentence written to no file, one per file) found: "
              f"{total['control_found']} of {total['files']}.")]
    lines += ["", "Reader speed, one file after another in one process:", "",
              "| format | files | MB | seconds | files/s | MB/s |", "| --- | --- | --- | --- | --- | --- |"]
    for fmt, r in out["reader_speed"].items():
        lines.append(f"| {fmt} | {r['files']} | {r['mb']} | {r['seconds']} | {r['files_per_s']} | {r['mb_per_s']} |")
    lines += ["", f"Generation: {out['generated']['seconds']} s. HWP writers: {', '.join(out['generated']['hwp_writers'])}."]
    if out["skip_problems"]:
        lines.append(f"Files reported otherwise than expected: {len(out['skip_problems'])} (see the JSON).")
    changed = out.get("changed_recovered")
    if changed:
        lines.append(f"After the 1% change, the new text of the changed files: {pct(changed['share'])} found.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="readable files to generate (default 1000)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-serial", action="store_true", help="skip the cold run with workers=1")
    parser.add_argument("--work", type=Path, help="folder for the files and corpora (kept); default a temp folder")
    parser.add_argument("--out", default="ingest", help="bench/results/<out>.json and .md")
    args = parser.parse_args()

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # fpdf2's font subsetting warns on NanumGothic's tables
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    source = work / LABEL
    if source.exists():
        shutil.rmtree(source)
    for old in work.glob("corpus-*"):
        shutil.rmtree(old)
    try:
        started = time.perf_counter()
        knowns, expected, gen_seconds = generate(source, args.files, args.seed)
        generation = round(time.perf_counter() - started, 1)
        on_disk = sum(1 for p in source.rglob("*") if p.is_file())
        print(f"generated {len(knowns)} readable files and {len(expected)} others ({on_disk} on disk) in "
              f"{generation} s under {source}", flush=True)

        runs = []
        row, cold = timed_ingest("cold", source, work / "corpus-a", args.workers)
        runs.append(row)
        if not args.no_serial and args.workers != 1:
            runs.append(timed_ingest("cold", source, work / "corpus-serial", 1)[0])
        runs.append(timed_ingest("unchanged", source, work / "corpus-a", args.workers)[0])

        results, misses = recovered(knowns, work / "corpus-a")

        rng = random.Random(args.seed + 1)
        changed = rng.sample(knowns, max(1, round(len(knowns) / 100)))
        for known in changed:
            fresh = write_one(source, known.format, known.path, known.variant, f"{args.seed}-changed")
            known.sentences, known.cells = fresh.sentences, fresh.cells
        runs.append(timed_ingest("1% changed", source, work / "corpus-a", args.workers)[0])
        runs[-1]["changed"] = sorted(k.path for k in changed)
        after, _ = recovered(changed, work / "corpus-a")
        speed = reader_speed(source, knowns)

        out = {"machine": {"cpu_count": os.cpu_count(), "nice": os.nice(0), "load_average": os.getloadavg()},
               "seed": args.seed,
               "generated": {"readable": len(knowns), "unreadable_or_ignored": len(expected),
                             "files_on_disk": on_disk, "seconds": generation, "seconds_by_format": gen_seconds,
                             "by_format": dict(Counter(k.format for k in knowns)),
                             "variants": dict(Counter(f"{k.format}/{k.variant}" for k in knowns if k.variant)),
                             "hwp_writers": sorted({k.variant for k in knowns if k.format == "hwp"})},
               "runs": runs, "reader_speed": speed, "recovered": results, "changed_recovered": after["all"],
               "skip_problems": check_skips(cold, expected), "misses": misses[:200], "misses_total": len(misses)}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.out}.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        (RESULTS / f"{args.out}.md").write_text(markdown(out))
        print()
        print(markdown(out))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""For tests against a real LLM server: a local SmolLM2 server (skipped where its package is missing), and long Korean
business pages made from sentence patterns with varied words (seeded), quoted whole in the proposer's observation as
the loop wrote it on a set of long OCR'd PDF pages."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pipelines.llm import LLMSettings, LocalLLMServer, ModelUnavailable, resolve_gguf


@contextmanager
def smollm2(**options: Any) -> Iterator[LLMSettings]:
    """SmolLM2-135M behind llama.cpp for the length of a ``with`` block (``options``: LocalLLMServer's)."""
    try:
        resolve_gguf("smollm2-135m")
    except ModelUnavailable as err:
        pytest.skip(str(err))
    with LocalLLMServer("smollm2-135m", **options) as settings:
        yield settings


SUBJECTS = ["당사", "협력업체", "영업본부", "재무팀", "고객지원센터", "품질관리부", "구매팀", "인사위원회", "감사실",
            "해외법인", "물류센터", "연구소", "생산라인", "정보보안팀", "마케팅본부"]
OBJECTS = ["분기별 매출 보고서", "계약 갱신 조건", "납품 일정", "정산 기준", "보안 점검 결과", "교육 이수 현황",
           "재고 관리 절차", "출장비 지급 규정", "위탁 생산 계약서", "개인정보 처리 방침", "예산 집행 계획",
           "설비 유지보수 내역", "고객 불만 처리 기록", "신규 거래처 등록 서류", "연차 사용 기준"]
VERBS = ["검토하여 승인하였다", "다음 달까지 제출해야 한다", "전면 개정하기로 결정하였다", "월말에 다시 확인한다",
         "관련 부서와 협의하여 확정한다", "이사회에 보고하였다", "작년 대비 크게 개선되었다",
         "외부 감사에서 지적되었다", "전산 시스템에 등록하였다", "담당자 변경에 따라 재작성하였다"]
DETAILS = ["2024년 3분기 기준으로", "본사 회의실에서", "서울과 부산 사업장 모두", "협약서 제7조에 따라",
           "지난 회의의 후속 조치로서", "예외 없이", "원본 문서를 첨부하여", "전자결재를 통하여"]


def korean_page(rng: random.Random, sentences: int) -> str:
    """A page of ``sentences`` sentences (about 35 Hangul syllables each)."""
    return " ".join(f"{rng.choice(DETAILS)} {rng.choice(SUBJECTS)}은(는) {rng.choice(OBJECTS)}을(를) "
                    f"{rng.choice(VERBS)}." for _ in range(sentences))


def korean_observation(seed: int = 7, examples: int = 5, sentences: int = 3) -> str:
    """``observe_champion``'s lines with failure examples that quote whole pages (returned and right documents)."""
    rng = random.Random(seed)
    lines = ["champion hybrid-e5: mean ndcg@10 0.6120 on 40 tuning queries (ko)"]
    for i in range(examples):
        query = f"{rng.choice(DETAILS)} {rng.choice(SUBJECTS)}의 {rng.choice(OBJECTS)}은(는) 누가 {rng.choice(VERBS)}?"
        pages = [korean_page(rng, sentences) for _ in range(3)]
        lines.append(f'- query "{query}" ndcg@10 0.{i:02d}; returned [사업보고서 {i}-1] "{pages[0]}"; '
                     f'[회의록 {i}-2] "{pages[1]}"; the right document: [내부 규정 {i}] "{pages[2]}"')
    lines.append("cost of embedding this corpus (paragraph chunks) with each model on this machine; BM25, fusion and "
                 "cached models cost seconds; 28 min of budget left:")
    lines.append("- multilingual-e5-small: 1,139 chunks, ~420 s cold")
    return "\n".join(lines)

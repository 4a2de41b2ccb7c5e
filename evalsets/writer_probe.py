"""Can this model write an evaluation set in this language? Tried on built-in items before any passage is spent.

SmolLM2-135M wrote 22 Korean "questions" that were timestamps equal to their answers, and its answerability
verdicts accepted them all. So before synthesizing, the model writes one question for a built-in passage in the
corpus's language (it must pass every check of :mod:`evalsets.question_checks`) and gives answerability verdicts
on four built-in question-answer pairs whose verdicts are known (two right; two about facts the passage does not
have). A model that misses any of them is refused; ``--force`` overrides. A wrong number for a question the passage
does answer is not among them: the grounding check rejects it without the model, and Qwen2.5-Coder-1.5B, the
smallest model that writes real Korean questions, accepts it (measured: both languages, two prompts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalsets.model import Document
from evalsets.synthesize import Answerable, _answerable_messages, _question_messages, failed_written_check
from evalsets.writer_prompts import DEFAULT_PROMPT, PROMPTS, QA

PASSAGES = {
    "ko": ("서울시립도서관 이용 안내",
           ("서울시립도서관은 평일 오전 9시부터 오후 10시까지 운영하며, 매주 월요일은 휴관한다. 도서는 1인당 최대 "
           "5권까지 14일 동안 대출할 수 있고, 연체하면 연체 일수만큼 대출이 정지된다. 회원증은 신분증을 가지고 "
           "1층 안내데스크에서 발급받을 수 있다.")),
    "en": ("City library opening hours",
           ("The city library is open from 9 am to 10 pm on weekdays and is closed on Mondays. Each member may "
           "borrow up to 5 books for 14 days; a late return suspends borrowing for as many days as it was late. "
           "Library cards are issued at the ground-floor information desk on presentation of an ID.")),
}
VERDICTS = {
    "ko": [("서울시립도서관에서 한 사람이 빌릴 수 있는 도서는 최대 몇 권인가요?", "5권", 1),
           ("서울시립도서관의 주차 요금은 얼마인가요?", "시간당 1,000원", 0),
           ("서울시립도서관의 휴관일은 언제인가요?", "매주 월요일", 1),
           ("서울시립도서관의 관장은 누구인가요?", "김철수 관장", 0)],
    "en": [("How many books may a member borrow at most?", "5 books", 1),
           ("How much does parking at the library cost?", "2 dollars an hour", 0),
           ("On which day is the library closed?", "Mondays", 1),
           ("Who is the director of the library?", "Jane Smith", 0)],
}


@dataclass
class ProbeResult:
    model: str
    language: str
    misses: list[str] = field(default_factory=list)
    """What the model got wrong, one short line each."""

    @property
    def passed(self) -> bool:
        return not self.misses


def probe_writer(llm: Any, language: str, check_answerable: bool = True, prompt: str = DEFAULT_PROMPT
                 ) -> ProbeResult:
    """Try ``llm`` (``structured(messages, schema)``, ``model``) on the built-in items of ``language`` ('ko' or
    'en'): one question written and checked, and (with ``check_answerable``) four known verdicts."""
    result = ProbeResult(llm.model, language)
    title, passage = PASSAGES[language]
    try:
        writer = PROMPTS[prompt]
        qa = llm.structured(_question_messages(Document(doc_id="probe", title=title, text=passage), passage, writer),
                            writer.schema, max_tokens=500)
        why = failed_written_check(qa, passage)
        if why:
            result.misses.append(f"wrote {qa.question[:60]!r} -> {qa.answer[:40]!r} ({why})")
    except Exception as err:  # noqa: BLE001 -- whatever the client raises (no JSON, no server): a miss
        result.misses.append(f"no valid question ({str(err)[:80]})")
    if check_answerable:
        for question, answer, expected in VERDICTS[language]:
            try:
                verdict = llm.structured(_answerable_messages(passage, QA(question=question, answer=answer)),
                                         Answerable, max_tokens=200).answerable
            except Exception:  # noqa: BLE001 -- as above: no verdict is a wrong verdict
                verdict = None
            if verdict != expected:
                result.misses.append(f"judged {answer!r} to {question[:40]!r} {verdict} (right: {expected})")
    return result

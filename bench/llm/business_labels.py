"""Labelled Korean business-document items for the judge's calibration (issue 36): long-form references.

Used by ``bench/llm/judge_labels.py`` (source ``business-ko``). KorQuAD's references are Wikipedia spans and its
long-form ones are passage sentences; what a Korean company's users ask is how-to questions on internal documents
(a Notion page, a helpdesk article), answered in one to three sentences. No Korean set of that kind with a licence
the project may use is at hand, so the eight passages below were WRITTEN FOR THIS PROJECT (a made-up company,
누리데이터; every name, number and address is invented) and are under the project's licence (MIT), like the rest of
the repository: they may be committed, unlike the KorQuAD items.

Each passage (800 to 2,000 characters, concrete facts: deadlines, amounts, system names, steps, English terms mixed
in as Korean companies write them) has two or three questions with a long-form reference, as a person at the company
would answer, and :attr:`Question.key_facts`: the facts a right answer must give (each in the passage and the
reference; ``a|b``: either wording). Each question has four candidate answers, each labelled for correctness
against the reference (:data:`LABEL`, the kind is the id's last part):

- ``reworded`` (1): the same facts in other words and order.
- ``shorter`` (1): the key facts without a non-essential clause; ``longer`` (1): the key facts and a true detail
  from the passage that the question did not ask for.
- ``partial`` (0): one key fact wrong (a deadline, an amount, a team) or one step missing (an approval).
- ``other`` (0): another question's reference from the same passage; ``false`` (0): a plausible procedure the
  passage does not allow; ``refusal`` (0): "the document does not say".

Written by hand and labelled by reading each answer against the reference; :data:`CORRECTIONS` holds the labels
where reading disagreed with the kind's rule (tests/experiments/test_business_labels.py checks the rest: right
answers give every key fact, wrong and partly right ones miss one).
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "business-ko"
OTHER = None
"""An ``other`` answer's text: filled in with the next question's reference of the same passage."""
LABEL = {"reworded": 1, "shorter": 1, "longer": 1, "partial": 0, "other": 0, "false": 0, "refusal": 0}
CORRECTIONS: dict[str, int] = {}
"""Item id -> label where reading the item disagreed with its kind's rule. None: reading all 72 agreed with the rule.
Two were close calls, kept as the rule says: ``incident-1-partial`` (0: posts in #incident and mentions on-call, but
opens no ticket with '/incident open', the step that pages on-call) and ``gpu-2-shorter`` (1: "30일 지나면" without
"마지막 접근 후"; the advice, move checkpoints to MinIO, is the reference's)."""


@dataclass(frozen=True)
class Question:
    text: str
    reference: str
    key_facts: tuple[str, ...]
    """What a right answer must give, each in the passage and the reference; ``a|b``: either wording will do."""
    answers: dict[str, str | None]
    """Kind -> candidate answer (``OTHER`` for an ``other`` answer)."""


@dataclass(frozen=True)
class Passage:
    name: str
    text: str
    questions: tuple[Question, ...]


LEAVE = Passage("leave", """\
# 연차휴가 사용 규정 (People팀, 2026년 1월 개정)

연차휴가는 입사일 기준으로 매년 부여됩니다. 1년 미만 근무자는 1개월 개근할 때마다 1일씩, 최대 11일이 발생합니다. \
1년 이상 근무자는 15일이 부여되고, 3년 이상 근무하면 2년마다 1일씩 가산되어 최대 25일까지 늘어납니다.

## 신청 방법
연차는 Flex의 '휴가 신청' 메뉴에서 사용일 3영업일 전까지 신청해야 하며, 직속 팀장의 승인이 있어야 확정됩니다. \
반차(4시간)와 반반차(2시간)도 같은 메뉴에서 신청할 수 있습니다. 연속 5일 이상 휴가를 쓰려면 2주 전까지 신청하고, \
팀장 승인 후 본부장 승인까지 받아야 합니다. 당일 아침 갑자기 아플 때는 오전 10시 전까지 팀장에게 Slack DM으로 알리고, \
복귀 후 2영업일 이내에 Flex에 병가 또는 연차로 사후 등록합니다.

## 미사용 연차
회사는 연차 사용 촉진 제도를 운영합니다. 매년 7월 1일에 People팀이 남은 연차를 메일로 안내하고, 직원은 10일 이내에 \
사용 계획을 Flex에 제출해야 합니다. 촉진 절차를 거친 뒤에도 쓰지 않은 연차는 수당으로 보상하지 않습니다. 다만 퇴사자의 \
미사용 연차는 마지막 급여일에 통상임금 기준으로 정산합니다. 다음 해로의 이월은 최대 5일까지 허용되며, 이월된 연차는 \
3월 31일까지 쓰지 않으면 소멸됩니다.

## 경조휴가
본인 결혼 5일, 자녀 결혼 1일, 배우자 출산 10일(90일 이내 분할 사용 가능), 부모·배우자 부모 사망 5일, 조부모 사망 \
3일의 유급 경조휴가가 연차와 별도로 부여됩니다. 경조휴가는 Flex에서 '경조휴가'를 선택해 신청하고, 청첩장이나 \
가족관계증명서 같은 증빙을 30일 이내에 첨부합니다.
""", (
    Question(
        "연차를 5일 이상 연속으로 쓰려면 어떻게 신청해야 하나요?",
        "연속 5일 이상 휴가는 2주 전까지 Flex의 '휴가 신청' 메뉴에서 신청해야 하고, 팀장 승인 후 본부장 승인까지 "
        "받아야 확정됩니다.",
        ("2주", "Flex", "팀장", "본부장"),
        {"reworded": "Flex에서 휴가 신청을 최소 2주 전에 올리세요. 팀장님이 먼저 승인하고 그다음 본부장님까지 승인해야 "
                     "휴가가 확정됩니다.",
         "longer": "5일 이상 연속 휴가는 사용일 2주 전까지 Flex '휴가 신청' 메뉴로 신청하고 팀장과 본부장의 승인을 "
                   "차례로 받아야 합니다. 참고로 일반 연차는 3영업일 전까지만 신청하면 되고, 반차나 반반차도 같은 "
                   "메뉴에서 신청합니다.",
         "partial": "Flex의 '휴가 신청' 메뉴에서 2주 전까지 신청하고 팀장 승인을 받으면 됩니다.",
         "other": OTHER}),
    Question(
        "다 쓰지 못한 연차는 다음 해로 넘길 수 있나요?",
        "다음 해로는 최대 5일까지만 이월할 수 있고, 이월한 연차는 3월 31일까지 쓰지 않으면 소멸됩니다.",
        ("5일", "3월 31일"),
        {"reworded": "이월 한도는 5일입니다. 넘어간 연차는 그다음 해 3월 31일이 지나면 사라지니 그 전에 쓰셔야 합니다.",
         "shorter": "5일까지 이월되고, 3월 31일까지 안 쓰면 없어집니다.",
         "partial": "최대 5일까지 이월할 수 있으며, 이월한 연차는 6월 30일까지 쓰면 됩니다.",
         "false": "미사용 연차는 이월되지 않고, 매년 12월 급여일에 통상임금 기준으로 수당이 지급됩니다."}),
))

TRAVEL = Passage("travel", """\
# 출장비 정산 가이드 (재무팀)

국내·해외 출장 경비는 모두 ERP(SAP Concur)의 '경비 정산' 메뉴에서 신청합니다. 출장 전에 ERP에서 '출장 품의'를 올려 \
팀장 승인을 먼저 받아야 하며, 품의 없이 다녀온 출장은 정산이 반려됩니다.

## 정산 기한과 지급
출장이 끝난 날로부터 7일 이내에 영수증 사진을 첨부해 정산을 신청합니다. 팀장 승인 후 재무팀이 검토하며, 매월 25일까지 \
승인된 건은 다음 달 10일에 급여 계좌로 지급됩니다. 기한을 넘긴 건은 사유서를 첨부해야 하고, 출장 종료 후 60일이 \
지나면 정산할 수 없습니다.

## 일비와 숙박비 한도
국내 출장 일비는 하루 3만 원이며 영수증 없이 지급됩니다. 숙박비는 서울·경기 1박 12만 원, 그 밖의 지역 1박 9만 원까지 \
실비로 정산합니다. 해외 출장은 일비 미화 60달러, 숙박비는 미주·유럽 1박 250달러, 아시아 1박 180달러가 한도입니다. \
한도를 넘는 금액은 본인 부담이며, 부득이한 경우 본부장 사전 승인이 있으면 예외로 인정합니다.

## 교통비
KTX와 항공권은 회사 지정 여행사(하나투어 비즈니스)를 통해 예약하는 것이 원칙입니다. 6시간 이하 비행은 이코노미석만 \
허용되며, 6시간을 넘는 비행은 임원만 비즈니스석을 이용할 수 있습니다. 자가용을 이용하면 주행거리 1km당 250원과 \
통행료·주차비를 실비로 정산하며, 출발지와 도착지를 표시한 지도 캡처를 첨부합니다. 택시는 대중교통이 없는 \
시간대(23시~06시)나 짐이 많은 경우에만 인정됩니다.

## 환율
해외 경비는 법인카드로 결제한 경우 카드사 청구 환율을, 현금으로 쓴 경우 출장 출발일의 하나은행 매매기준율을 적용합니다.
""", (
    Question(
        "출장비 정산은 언제까지, 어디서 신청하고 돈은 언제 들어오나요?",
        "출장 종료 후 7일 이내에 ERP의 '경비 정산' 메뉴에서 영수증 사진을 첨부해 신청하고, 팀장 승인 후 재무팀이 "
        "검토해 다음 달 10일에 급여 계좌로 지급합니다.",
        ("7일", "경비 정산", "영수증", "팀장", "10일"),
        {"reworded": "ERP '경비 정산'에 영수증 사진을 붙여서 출장이 끝난 뒤 7일 안에 올리세요. 팀장님 승인이 나면 "
                     "재무팀 검토를 거쳐 다음 달 10일 급여 계좌로 들어옵니다.",
         "shorter": "출장 끝나고 7일 안에 ERP '경비 정산'에서 영수증을 첨부해 신청하면, 팀장 승인 후 다음 달 10일에 "
                    "지급됩니다.",
         "partial": "출장 종료 후 14일 이내에 ERP의 '경비 정산' 메뉴에서 영수증을 첨부해 신청하면 팀장 승인 후 다음 달 "
                    "10일에 지급됩니다.",
         "false": "출장 전에 재무팀에서 현금으로 가지급금을 받아 쓰고, 남은 돈은 출장 후 한 달 안에 재무팀 계좌로 "
                  "돌려주면 됩니다."}),
    Question(
        "국내 출장으로 부산에서 묵으면 숙박비는 얼마까지 정산되나요?",
        "서울·경기 외 지역이므로 1박 9만 원까지 실비로 정산되고, 넘는 금액은 본인 부담입니다. 부득이하게 한도를 "
        "넘어야 하면 본부장 사전 승인을 받으면 예외로 인정됩니다.",
        ("9만 원", "본인 부담"),
        {"reworded": "부산은 서울·경기가 아니라서 한도가 1박 9만 원입니다. 실제 쓴 금액으로 정산하되 9만 원을 넘는 "
                     "부분은 본인 부담이고, 본부장님 사전 승인이 있으면 예외가 됩니다.",
         "shorter": "부산은 1박 9만 원까지 실비 정산이고, 초과분은 본인 부담입니다.",
         "partial": "부산은 1박 12만 원까지 실비로 정산되고, 넘는 금액은 본인 부담입니다.",
         "refusal": "출장 규정에 지역별 숙박비 한도는 나와 있지 않아 재무팀에 직접 문의하셔야 합니다."}),
    Question(
        "해외 출장에서 현금으로 쓴 경비는 어떤 환율로 정산하나요?",
        "현금으로 쓴 해외 경비는 출장 출발일의 하나은행 매매기준율을 적용해 정산합니다. 법인카드로 결제한 금액은 "
        "카드사 청구 환율을 따릅니다.",
        ("출발일", "하나은행", "매매기준율"),
        {"reworded": "출장을 떠난 날(출발일)의 하나은행 매매기준율로 환산합니다. 카드로 결제한 건 카드사가 청구한 "
                     "환율이 적용되고요.",
         "longer": "현금 사용분은 출장 출발일 기준 하나은행 매매기준율로 정산하고, 법인카드 결제분은 카드사 청구 환율을 "
                   "씁니다. 정산 신청 자체는 다른 경비처럼 출장 종료 후 7일 이내에 ERP '경비 정산'에서 합니다.",
         "partial": "현금으로 쓴 경비는 출장에서 돌아온 날의 하나은행 매매기준율로 정산합니다.",
         "other": OTHER}),
))

VPN = Passage("vpn", """\
# 재택·외부 근무 시 VPN 접속 안내 (IT지원팀)

사내 시스템(Confluence, Jira, GitLab, ERP)은 외부에서는 VPN을 통해서만 접속할 수 있습니다. VPN은 FortiClient를 \
사용하며, 회사 지급 노트북에는 이미 설치되어 있습니다. 개인 PC에서는 VPN 접속이 허용되지 않습니다.

## 처음 설정하기
1. FortiClient를 열고 '원격 접속' 탭에서 새 연결을 추가합니다. 서버 주소는 vpn.nuridata.co.kr, 포트는 10443입니다.
2. 사용자 이름은 사내 이메일의 @ 앞부분(예: hong.gildong)이고, 비밀번호는 Okta 비밀번호와 같습니다.
3. 처음 로그인하면 Okta Verify 앱으로 푸시 알림이 오며, 승인해야 연결됩니다. Okta Verify가 없다면 IT지원팀 \
포털(it.nuridata.co.kr)에서 '2단계 인증 등록'을 먼저 신청하세요.

## 자주 겪는 문제
- '자격 증명 실패'가 5번 연속 나면 계정이 30분간 잠깁니다. 30분을 기다리거나 IT지원팀 헬프데스크(내선 1234)에 \
잠금 해제를 요청하세요.
- 연결은 되는데 GitLab만 열리지 않으면 split tunneling 설정 문제입니다. FortiClient를 7.2 이상으로 업데이트한 뒤 \
다시 연결하면 대부분 해결됩니다.
- 호텔·카페 Wi-Fi에서 포트 10443이 막혀 있으면 443 포트를 쓰는 백업 서버 vpn2.nuridata.co.kr로 접속합니다.

## 보안 수칙
VPN 세션은 아무 작업이 없으면 2시간 뒤 자동으로 끊기며, 하루 최대 12시간까지 유지됩니다. 해외에서 접속하려면 출국 \
3영업일 전까지 IT지원팀 포털에 '해외 접속 신청'을 올려 승인을 받아야 하며, 승인되지 않은 국가의 IP는 차단됩니다. \
노트북을 잃어버렸다면 즉시 헬프데스크에 알려 원격 잠금을 요청해야 합니다.
""", (
    Question(
        "VPN 로그인에 계속 실패해서 계정이 잠겼어요. 어떻게 하죠?",
        "'자격 증명 실패'가 5번 연속 나면 계정이 30분간 잠기므로, 30분을 기다리거나 IT지원팀 헬프데스크(내선 1234)에 "
        "잠금 해제를 요청하면 됩니다.",
        ("30분", "1234"),
        {"reworded": "5회 연속 실패하면 30분 동안 잠기는 정책이라, 30분 뒤에 다시 시도하시거나 바로 풀어야 하면 "
                     "헬프데스크 내선 1234로 요청하세요.",
         "shorter": "30분 기다리거나 헬프데스크(내선 1234)에 잠금 해제를 요청하세요.",
         "partial": "계정이 24시간 잠기므로 다음 날 다시 시도하거나 헬프데스크(내선 1234)에 잠금 해제를 요청하세요.",
         "refusal": "VPN 계정 잠금에 관한 안내는 문서에서 찾을 수 없습니다."}),
    Question(
        "해외 출장 중에 VPN을 쓰려면 미리 무엇을 해야 하나요?",
        "출국 3영업일 전까지 IT지원팀 포털(it.nuridata.co.kr)에 '해외 접속 신청'을 올려 승인을 받아야 합니다. "
        "승인되지 않은 국가의 IP는 차단됩니다.",
        ("3영업일", "해외 접속 신청"),
        {"reworded": "IT지원팀 포털에서 '해외 접속 신청'을 하세요. 출국하기 3영업일 전까지 올려서 승인이 나야 하고, "
                     "승인 안 된 나라에서 접속하면 IP가 막힙니다.",
         "longer": "출국 3영업일 전까지 IT지원팀 포털에 '해외 접속 신청'을 올려 승인받아야 합니다. 호텔 Wi-Fi에서 10443 "
                   "포트가 막혀 있으면 443 포트를 쓰는 백업 서버 vpn2.nuridata.co.kr로 접속하면 됩니다.",
         "partial": "출국 전날까지 IT지원팀 포털에 '해외 접속 신청'을 올리면 됩니다.",
         "other": OTHER}),
))

INCIDENT = Passage("incident", """\
# 서비스 장애 대응 절차 (SRE팀, v3.2)

## 장애 등급
- SEV1: 결제·로그인 등 핵심 기능이 전체 사용자에게 동작하지 않는 경우
- SEV2: 일부 사용자 또는 핵심이 아닌 기능에 장애가 있는 경우
- SEV3: 사용자 영향이 없거나 우회 방법이 있는 경우

## 최초 대응
장애를 발견한 사람은 누구든 Slack #incident 채널에서 '/incident open' 명령으로 장애 티켓을 엽니다. 그러면 \
PagerDuty가 해당 서비스의 on-call 엔지니어를 호출합니다. on-call 엔지니어는 SEV1은 5분 이내, SEV2는 15분 이내에 \
응답(acknowledge)해야 하며, 응답이 없으면 PagerDuty가 세컨더리 on-call, 그다음 팀장 순으로 자동 에스컬레이션합니다.

SEV1이 선언되면 on-call 엔지니어가 Incident Commander(IC)를 맡거나 지정하고 Zoom 워룸을 엽니다. IC는 30분마다 \
#incident 채널과 Statuspage에 진행 상황을 업데이트합니다. 고객 공지는 CS팀이 IC의 확인을 받아 올리며, 엔지니어가 \
직접 고객에게 공지하지 않습니다.

## 복구와 롤백
배포 직후 발생한 장애는 원인 분석보다 롤백을 먼저 합니다. ArgoCD에서 직전 revision으로 되돌리며, DB 마이그레이션이 \
포함된 배포는 DBA의 승인 없이 롤백하지 않습니다.

## 사후 처리
장애가 해결되면 IC가 '/incident resolve'로 티켓을 닫습니다. SEV1과 SEV2는 해결 후 5영업일 이내에 포스트모템 문서를 \
Confluence 'Postmortem' 스페이스에 작성하고, 다음 주 화요일 장애 리뷰 회의에서 공유합니다. 포스트모템은 blameless \
원칙으로 작성하며, 재발 방지 액션 아이템마다 담당자와 기한을 정해 Jira 티켓으로 만듭니다.
""", (
    Question(
        "서비스 장애를 발견하면 가장 먼저 무엇을 해야 하나요?",
        "Slack #incident 채널에서 '/incident open' 명령으로 장애 티켓을 열면 PagerDuty가 해당 서비스의 on-call "
        "엔지니어를 호출합니다.",
        ("#incident", "/incident open", "on-call"),
        {"reworded": "누구든 장애를 보면 #incident 채널에 '/incident open'을 입력해 티켓을 만드세요. 그러면 on-call "
                     "엔지니어에게 PagerDuty 호출이 자동으로 갑니다.",
         "longer": "#incident 채널에 '/incident open' 명령으로 티켓을 열면 PagerDuty가 on-call 엔지니어를 부릅니다. "
                   "on-call은 SEV1이면 5분, SEV2면 15분 안에 응답해야 하고, 응답이 없으면 세컨더리 on-call과 팀장 "
                   "순으로 에스컬레이션됩니다.",
         "partial": "Slack #incident 채널에 장애 내용을 글로 올리고 on-call 엔지니어를 직접 멘션하면 됩니다.",
         "false": "먼저 ArgoCD에서 직전 revision으로 롤백한 뒤, 원인을 파악해 팀장에게 메일로 보고합니다."}),
    Question(
        "SEV1 장애 중에 고객 공지는 누가 올리나요?",
        "고객 공지는 CS팀이 Incident Commander(IC)의 확인을 받아 올리며, 엔지니어가 직접 고객에게 공지하지 않습니다.",
        ("CS팀", "IC"),
        {"reworded": "엔지니어는 고객에게 직접 공지하지 않습니다. IC가 내용을 확인해 주면 CS팀이 고객 공지를 올립니다.",
         "shorter": "CS팀이 IC의 확인을 받아서 올립니다.",
         "partial": "CS팀이 바로 올립니다. 엔지니어가 직접 공지하지는 않습니다.",
         "refusal": "죄송하지만 해당 문서에는 고객 공지 담당에 대한 내용이 없습니다."}),
    Question(
        "장애 포스트모템은 언제까지 어디에 써야 하나요?",
        "SEV1과 SEV2 장애는 해결 후 5영업일 이내에 Confluence 'Postmortem' 스페이스에 포스트모템을 작성하고, 다음 주 "
        "화요일 장애 리뷰 회의에서 공유합니다.",
        ("5영업일", "Postmortem"),
        {"reworded": "장애가 해결된 날부터 5영업일 안에 Confluence의 'Postmortem' 스페이스에 작성하면 됩니다(SEV1·SEV2 "
                     "대상). 작성한 문서는 그다음 주 화요일 장애 리뷰에서 공유합니다.",
         "longer": "SEV1·SEV2는 해결 후 5영업일 이내에 Confluence 'Postmortem' 스페이스에 작성하고 다음 주 화요일 장애 "
                   "리뷰 회의에서 공유합니다. blameless 원칙으로 쓰고, 재발 방지 액션 아이템마다 담당자와 기한을 정해 "
                   "Jira 티켓으로 만듭니다.",
         "partial": "해결 후 5영업일 이내에 Jira에 포스트모템 티켓을 만들어 작성합니다.",
         "other": OTHER}),
))

PURCHASE = Passage("purchase", """\
# 구매 요청 절차 (경영지원팀)

업무용 물품, 소프트웨어, 외주 용역은 모두 구매 시스템 'Procure'(procure.nuridata.co.kr)에서 구매 요청(PR)을 \
올려야 합니다. 개인 카드로 먼저 사고 나중에 청구하는 것은 50만 원 이하 소모품에만 허용됩니다.

## 금액별 승인
- 100만 원 미만: 팀장 승인
- 100만 원 이상 1,000만 원 미만: 팀장 → 본부장 승인
- 1,000만 원 이상: 팀장 → 본부장 → CFO 승인, 그리고 견적서 2곳 이상 비교 필수

금액은 부가세를 포함한 총액 기준이며, 같은 품목을 나눠서 요청해 승인 단계를 피하는 것은 금지됩니다.

## 소프트웨어와 SaaS
SaaS 구독이나 소프트웨어 라이선스는 PR을 올리기 전에 보안팀의 'SaaS 보안 검토'를 받아야 합니다. 검토는 보통 \
5영업일이 걸리며, 고객 데이터나 개인정보를 다루는 서비스는 개인정보보호 담당자 검토가 추가됩니다. 연간 계약은 \
갱신일 30일 전까지 사용 부서가 갱신 여부를 Procure에 등록해야 하며, 등록이 없으면 자동 해지 절차가 진행됩니다.

## 납품과 검수
물품이 도착하면 요청자가 7일 이내에 Procure에서 '검수 완료'를 눌러야 거래처에 대금이 지급됩니다. 검수가 늦어지면 \
지급이 밀리고 거래처와의 신뢰에 영향을 주므로 주의해 주세요. 노트북·모니터 같은 IT 자산은 IT지원팀이 자산 태그를 \
붙인 뒤 지급합니다. 반품이나 교환은 검수 전에만 가능하며, Procure의 '반품 요청'으로 경영지원팀에 알립니다.

## 자주 묻는 질문
급한 구매라도 PR 없이 발주하면 대금 지급이 보류됩니다. 달러로 결제하는 해외 SaaS는 PR 승인 후 \
재무팀이 법인카드로 대신 결제하며, 요청자가 개인 카드로 결제하지 않습니다. 진행 상황은 Procure의 '내 요청' 화면에서 \
확인할 수 있습니다.
""", (
    Question(
        "1,500만 원짜리 장비를 사려면 어떤 승인이 필요하나요?",
        "1,000만 원 이상이므로 Procure에 구매 요청(PR)을 올려 팀장, 본부장, CFO 순으로 승인을 받아야 하고, 견적서를 "
        "2곳 이상 받아 비교해야 합니다.",
        ("팀장", "본부장", "CFO", "2곳"),
        {"reworded": "천만 원이 넘는 구매라서 견적서를 최소 2곳에서 받아 비교해야 하고, 승인은 팀장님과 본부장님을 "
                     "거쳐 CFO까지 받아야 합니다. 요청은 Procure에서 PR로 올립니다.",
         "shorter": "팀장·본부장·CFO 승인이 필요하고, 견적서 2곳 이상 비교가 필수입니다.",
         "partial": "Procure에 PR을 올려 팀장과 본부장 승인을 받고, 견적서를 2곳 이상 비교하면 됩니다.",
         "false": "금액을 1,000만 원 미만 두 건으로 나눠 요청하면 팀장 승인만으로 살 수 있습니다."}),
    Question(
        "새 SaaS를 도입하고 싶은데 PR을 올리기 전에 해야 할 일이 있나요?",
        "PR을 올리기 전에 보안팀의 'SaaS 보안 검토'를 받아야 하며 보통 5영업일이 걸립니다. 고객 데이터나 개인정보를 "
        "다루는 서비스라면 개인정보보호 담당자 검토도 추가로 받아야 합니다.",
        ("보안팀", "SaaS 보안 검토"),
        {"reworded": "네, 먼저 보안팀에 'SaaS 보안 검토'를 요청해야 합니다. 대개 5영업일 정도 걸리고, 그 서비스가 고객 "
                     "데이터나 개인정보를 처리하면 개인정보보호 담당자 검토까지 거쳐야 PR을 올릴 수 있습니다.",
         "shorter": "보안팀의 'SaaS 보안 검토'를 먼저 받으세요. 개인정보를 다루는 서비스면 개인정보보호 담당자 검토도 "
                    "필요합니다.",
         "partial": "PR을 올리기 전에 개인정보보호 담당자에게 'SaaS 보안 검토'를 받으면 되고, 보통 5영업일이 걸립니다.",
         "refusal": "문서에 SaaS 구매 관련 안내가 없어서 답변드리기 어렵습니다. 경영지원팀에 문의해 주세요."}),
))

CARD = Passage("card", """\
# 법인카드 사용 규정 (재무팀)

법인카드는 팀장 이상과 재무팀이 지정한 직원에게 발급되며, 업무 목적의 비용에만 쓸 수 있습니다. 카드를 쓴 뒤에는 \
결제일로부터 5영업일 이내에 ERP '법인카드 사용 내역'에서 건별로 용도와 참석자를 입력하고 영수증을 첨부해야 합니다. \
입력 기한을 넘긴 내역이 3건 이상 쌓이면 카드가 자동으로 정지됩니다.

## 사용 한도
- 식대(회식 포함): 1인당 1회 5만 원 이하. 외부 고객과의 식사는 1인당 10만 원까지 허용되며, 참석한 고객사와 \
이름을 반드시 적습니다.
- 팀 회식은 분기별 1인당 10만 원의 팀 회식비 예산 안에서만 쓸 수 있습니다.
- 23시 이후 결제와 주말·공휴일 결제는 사유를 함께 입력해야 하며 재무팀 사후 검토 대상입니다.

## 사용 금지
유흥업소, 골프장, 상품권·기프티콘 구매, 개인 물품 구매, 현금서비스는 금지됩니다. 금지 항목에 사용하면 전액을 \
본인이 반납해야 하며, 두 번째 위반부터는 카드가 회수되고 인사위원회에 회부됩니다.

## 분실과 반납
카드를 잃어버리면 즉시 카드사(신한카드 법인센터 1544-7000)에 분실 신고를 하고, 24시간 이내에 재무팀에 \
메일(finance@nuridata.co.kr)로 알립니다. 퇴사하거나 직무가 바뀌어 카드가 필요 없어지면 마지막 근무일 전에 카드를 \
재무팀에 반납합니다.

## 해외 사용
해외 출장 중에도 같은 카드를 쓸 수 있으며, 해외 결제 내역은 카드사 청구 환율로 \
원화 환산되어 ERP에 들어옵니다. 해외에서 쓰기 전에는 ERP에서 '해외 사용 등록'을 해 두어야 승인 거절을 피할 수 \
있습니다. 해외 원화결제(DCC)는 수수료가 붙으므로 현지 통화로 결제합니다.
""", (
    Question(
        "법인카드로 결제한 뒤에는 무엇을 언제까지 해야 하나요?",
        "결제일로부터 5영업일 이내에 ERP '법인카드 사용 내역'에서 건별로 용도와 참석자를 입력하고 영수증을 첨부해야 "
        "합니다. 기한을 넘긴 내역이 3건 이상 쌓이면 카드가 자동으로 정지됩니다.",
        ("5영업일", "법인카드 사용 내역", "영수증"),
        {"reworded": "카드를 쓴 날부터 5영업일 안에 ERP의 '법인카드 사용 내역' 화면에서 건마다 용도와 참석자를 적고 "
                     "영수증을 붙이세요. 기한이 지난 건이 3건 이상 쌓이면 카드가 자동으로 막힙니다.",
         "shorter": "결제 후 5영업일 이내에 ERP '법인카드 사용 내역'에 용도와 참석자를 입력하고 영수증을 첨부합니다.",
         "partial": "결제 후 한 달 이내에 ERP '법인카드 사용 내역'에 용도와 참석자를 입력하고 영수증을 첨부하면 됩니다.",
         "other": OTHER}),
    Question(
        "거래처 고객과 저녁을 먹을 때 법인카드는 얼마까지 쓸 수 있나요?",
        "외부 고객과의 식사는 1인당 10만 원까지 법인카드로 쓸 수 있고, 사용 내역에 참석한 고객사와 이름을 반드시 "
        "적어야 합니다.",
        ("1인당 10만 원|한 사람당 10만 원", "고객사"),
        {"reworded": "고객과 함께한 식사라면 한 사람당 10만 원이 한도입니다. 내역을 입력할 때 같이 식사한 고객사와 "
                     "참석자 이름을 꼭 남기세요.",
         "longer": "고객 식사는 1인당 10만 원까지이고, 참석한 고객사와 이름을 적어야 합니다. 직원끼리 식사는 1인당 "
                   "5만 원이 한도이며, 23시 이후나 주말에 결제하면 사유도 함께 입력해야 합니다.",
         "partial": "1인당 5만 원까지 쓸 수 있고, 참석한 고객사와 이름을 적어야 합니다.",
         "false": "고객 식사는 한도가 없으니 금액과 관계없이 결제하고, 나중에 팀 회식비 예산에서 차감하면 됩니다."}),
))

PRIVACY = Passage("privacy", """\
# 개인정보 처리 지침 (개인정보보호팀)

고객 개인정보(이름, 전화번호, 이메일, 주소, 결제 정보)는 업무상 꼭 필요한 사람만, 필요한 범위에서만 열람합니다. \
운영 DB의 개인정보 열람 권한은 IAM 포털에서 '개인정보 접근 권한'을 신청해 팀장과 개인정보보호 책임자(CPO)의 승인을 \
받아야 부여되며, 권한은 최대 90일 동안 유효합니다. 모든 조회 기록은 접근 로그로 2년간 보관됩니다.

## 다운로드와 전송
고객 데이터를 Excel·CSV로 내려받는 것은 1,000건 이하만 허용되며, 파일은 반드시 비밀번호로 암호화합니다. 1,000건을 \
넘는 추출은 Jira 'PRIV' 프로젝트에 '대량 추출 요청'을 올려 CPO 승인을 받은 뒤 데이터팀이 마스킹해서 제공합니다. \
개인정보가 담긴 파일은 개인 이메일, 카카오톡, 외부 클라우드(Google Drive, Dropbox 등)로 보내면 안 되며, 사내 공유에는 \
사내 NAS의 '보안 폴더'만 사용합니다.

## 파기
업무 목적을 달성한 개인정보 파일은 즉시, 늦어도 목적 달성 후 5일 이내에 파기하고 'PRIV' 티켓에 파기 일자를 \
기록합니다.

## 유출 사고
개인정보가 잘못 전송되거나 유출된 것을 알게 되면 1시간 이내에 개인정보보호팀(privacy@nuridata.co.kr, 내선 7000)에 \
신고해야 합니다. 개인정보보호팀은 사안을 검토해 72시간 이내에 개인정보보호위원회 신고와 이용자 통지 여부를 \
결정합니다. 신고를 늦추거나 숨기면 징계 사유가 됩니다.

## 교육과 점검
모든 임직원은 매년 11월까지 사내 LMS에서 \
개인정보보호 교육을 이수해야 하며, 미이수자는 운영 DB 접근 권한이 정지됩니다. 개인정보보호팀은 분기마다 접근 로그를 \
점검해 90일 이상 쓰지 않은 권한을 회수합니다.
""", (
    Question(
        "고객 데이터 5,000건을 분석용으로 받아야 하는데 어떻게 하나요?",
        "1,000건을 넘는 추출이므로 Jira 'PRIV' 프로젝트에 '대량 추출 요청'을 올려 CPO 승인을 받아야 하고, 승인 후 "
        "데이터팀이 마스킹해서 제공합니다.",
        ("PRIV", "대량 추출 요청", "CPO", "마스킹"),
        {"reworded": "직접 내려받을 수 있는 건 1,000건까지라서, Jira PRIV 프로젝트에 '대량 추출 요청' 티켓을 만들고 "
                     "CPO 승인을 받으세요. 그러면 데이터팀이 마스킹 처리한 데이터를 전달해 줍니다.",
         "shorter": "Jira 'PRIV'에 '대량 추출 요청'을 올려 CPO 승인을 받으면 데이터팀이 마스킹해서 줍니다.",
         "partial": "Jira 'PRIV' 프로젝트에 '대량 추출 요청'을 올리고 팀장 승인을 받으면 데이터팀이 마스킹해서 "
                    "제공합니다.",
         "false": "Excel로 내려받은 뒤 파일에 비밀번호를 걸어 두면 5,000건도 직접 받아서 쓸 수 있습니다."}),
    Question(
        "고객 정보가 담긴 메일을 다른 고객에게 잘못 보냈어요. 어떻게 해야 하나요?",
        "알게 된 때부터 1시간 이내에 개인정보보호팀(privacy@nuridata.co.kr, 내선 7000)에 신고해야 합니다. "
        "개인정보보호팀이 72시간 이내에 개인정보보호위원회 신고와 이용자 통지 여부를 결정합니다.",
        ("1시간", "개인정보보호팀"),
        {"reworded": "바로 개인정보보호팀에 알리세요. 메일 privacy@nuridata.co.kr이나 내선 7000으로, 알게 된 뒤 1시간 "
                     "안에 신고해야 하고, 위원회 신고나 고객 통지는 그 팀이 72시간 안에 판단합니다.",
         "longer": "1시간 이내에 개인정보보호팀(privacy@nuridata.co.kr, 내선 7000)에 신고하세요. 그 팀이 72시간 안에 "
                   "위원회 신고와 이용자 통지 여부를 정합니다. 신고를 늦추거나 숨기면 징계 사유가 됩니다.",
         "partial": "24시간 이내에 개인정보보호팀(privacy@nuridata.co.kr, 내선 7000)에 신고하면 됩니다.",
         "other": OTHER}),
))

GPU = Passage("gpu", """\
# 사내 GPU 클러스터 사용 안내 (ML Platform팀)

사내 GPU 클러스터 'Hanul'은 A100 80GB 32장(노드 4대 × 8장)과 H100 80GB 16장(노드 2대 × 8장)으로 구성되어 있으며, \
Slurm으로 작업을 스케줄링합니다. 계정은 IT지원팀 포털에서 'GPU 클러스터 계정'을 신청하고, 팀장 승인 후 ML Platform팀이 \
1영업일 안에 만들어 줍니다.

## 작업 제출
로그인 노드(hanul-login.nuridata.internal)에 SSH로 접속해 sbatch로 배치 작업을 제출합니다. 로그인 노드에서 직접 학습을 \
돌리면 안 되며, 발견되면 프로세스가 종료됩니다. 기본 파티션은 a100이고, H100은 --partition=h100으로 지정합니다. 한 작업의 \
최대 실행 시간은 a100 72시간, h100 24시간이며, 이보다 긴 학습은 체크포인트를 저장하고 재제출해야 합니다. 인터랙티브 \
작업(srun --pty)은 GPU 1장, 최대 4시간까지만 허용됩니다.

## 쿼터와 우선순위
팀별로 동시에 쓸 수 있는 GPU는 기본 16장입니다. 논문 마감이나 출시 일정 때문에 더 필요하면 #ml-platform 채널에 2주 \
전까지 '쿼터 증설 요청' 양식을 올립니다. 우선순위는 fair-share 방식이라 최근 7일 사용량이 많은 팀의 작업이 뒤로 밀립니다.

## 저장소
홈 디렉터리(/home)는 1인당 50GB, 공용 데이터는 /data(읽기 전용), 작업용은 /scratch를 씁니다. /scratch의 파일은 마지막 \
접근 후 30일이 지나면 자동 삭제되고 백업되지 않으므로, 보관할 체크포인트와 모델은 사내 MinIO의 팀 버킷으로 옮겨야 \
합니다. 고객 개인정보가 담긴 데이터는 클러스터에 올리지 않습니다.
""", (
    Question(
        "H100으로 48시간짜리 학습을 돌리려면 어떻게 해야 하나요?",
        "h100 파티션은 한 작업의 최대 실행 시간이 24시간이므로, sbatch로 --partition=h100을 지정해 제출하되 체크포인트를 "
        "저장해 두고 24시간 안에 끊어 재제출해야 합니다.",
        ("24시간", "체크포인트", "h100"),
        {"reworded": "H100 작업은 24시간이 최대라서 한 번에 48시간을 돌릴 수는 없습니다. sbatch에 --partition=h100을 주고, "
                     "중간에 체크포인트를 저장해 두었다가 이어서 다시 제출하세요.",
         "longer": "h100 파티션은 작업당 최대 24시간이므로 sbatch로 --partition=h100을 지정해 제출하고, 체크포인트를 "
                   "저장한 뒤 재제출해 이어서 학습합니다. 보관할 체크포인트는 30일 뒤 자동 삭제되는 /scratch가 아니라 "
                   "MinIO 팀 버킷으로 옮겨 두세요.",
         "partial": "sbatch에 --partition=h100을 지정하면 최대 72시간까지 돌릴 수 있으니 한 번에 제출하면 됩니다.",
         "refusal": "GPU 클러스터의 작업 시간 제한은 안내 문서에 나와 있지 않습니다. ML Platform팀에 문의하세요."}),
    Question(
        "학습 결과 체크포인트를 /scratch에 계속 두어도 되나요?",
        "/scratch의 파일은 마지막 접근 후 30일이 지나면 자동 삭제되고 백업도 되지 않으므로, 보관할 체크포인트는 사내 "
        "MinIO의 팀 버킷으로 옮겨야 합니다.",
        ("30일", "MinIO"),
        {"reworded": "계속 둘 수는 없습니다. /scratch는 백업이 없고 30일 동안 접근하지 않은 파일은 자동으로 지워지니, "
                     "남겨야 할 체크포인트는 MinIO 팀 버킷에 옮기세요.",
         "shorter": "안 됩니다. 30일 지나면 자동 삭제되니 MinIO 팀 버킷으로 옮기세요.",
         "partial": "/scratch 파일은 마지막 접근 후 30일이 지나면 삭제되므로, 필요한 체크포인트는 홈 디렉터리(/home)로 "
                    "옮겨 두면 됩니다.",
         "false": "/scratch는 매일 백업되므로 계속 두어도 되고, 용량이 부족하면 ML Platform팀에 증설을 요청하면 됩니다."}),
))

PASSAGES = (LEAVE, TRAVEL, VPN, INCIDENT, PURCHASE, CARD, PRIVACY, GPU)


def answer_text(passage: Passage, index: int, kind: str) -> str:
    """The candidate answer of kind ``kind`` to the passage's question ``index``; an ``other`` answer is the next
    question's reference (the first question's, after the last)."""
    text = passage.questions[index].answers[kind]
    return text if text is not OTHER else passage.questions[(index + 1) % len(passage.questions)].reference


def items() -> list[dict]:
    """Every labelled item, in the labels.jsonl layout of experiments/calibration.py (ids end with the kind)."""
    out = []
    for passage in PASSAGES:
        for index, question in enumerate(passage.questions):
            for kind in question.answers:
                item_id = f"{SOURCE}-{passage.name}-{index + 1}-{kind}"
                out.append({"id": item_id, "question": question.text, "answer": answer_text(passage, index, kind),
                            "reference": question.reference, "label": CORRECTIONS.get(item_id, LABEL[kind]),
                            "metric": "correctness", "source": SOURCE})
    return out

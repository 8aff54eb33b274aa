"""A synthetic corpus of company documents for scale benchmarks: 10k, 100k or 1M chunks of
readable policy, manual and finance prose (English, with a share of Chinese), plus questions
that each name one chunk.

    python bench/synth_corpus.py --chunks 100000 --out /tmp/synth-100k   # chunks.jsonl, queries.jsonl

The text comes from sentence templates filled from domain vocabularies. The vocabularies are
long-tailed the way real collections are: a few hundred common words drawn by a Zipf law, and
thousands of rare names (products, people, systems, cities, form codes, amounts), so BM25
posting lists have realistic lengths. The same seed gives the same corpus, byte for byte.
chunks.jsonl uses the index's own chunk format (citekb.retrieval.store.chunk_to_json), so a
benchmark can load it as-is; `generate()` yields the Chunks directly, without a file."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from citekb.ingest.document import Chunk, Locator, Span
from tqdm import tqdm

TOPICS: dict[str, dict[str, list[str]]] = {
    "Annual Leave": {
        "noun": "leave allowance entitlement holiday carry-over request calendar absence manager approval notice period year balance public-holiday sabbatical".split(),
        "verb": "approve request record carry book cancel schedule reduce extend grant".split(),
        "adj": "paid unpaid annual statutory remaining unused additional prorated".split(),
    },
    "Travel and Expenses": {
        "noun": "flight hotel receipt per-diem mileage taxi reimbursement claim invoice booking fare allowance itinerary card limit".split(),
        "verb": "reimburse submit book approve claim settle attach exceed itemise refund".split(),
        "adj": "economy business domestic international receipted corporate itemised nightly".split(),
    },
    "Information Security": {
        "noun": "password laptop incident firewall encryption token account access backup patch vulnerability phishing audit log certificate".split(),
        "verb": "encrypt report rotate revoke patch restrict monitor escalate lock disable".split(),
        "adj": "confidential privileged multi-factor encrypted critical suspicious external removable".split(),
    },
    "Procurement": {
        "noun": "supplier contract tender quotation purchase-order budget vendor invoice framework delivery warranty catalogue".split(),
        "verb": "negotiate sign award renew terminate invoice order evaluate shortlist audit".split(),
        "adj": "approved preferred competitive single-source annual framework capital".split(),
    },
    "Product Operation": {
        "noun": "device sensor firmware display battery filter cartridge pump valve calibration reset error warranty cable adapter".split(),
        "verb": "install calibrate replace clean reset mount connect update inspect charge".split(),
        "adj": "front rear default low high flashing red green spare certified".split(),
    },
    "Health and Safety": {
        "noun": "evacuation extinguisher first-aider hazard risk-assessment ladder helmet injury drill assembly-point chemical spill".split(),
        "verb": "evacuate report inspect wear store label assess train isolate notify".split(),
        "adj": "flammable hazardous protective emergency mandatory quarterly designated".split(),
    },
    "Payroll and Benefits": {
        "noun": "salary bonus pension payslip overtime deduction allowance insurance dental relocation stipend tax".split(),
        "verb": "pay deduct enrol review adjust contribute process calculate withhold backdate".split(),
        "adj": "monthly gross net taxable pensionable annual discretionary".split(),
    },
}
SECTIONS = "Scope Eligibility Procedure Approval Responsibilities Exceptions Records Definitions Limits Contacts".split()
DEPARTMENTS = "Finance, People Operations, IT Service Desk, Facilities, Legal, Procurement, Customer Support, Engineering, Sales, Compliance".split(", ")
ROLES = "line manager, department head, finance controller, security officer, HR business partner, team lead, chief operating officer".split(", ")
CITIES = ("London Berlin Paris Madrid Lisbon Dublin Warsaw Prague Vienna Zurich Milan Oslo Helsinki Tallinn Riga Athens Sofia "
          "Boston Chicago Denver Austin Toronto Montreal Singapore Tokyo Seoul Sydney Auckland Mumbai Dubai Nairobi Lagos Lima").split()
FIRST = "Alice Bruno Chen Dara Elena Farid Greta Hiro Ines Jonas Kemal Lena Marta Nikos Olga Priya Quentin Rosa Sven Tariq Uma Viktor Wen Yara Zoltan".split()
LAST = "Abbott Brennan Castillo Dvorak Eriksen Fischer Garcia Hoffmann Ivanova Jensen Kowalski Lindqvist Moreau Novak Okafor Petrov Quinn Rossi Schmidt Tanaka Ueda Varga Weber Yilmaz Zhang".split()
SYLLABLES = "ka lo ve tor bri an mi sol dex ra quin nor el fa zen tri vo ly sa ter mo pex ul ga ron di ax be".split()

TEMPLATES = [
    "Employees must {verb} the {adj} {noun} before the end of each {period}.",
    "The {role} in {dept} is responsible for every {noun} above {amount}.",
    "Requests to {verb} a {noun} are sent through {system} and answered within {days} working days.",
    "A {adj} {noun} that is not recorded in {system} cannot be {done} later.",
    "Staff based in {city} should contact {person} in {dept} about the {noun}.",
    "Form {code} covers the {adj} {noun} and must be signed by the {role}.",
    "If the {noun} exceeds {amount}, the {role} must {verb} it in writing.",
    "The {product} {noun} is {done} every {days} days by the {dept} team.",
    "No {noun} may be {done} without a {adj} {noun2} on file.",
    "From {month} onwards, the {adj} {noun} limit in {city} is {amount}.",
    "{person} approved the revised {noun} procedure for {dept} on {date}.",
    "Where a {noun} is {adj}, employees should {verb} the {noun2} immediately and inform the {role}.",
    "The {system} portal lists each {noun} with its {adj} {noun2} and reference {code}.",
    "Teams in {city} and {city2} share one {noun} budget of {amount} per {period}.",
    "Any {adj} {noun} reported after {days} days is reviewed by {dept}.",
    "Section {code} explains how to {verb} a {noun} for the {product} range.",
    "The {role} may grant an exception to the {noun} rule for up to {days} days.",
    "Keep the {noun} and the {noun2} together; auditors ask for both.",
]
ZH_TOPICS = {
    "年假制度": "年假 病假 调休 加班 工资 审批 申请 假期 考勤 主管 人事部 合同 员工 试用期 补贴".split(),
    "信息安全": "密码 电脑 账号 权限 加密 备份 病毒 防火墙 数据 泄露 审计 日志 服务器 网络 证书".split(),
    "报销流程": "发票 机票 酒店 出差 报销 预算 财务部 审批 标准 交通费 住宿费 餐费 金额 单据 付款".split(),
    "产品说明": "设备 电池 屏幕 按钮 滤芯 指示灯 故障 保修 安装 清洁 充电 重启 固件 说明书 配件".split(),
}
ZH_TEMPLATES = [
    "员工应在{days}个工作日内提交{a}申请，并由{b}负责审批。",
    "{a}超过{amount}元时，须经{b}书面确认后方可办理。",
    "在{city}工作的员工如有{a}问题，请联系{person}。",
    "所有{a}记录须保存在{system}系统中，保存期限为{days}个月。",
    "如发现{a}异常，应立即报告{b}，并暂停相关{c}。",
    "{a}和{b}须一并归档，以备内部审计检查。",
]
ZH_CITIES = "北京 上海 广州 深圳 杭州 成都 武汉 南京 西安 苏州".split()
ZH_NAMES = "王伟 李娜 张敏 刘洋 陈静 杨帆 赵磊 黄丽 周强 吴婷".split()
MONTHS = "January February March April May June July August September October November December".split()
PERIODS = "month quarter year week".split()


def _zipf(items: Sequence[str], s: float = 1.0) -> tuple[Sequence[str], list[float]]:
    """items with cumulative Zipf weights, for random.choices(cum_weights=...)."""
    return items, list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(len(items))))


_ARTICLE = re.compile(r"\ba ([aeiou])")
_IRREGULAR = {"pay": "paid", "wear": "worn", "submit": "submitted", "withhold": "withheld"}


def _past(verb: str) -> str:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


@dataclass(frozen=True, slots=True)
class SynthQuery:
    query: str
    chunk_id: str  # the chunk the question was written from
    language: str


class _Writer:
    """Fills templates from the vocabularies with one seeded random generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = random.Random(seed + 1)
        # The long tail: names and codes that occur in few documents each, as in a real company.
        self.products = [("".join(rng.sample(SYLLABLES, 3))).capitalize() + f" {rng.choice('ABCDEFGHKMXZ')}{rng.randint(1, 99)}"
                         for _ in range(4000)]
        self.systems = ["".join(rng.sample(SYLLABLES, 2)).capitalize() + suffix
                        for suffix in ("Hub", "Desk", "Flow", "Net", "Portal") for _ in range(80)]
        self.people = [f"{f} {l}" for f, l in itertools.product(FIRST, LAST)]
        rng.shuffle(self.people)
        self.pools = {name: _zipf(pool, 0.8) for name, pool in {"person": self.people, "product": self.products,
                                                                 "system": self.systems, "city": CITIES}.items()}

    def pick(self, name: str) -> str:
        items, cum = self.pools[name]
        return self.rng.choices(items, cum_weights=cum)[0]  # type: ignore[index]

    def amount(self) -> str:
        return f"£{self.rng.choice([50, 100, 250, 500, 750, 1000, 1500, 2000, 2500, 5000, 10000, 25000]) * self.rng.choice([1, 1, 1, 2, 3]):,}"

    def english(self, topic: dict[str, list[str]]) -> str:
        r = self.rng
        noun, noun2 = r.sample(topic["noun"], 2)
        fill = {
            "verb": r.choice(topic["verb"]), "adj": r.choice(topic["adj"]), "noun": noun, "noun2": noun2,
            "role": r.choice(ROLES), "dept": r.choice(DEPARTMENTS), "amount": self.amount(),
            "system": self.pick("system"), "days": str(r.choice([2, 3, 5, 7, 10, 14, 20, 28, 30, 60, 90])),
            "city": self.pick("city"), "city2": self.pick("city"), "person": self.pick("person"),
            "code": f"{r.choice(['HR', 'FIN', 'SEC', 'OPS', 'PRC', 'HS'])}-{r.randint(100, 9999)}",
            "product": self.pick("product"), "month": r.choice(MONTHS), "period": r.choice(PERIODS),
            "date": f"{r.randint(1, 28)} {r.choice(MONTHS)} {r.randint(2019, 2026)}",
        }
        fill["done"] = _past(fill["verb"])
        sentence = _ARTICLE.sub(r"an \1", r.choice(TEMPLATES).format(**fill))
        return sentence[0].upper() + sentence[1:]

    def chinese(self, words: list[str]) -> str:
        r = self.rng
        a, b, c = r.sample(words, 3)
        return r.choice(ZH_TEMPLATES).format(a=a, b=b, c=c, days=r.choice([3, 5, 7, 15, 30]), amount=r.choice([500, 2000, 5000]),
                                             city=r.choice(ZH_CITIES), person=r.choice(ZH_NAMES), system=self.pick("system"))


def generate(n_chunks: int, seed: int = 0, zh_share: float = 0.1, show_progress: bool = False) -> Iterator[Chunk]:
    """n_chunks chunks, grouped into documents of 8-60 chunks. Each chunk has 2-3 paragraphs of
    2-5 sentences (about 150 words, or 250 characters of Chinese) under a heading path."""
    w = _Writer(seed)
    r = w.rng
    made = 0
    bar = tqdm(total=n_chunks, desc="synth", unit="chunk", disable=not show_progress, file=sys.stderr, leave=False)
    for doc_no in itertools.count():
        chinese = r.random() < zh_share
        doc_id = hashlib.sha256(f"citekb-synth-{seed}-{doc_no}".encode()).hexdigest()[:16]
        topic_name = r.choice(list(ZH_TOPICS if chinese else TOPICS))
        title = f"{topic_name}（{r.choice(ZH_CITIES)}）" if chinese else f"{topic_name} Policy: {r.choice(DEPARTMENTS)}"
        source = f"{'zh-' if chinese else ''}{topic_name.lower().replace(' ', '-')}-{doc_no:07d}.pdf"
        page, offset = 1, 0
        for ordinal in range(min(r.randint(8, 60), n_chunks - made)):
            section = (title, f"{ordinal // 3 + 1}. {r.choice(SECTIONS)}")
            text, spans = "", []
            for _ in range(r.randint(2, 3)):
                if chinese:
                    para = "".join(w.chinese(ZH_TOPICS[topic_name]) for _ in range(r.randint(2, 5)))
                else:
                    para = " ".join(w.english(TOPICS[topic_name]) for _ in range(r.randint(2, 5)))
                start = len(text) + (1 if text else 0)
                text = f"{text}\n{para}" if text else para
                spans.append(Span(start, len(text), page, None, None))
                page += r.random() < 0.4
            last = spans[-1].page
            locator = Locator(doc_id=doc_id, source=source, title=title, page=spans[0].page, page_end=last,
                              section=section, char_start=offset, char_end=offset + len(text))
            offset += len(text) + 1
            yield Chunk(chunk_id=f"{doc_id}:{ordinal}", text=text, locator=locator, spans=tuple(spans))
            made += 1
            bar.update()
        if made >= n_chunks:
            bar.close()
            return


def make_queries(chunks: Sequence[Chunk], n: int, seed: int = 0) -> list[SynthQuery]:
    """n questions, each built from words of one sentence of a chunk drawn at random; English
    ones ask about three to five of its content words, Chinese ones about two of its terms."""
    from citekb.retrieval.analyze import ENGLISH_STOPWORDS

    r = random.Random(seed + 7)
    out = []
    for chunk in r.sample(list(chunks), min(n, len(chunks))):
        sentences = [s for s in chunk.text.replace("\n", " ").replace("。", "。\n").replace(". ", ".\n").splitlines() if s.strip()]
        sentence = r.choice(sentences)
        if any("\u4e00" <= ch <= "\u9fff" for ch in sentence):
            terms = [t for words in ZH_TOPICS.values() for t in words if t in sentence]
            picked = r.sample(terms, min(2, len(terms))) or [sentence[:4]]
            out.append(SynthQuery("".join(picked) + "有什么规定？", chunk.chunk_id, "zh"))
            continue
        words = [t.strip(".,;:") for t in sentence.split()]
        words = [t for t in words if t.lower() not in ENGLISH_STOPWORDS and len(t) > 2]
        picked = r.sample(words, min(len(words), r.randint(3, 5)))
        out.append(SynthQuery(f"What does the policy say about {' '.join(picked)}?", chunk.chunk_id, "en"))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    from citekb.retrieval.store import chunk_to_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zh-share", type=float, default=0.1, help="share of documents written in Chinese")
    parser.add_argument("--out", type=Path, required=True, help="folder for chunks.jsonl and queries.jsonl")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    chunks = []
    with (args.out / "chunks.jsonl").open("w", encoding="utf-8") as f:
        for c in generate(args.chunks, args.seed, args.zh_share, show_progress=True):
            f.write(json.dumps(chunk_to_json(c), ensure_ascii=False) + "\n")
            chunks.append(c)
    with (args.out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for q in make_queries(chunks, args.queries, args.seed):
            f.write(json.dumps({"query": q.query, "chunk_id": q.chunk_id, "language": q.language}, ensure_ascii=False) + "\n")
    print(f"wrote {len(chunks)} chunks and {min(args.queries, len(chunks))} queries to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

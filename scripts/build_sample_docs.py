"""Build the small bilingual sample corpus used to demo and evaluate citekb.

The corpus is original, made-up company documentation for two fictional
companies (Larkspur Analytics in English, 杭州青岚智能科技 in Chinese):

    handbook.pdf                 employee handbook (en, 4 pages)
    product_manual_zh.pdf        AirPure X3 air purifier manual (zh, 4 pages)
    travel_expense_policy.docx   travel & expense policy (en, 4 pages)
    employee_handbook_zh.docx    员工手册 (zh, 4 pages)
    it_security_policy.md        IT security policy (en)
    info_security_policy_zh.md   信息安全管理制度 (zh)
    questions.jsonl              gold questions with cited locations

Gold locations are computed from the generated structure and then verified
against the written files (pdfplumber page text, python-docx paragraphs,
Markdown lines); the script fails loudly if any check does not hold.

PDF/DOCX pages are controlled by explicit page breaks. DOCX gold uses
page = 1 + explicit page breaks before the paragraph, heading = "H1 > H2" and
paragraph = 0-based index among all non-heading, non-empty paragraphs of the
document (tables excluded). Markdown gold uses 1-based line numbers.

Requires fpdf2, python-docx and pdfplumber, plus the DejaVu Sans and
WenQuanYi Micro Hei fonts (apt-get install -y fonts-dejavu-core fonts-wqy-microhei).

Rebuild with:  python scripts/build_sample_docs.py
"""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docx
import pdfplumber
from docx.enum.text import WD_BREAK
from fpdf import FPDF

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "sample_docs"
FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)
AUTHOR = "citekb sample corpus"

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
# WenQuanYi has no bold face: the regular file doubles as "B" (table headers)
# and Chinese headings are emboldened by stroking the glyph outlines.
PDF_FONTS = {"en": {"": DEJAVU, "B": DEJAVU_BOLD}, "zh": {"": WQY, "B": WQY}}
FONT_PACKAGES = {DEJAVU: "fonts-dejavu-core", DEJAVU_BOLD: "fonts-dejavu-core", WQY: "fonts-wqy-microhei"}
PDF_FOOTERS = {"en": "- {n} -", "zh": "第 {n} 页"}


class BuildError(RuntimeError):
    """Raised when the corpus cannot be built or a gold check fails."""


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]  # the first row is the header


Block = str | Table  # a body paragraph or a table


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    anchor: str = ""  # text identifying the answer's paragraph; defaults to the answer


@dataclass(frozen=True)
class Document:
    key: str
    file: str
    lang: str
    title: str
    pages: tuple[tuple[Section, ...], ...]  # Markdown ignores the page split
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Located:
    text: str
    gold: dict[str, Any]


def sec(heading: str, *blocks: Block) -> Section:
    return Section(heading, blocks)


def table(*rows: tuple[str, ...]) -> Table:
    return Table(rows)


# --------------------------------------------------------------------------- content

EN_HANDBOOK = Document(
    key="handbook", file="handbook.pdf", lang="en", title="Larkspur Analytics Employee Handbook",
    pages=(
        (
            sec("1. Welcome and Scope",
                "Larkspur Analytics Ltd. was founded in 2011 in Leeds and today employs about 340 people across offices in Leeds, Rotterdam and Porto. This handbook applies to all permanent and fixed-term employees from their first working day.",
                "The handbook was last revised in March 2025 by the People Operations team, led by Director of People Operations Hannah Okafor. Questions about its content should be sent to people@larkspur-analytics.example."),
            sec("2. Working Hours",
                "Standard working hours are 37.5 hours per week, normally Monday to Friday. Core hours, during which all employees are expected to be available for meetings, run from 10:00 to 15:00 local time.",
                "Employees may work from home up to three days per week once they have completed probation. Requests for fully remote arrangements are reviewed by the Flexible Working Panel, which meets on the first Tuesday of every month."),
        ),
        (
            sec("3. Probation and Onboarding",
                "All new employees serve a probation period of 90 days. A formal review meeting is held in week 10, and the manager confirms the outcome in writing no later than five working days before the probation ends.",
                "During probation the notice period on either side is one week. After probation it rises to one month for individual contributors and three months for managers at level M2 and above.",
                "Every new starter is paired with an onboarding buddy from a different team for their first 60 days. Buddies receive a £150 gift voucher as thanks when the period ends."),
            sec("4. Annual Leave",
                "Full-time employees receive 27 days of paid annual leave per year, plus public holidays. The entitlement increases by one day for every two completed years of service, up to a maximum of 32 days.",
                "Up to 5 unused days may be carried over into the next leave year, which runs from 1 April to 31 March. Carried-over days must be taken before 30 June or they are forfeited.",
                "Requests for more than ten consecutive working days of leave must be submitted at least six weeks in advance through the HR portal, Larkspur People."),
        ),
        (
            sec("5. Sickness Absence",
                "If you are unable to work because of illness, notify your line manager by 09:30 on the first day of absence. Absences of up to seven calendar days can be self-certified; longer absences require a fit note from a doctor.",
                "Larkspur pays full salary for up to 20 working days of sickness absence in any rolling twelve-month period, after which statutory sick pay applies."),
            sec("6. Benefits Overview",
                "The table below summarises the main benefits available to permanent employees after their first month of service.",
                table(("Benefit", "Provider", "Employer contribution"),
                      ("Pension", "Harbourline Pensions", "6% of base salary"),
                      ("Private medical cover", "Meridian Health", "Employee cover fully paid"),
                      ("Learning budget", "Internal", "£1,200 per year"),
                      ("Cycle to work scheme", "GreenGear", "Bikes up to £2,500")),
                "The annual learning budget of £1,200 can be spent on courses, conferences, certifications or books. Unused budget does not roll over to the following year."),
        ),
        (
            sec("7. Parental Leave",
                "Birth parents are entitled to 26 weeks of parental leave at full pay, followed by up to 13 weeks at half pay. Partners receive 4 weeks at full pay, which can be taken in one or two blocks within the first year."),
            sec("8. Code of Conduct and Reporting Concerns",
                "Gifts or hospitality from suppliers worth more than £50 must be recorded in the gifts register within 14 days of receipt.",
                "Concerns about misconduct can be raised confidentially with the Ethics Officer, Tomasz Wierzbicki, or through the independent Speak Up line on 0800 555 0192, which is available 24 hours a day."),
        ),
    ),
    questions=(
        Question("How many days of paid holiday does a full-time employee get each year?", "27 days"),
        Question("How long is the probation period for new hires?", "90 days"),
        Question("During which hours do I have to be available for meetings?", "10:00 to 15:00"),
        Question("Until when can I use leave days carried over from last year?", "30 June"),
        Question("By what time should I tell my manager that I am off sick?", "09:30"),
        Question("How much does the company pay into my pension?", "6% of base salary"),
        Question("How big is the yearly learning budget?", "£1,200", anchor="annual learning budget"),
        Question("Who is the Ethics Officer I can report misconduct to?", "Tomasz Wierzbicki"),
    ),
)

ZH_MANUAL = Document(
    key="manual", file="product_manual_zh.pdf", lang="zh", title="青岚 AirPure X3 智能空气净化器 产品说明书",
    pages=(
        (
            sec("一、产品简介",
                "青岚 AirPure X3 是杭州青岚智能科技有限公司于 2025 年推出的家用智能空气净化器，适用面积为 25 至 48 平方米。本机采用三层复合滤网，对 0.3 微米颗粒物的过滤效率不低于 99.97%。",
                "本说明书适用于型号 QL-AP-X3 及 QL-AP-X3 Pro。使用前请仔细阅读，并妥善保管以备日后查阅。"),
            sec("二、包装清单",
                "包装内含主机一台、复合滤网一片（已预装）、电源适配器一个、快速入门卡一张及保修卡一张。如发现缺件，请在签收后 7 天内联系客服。"),
        ),
        (
            sec("三、技术参数",
                table(("项目", "参数"),
                      ("额定电压", "220V~ 50Hz"),
                      ("额定功率", "45 W"),
                      ("洁净空气量（CADR）", "400 立方米/小时"),
                      ("运行噪音", "22–56 分贝"),
                      ("整机重量", "6.8 千克"),
                      ("外形尺寸", "260 × 260 × 580 毫米")),
                "睡眠模式下噪音最低可降至 22 分贝，屏幕显示自动关闭，适合夜间使用。"),
            sec("四、安装与首次使用",
                "首次使用前，请拆除滤网外的塑料包装袋，否则会影响净化效果并可能导致电机过热。主机应距离墙壁和家具至少 30 厘米放置。",
                "轻触电源键即可开机。下载「青岚智家」App 并按提示操作，即可通过 2.4GHz Wi-Fi 完成配网（不支持 5GHz 网络）。"),
        ),
        (
            sec("五、日常使用",
                "本机提供自动、睡眠、强力三种模式。自动模式下，机器根据 PM2.5 传感器读数调节风速；指示灯为蓝色表示空气优良，黄色表示轻度污染，红色表示重度污染。",
                "定时功能可设置 1 至 12 小时。同时按住模式键和定时键 5 秒可开启或关闭童锁。"),
            sec("六、滤网更换与清洁",
                "复合滤网建议每 6 个月更换一次，具体视使用环境而定。当滤网寿命低于 5% 时，滤网指示灯将闪烁红色提醒。更换滤网后，请长按滤网复位键 3 秒。",
                "原装替换滤网型号为 QL-F30，可在青岚官方商城购买。预滤网每 2 周用吸尘器清理一次；机身外壳可用干的软布擦拭，切勿用水直接冲洗。"),
        ),
        (
            sec("七、故障排除",
                "若 App 提示设备离线，请确认路由器工作在 2.4GHz 频段，并将主机断电后重新通电，等待约 1 分钟。",
                "若出风有异味，通常是滤网已饱和，请检查滤网状态。若显示屏出现错误代码 E2，表示风机故障，请立即停止使用并联系售后。"),
            sec("八、保修与售后",
                "整机保修期为 2 年，电机保修期为 5 年。滤网属于耗材，不在保修范围内。",
                "售后服务热线 400-820-3618，服务时间为每天 8:00 至 20:00。"),
        ),
    ),
    questions=(
        Question("这台净化器适合多大面积的房间使用？", "25 至 48 平方米"),
        Question("这款净化器的额定功率是多少？", "45 W"),
        Question("机器摆放时需要离墙多远？", "30 厘米"),
        Question("滤网多长时间需要更换一次？", "6 个月"),
        Question("原装替换滤网是什么型号？", "QL-F30"),
        Question("显示屏上出现 E2 是什么问题？", "风机故障"),
        Question("电机的保修期有几年？", "5 年", anchor="电机保修期"),
        Question("售后服务电话是多少？", "400-820-3618"),
    ),
)

EN_TRAVEL = Document(
    key="travel", file="travel_expense_policy.docx", lang="en", title="Larkspur Analytics Travel and Expense Policy",
    pages=(
        (
            sec("1. Purpose and Scope",
                "This policy sets out how employees of Larkspur Analytics book business travel and claim back reasonable expenses. It applies to all employees, contractors and interns travelling on company business. The policy owner is the Finance Controller, Priya Raman.",
                "Exceptions to this policy must be approved in advance by the employee's budget holder and recorded in the expense system, Ledgerly."),
            sec("2. Booking Travel",
                "All flights, trains and hotels must be booked through the company travel agency, Compass Corporate Travel, at least 14 days before departure where possible. Bookings made fewer than 3 days before departure require a short justification.",
                "Economy class is the standard for all flights. Premium economy may be booked for flights with a scheduled duration of more than 6 hours; business class requires written approval from a member of the Executive Committee."),
        ),
        (
            sec("3. Accommodation",
                "Hotel rates must not exceed the nightly caps listed in the table below. The caps exclude local taxes and breakfast.",
                table(("City", "Nightly cap"),
                      ("London", "£210"),
                      ("Amsterdam", "€190"),
                      ("Lisbon and Porto", "€140"),
                      ("New York", "$320"),
                      ("Other cities", "£150")),
                "Stays of more than 5 consecutive nights in the same city should use serviced apartments where these are cheaper than a hotel."),
            sec("4. Ground Transport",
                "Public transport is preferred for journeys within cities. Taxis and ride-hailing are reimbursed when travelling between 22:00 and 06:00, when carrying heavy equipment, or when no public transport is available.",
                "Employees using their own car for business journeys are reimbursed at 45p per mile for the first 10,000 miles in a tax year and 25p per mile after that."),
        ),
        (
            sec("5. Meals and Entertainment",
                "When travelling overnight, employees may claim actual meal costs up to a daily limit of £60 in the UK and €70 elsewhere in Europe. Alcohol is not reimbursable except at approved client entertainment events.",
                "Client entertainment must be pre-approved and is capped at £85 per attendee, including the employee's own share."),
            sec("6. Submitting Claims",
                "Expense claims must be submitted in Ledgerly within 30 days of the expense being incurred. Claims submitted later than 90 days will be rejected unless the Finance Controller grants an exception.",
                "Every item above £25 needs an itemised receipt. Photographs of receipts taken with the Ledgerly mobile app are accepted, and the paper originals do not need to be kept."),
        ),
        (
            sec("7. Approval and Reimbursement",
                "Claims are approved by the employee's line manager within 5 working days. Approved claims are paid into the employee's salary bank account in the next weekly payment run, which takes place every Thursday."),
            sec("8. Corporate Cards",
                "Employees who travel more than six times per year may apply for a corporate card with a monthly limit of £3,000. Personal purchases on a corporate card are not allowed and must be repaid within 7 days if made by mistake.",
                "Lost or stolen cards must be reported to the card issuer and to finance@larkspur-analytics.example within 24 hours."),
        ),
    ),
    questions=(
        Question("Who is responsible for the travel and expense policy?", "Priya Raman"),
        Question("How far ahead of a trip should I book my travel?", "14 days"),
        Question("When am I allowed to fly premium economy?", "more than 6 hours"),
        Question("What is the mileage rate when I drive my own car for work?", "45p per mile"),
        Question("What is the daily meal allowance on trips within the UK?", "£60"),
        Question("What is the deadline for submitting an expense claim?", "30 days", anchor="within 30 days"),
        Question("On which day of the week are approved expenses paid out?", "Thursday"),
        Question("What is the monthly spending limit on a corporate card?", "£3,000"),
    ),
)

ZH_HANDBOOK = Document(
    key="handbook", file="employee_handbook_zh.docx", lang="zh", title="青岚科技员工手册",
    pages=(
        (
            sec("第一章 总则",
                "本手册适用于杭州青岚智能科技有限公司全体正式员工及实习生，自 2025 年 7 月 1 日起施行。手册由人力资源部负责解释，人力资源总监为王建国。",
                "员工如对手册内容有疑问，可发送邮件至 hr@qinglan-tech.example 或拨打内线 8016 咨询。"),
            sec("第二章 入职与试用",
                "新员工入职当天需携带身份证原件、学历证书及上一家单位的离职证明，到人力资源部办理入职手续。",
                "新员工试用期为三个月，试用期工资为转正工资的 90%。试用期满前 10 个工作日，由直属上级组织转正评估。"),
        ),
        (
            sec("第三章 工作时间与考勤",
                "公司实行弹性工作制，每日工作 8 小时，核心工作时间为上午 10:00 至下午 4:00。",
                "员工每月可享有 3 次迟到豁免机会，每次不超过 30 分钟，超出部分按事假处理。考勤统一通过「青岚办公」App 打卡。"),
            sec("第四章 假期",
                "员工入职满一年后享有带薪年假 10 天，此后工龄每增加一年年假增加 1 天，最多 15 天。当年年假须在次年 3 月 31 日前休完。",
                "婚假为 13 天（含法定婚假 3 天），产假为 158 天，陪产假为 15 天。"),
        ),
        (
            sec("第五章 薪酬与福利",
                "工资于每月 15 日发放，如遇节假日则提前至最近的工作日发放。",
                "公司在法定福利之外提供以下补贴，具体标准见下表。",
                table(("福利项目", "标准"),
                      ("餐补", "每个工作日 25 元"),
                      ("交通补贴", "每月 400 元"),
                      ("年度体检", "每年一次"),
                      ("生日礼金", "300 元")),
                "公司为员工缴纳五险一金，住房公积金缴存比例为 12%。",
                "公司每年 9 月进行一次年度调薪，调薪结果于 10 月工资中体现。"),
        ),
        (
            sec("第六章 行为规范",
                "员工收受供应商礼品价值超过 200 元的，应在 3 个工作日内向合规部申报。",
                "禁止在公共场所讨论未公开的产品信息，违者视情节给予警告直至解除劳动合同。"),
            sec("第七章 离职",
                "正式员工辞职须提前 30 天以书面形式通知公司；试用期内辞职须提前 3 天通知。",
                "离职员工应在最后工作日前完成工作交接，并归还工牌、笔记本电脑等公司财产。"),
        ),
    ),
    questions=(
        Question("公司的人力资源总监是谁？", "王建国"),
        Question("新员工的试用期有多长？", "三个月"),
        Question("试用期的工资按转正工资的多少发放？", "90%"),
        Question("公司的核心工作时间是几点到几点？", "上午 10:00 至下午 4:00"),
        Question("入职满一年可以休几天年假？", "10 天"),
        Question("女员工的产假有多少天？", "158 天"),
        Question("每个月几号发工资？", "15 日"),
        Question("正式员工辞职要提前多久通知公司？", "30 天", anchor="正式员工辞职"),
    ),
)

EN_SECURITY = Document(
    key="itsec", file="it_security_policy.md", lang="en", title="Larkspur Analytics IT Security Policy",
    pages=((
        sec("1. Purpose",
            "This policy defines the minimum security controls that protect Larkspur Analytics systems, client data and employee accounts. It is maintained by the Information Security team under the Chief Information Security Officer, Daniel Achterberg, and is reviewed every 12 months."),
        sec("2. Passwords and Authentication",
            "Passwords for company accounts must be at least 14 characters long and must not be reused from any other service. Employees are encouraged to use passphrases generated by the company password manager, KeyVault Teams.",
            "Multi-factor authentication is mandatory for email, VPN, source code repositories and the HR portal. Hardware security keys are issued to all engineers and administrators; other staff use an authenticator app."),
        sec("3. Devices",
            "Laptops must have full-disk encryption enabled and must lock automatically after 5 minutes of inactivity. Operating system security updates must be installed within 7 days of release.",
            "Personal devices may only access company email through the managed mobile app and must never store client data locally."),
        sec("4. Data Classification",
            "All information is classified into one of four classes, which determine how it may be stored and shared.",
            table(("Class", "Examples", "Handling"),
                  ("Public", "Marketing material", "No restrictions"),
                  ("Internal", "Policies, org charts", "Company systems only"),
                  ("Confidential", "Client datasets, contracts", "Encrypted storage, need-to-know access"),
                  ("Restricted", "Payroll, security keys", "Named individuals only, access logged")),
            "Confidential and Restricted data must never be uploaded to personal cloud storage or to public AI tools. Client datasets must be deleted within 60 days after the end of the engagement unless the contract states otherwise."),
        sec("5. Access Management",
            "Access rights are reviewed every quarter by the system owners. Accounts of leavers are disabled on their last working day, and administrator accounts are disabled within 1 hour of the employee leaving."),
        sec("6. Reporting Incidents",
            "Suspected security incidents, including lost laptops and phishing links that were clicked, must be reported to the Security Operations desk within 30 minutes on +44 113 555 0147 or at security@larkspur-analytics.example.",
            "Do not investigate an incident yourself or delete suspicious emails; forward them as attachments to the security mailbox so the team can analyse them."),
        sec("7. Exceptions and Enforcement",
            "Requests for exceptions must be logged in the IT service portal and are valid for a maximum of 6 months. Breaches of this policy may lead to disciplinary action."),
    ),),
    questions=(
        Question("Who is the CISO at Larkspur Analytics?", "Daniel Achterberg"),
        Question("What is the minimum length for a company password?", "14 characters"),
        Question("Which password manager does the company provide?", "KeyVault Teams"),
        Question("After how much idle time must a laptop lock itself?", "5 minutes"),
        Question("How soon do operating system security updates have to be installed?", "7 days"),
        Question("How long can we keep a client's dataset after the project ends?", "60 days"),
        Question("How quickly must I report a suspected security incident?", "30 minutes"),
        Question("How long does an approved security exception remain valid?", "6 months"),
    ),
)

ZH_SECURITY = Document(
    key="infosec", file="info_security_policy_zh.md", lang="zh", title="青岚科技信息安全管理制度",
    pages=((
        sec("一、目的与适用范围",
            "为保护公司信息资产和客户数据安全，特制定本制度。本制度适用于公司全体员工、外包人员及访客，由信息安全委员会负责监督执行，委员会主任为首席技术官李慧敏。"),
        sec("二、账号与密码管理",
            "办公系统密码长度不少于 12 位，须包含大写字母、小写字母、数字和特殊字符中的至少三类，且每 90 天强制更换一次。",
            "连续输错密码 5 次后，账号将被自动锁定 30 分钟；如需提前解锁，请联系 IT 服务台。"),
        sec("三、终端设备管理",
            "公司电脑须安装统一的终端安全软件「青盾」，严禁私自卸载。离开座位时须锁定屏幕，系统将在闲置 10 分钟后自动锁屏。",
            "禁止使用未经登记的 U 盘拷贝公司数据；确需使用的，须向 IT 部申请加密 U 盘。"),
        sec("四、数据分级",
            "公司数据按敏感程度分为四级，各级别的示例与管理要求如下表所示。",
            table(("级别", "示例", "管理要求"),
                  ("公开", "官网宣传资料", "无特殊要求"),
                  ("内部", "规章制度、通讯录", "仅限内部系统传输"),
                  ("机密", "客户合同、源代码", "加密存储，按需授权"),
                  ("绝密", "未发布产品设计、财务报表", "审批后访问，全程留痕")),
            "机密及以上级别的数据对外发送前，须经部门负责人审批，并使用公司加密邮件系统发送。"),
        sec("五、网络与远程办公",
            "远程访问公司内网必须通过 VPN 并启用双因素认证。禁止在公共 Wi-Fi 环境下处理绝密级数据。",
            "访客 Wi-Fi 与办公网络物理隔离，访客账号有效期为 24 小时。"),
        sec("六、安全事件报告",
            "发现疑似安全事件（如钓鱼邮件、设备丢失、数据泄露）时，应在 1 小时内报告信息安全部，值班电话为 0571-8869-2200。"),
        sec("七、培训与考核",
            "全体员工每年须完成不少于 4 学时的信息安全培训，新员工须在入职 2 周内完成首次培训。",
            "违反本制度者，视情节轻重给予通报批评、扣减绩效直至解除劳动合同。"),
    ),),
    questions=(
        Question("信息安全委员会的主任是谁？", "李慧敏"),
        Question("办公系统的密码至少要多少位？", "12 位"),
        Question("密码需要多久更换一次？", "90 天"),
        Question("密码连续输错几次账号会被锁定？", "5 次"),
        Question("电脑闲置多长时间会自动锁屏？", "10 分钟"),
        Question("访客 Wi-Fi 账号能用多久？", "24 小时"),
        Question("发现安全事件后必须在多长时间内上报？", "1 小时"),
        Question("员工每年要完成多少学时的安全培训？", "4 学时"),
    ),
)

DOCUMENTS = (EN_HANDBOOK, ZH_MANUAL, EN_TRAVEL, ZH_HANDBOOK, EN_SECURITY, ZH_SECURITY)


# --------------------------------------------------------------------------- writers

class _PagedPDF(FPDF):
    def __init__(self, footer_template: str) -> None:
        super().__init__(format="A4")
        self.footer_template = footer_template

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("body", size=9)
        self.cell(0, 10, self.footer_template.format(n=self.page_no()), align="C")


def write_pdf(doc: Document, path: Path) -> list[Located]:
    pdf = _PagedPDF(PDF_FOOTERS[doc.lang])
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(doc.title)
    pdf.set_author(AUTHOR)
    pdf.set_auto_page_break(auto=True, margin=20)
    for style, font in PDF_FONTS[doc.lang].items():
        pdf.add_font("body", style, str(font))
    fake_bold = {"text_mode": "FILL_STROKE", "line_width": 0.2} if doc.lang == "zh" else {}

    def heading(text: str, size: int, space_after: float) -> None:
        with pdf.local_context(font_family="body", font_style="B", font_size_pt=size, **fake_bold):
            pdf.multi_cell(0, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(space_after)

    located: list[Located] = []
    for page_no, sections in enumerate(doc.pages, start=1):
        pdf.add_page()
        if page_no == 1:
            heading(doc.title, 18, 6)
        for section in sections:
            heading(section.heading, 14, 2)
            pdf.set_font("body", size=11)
            for block in section.blocks:
                if isinstance(block, Table):
                    with pdf.table(line_height=7, padding=1.5) as pdf_table:
                        for row in block.rows:
                            pdf_row = pdf_table.row()
                            for cell in row:
                                pdf_row.cell(cell)
                    located.extend(Located(cell, {"page": page_no}) for row in block.rows for cell in row)
                else:
                    pdf.multi_cell(0, 6, block, align="L", new_x="LMARGIN", new_y="NEXT")
                    located.append(Located(block, {"page": page_no}))
                pdf.ln(3)
            pdf.ln(3)
        if pdf.page_no() != page_no:
            raise BuildError(f"{doc.file}: the content of page {page_no} does not fit on one page")
    pdf.output(str(path))
    return located


def write_docx(doc: Document, path: Path) -> list[Located]:
    document = docx.Document()
    document.add_heading(doc.title, level=1)
    located: list[Located] = []
    for page_no, sections in enumerate(doc.pages, start=1):
        if page_no > 1:
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        for section in sections:
            document.add_heading(section.heading, level=2)
            for block in section.blocks:
                if isinstance(block, Table):
                    docx_table = document.add_table(rows=0, cols=len(block.rows[0]))
                    docx_table.style = "Table Grid"
                    for row_no, row in enumerate(block.rows):
                        for cell, text in zip(docx_table.add_row().cells, row, strict=True):
                            cell.paragraphs[0].add_run(text).bold = row_no == 0
                else:
                    document.add_paragraph(block)
                    gold = {"page": page_no, "heading": f"{doc.title} > {section.heading}", "paragraph": len(located)}
                    located.append(Located(block, gold))
    props = document.core_properties
    props.title, props.author, props.last_modified_by = doc.title, AUTHOR, AUTHOR
    props.created = props.modified = FIXED_DATE
    props.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_normalize_zip(buffer.getvalue()))
    return located


def _normalize_zip(data: bytes) -> bytes:
    """Rewrite a zip archive with fixed entry timestamps so the bytes are reproducible."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=FIXED_DATE.timetuple()[:6]), src.read(info),
                         compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def write_markdown(doc: Document, path: Path) -> list[Located]:
    lines = [f"# {doc.title}"]
    located: list[Located] = []
    for section in (section for sections in doc.pages for section in sections):
        lines += ["", f"## {section.heading}"]
        for block in section.blocks:
            lines.append("")
            if isinstance(block, Table):
                header, *rows = block.rows
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "|".join("---" for _ in header) + "|")
                lines += ["| " + " | ".join(row) + " |" for row in rows]
            else:
                lines.append(block)
                gold = {"heading": f"{doc.title} > {section.heading}", "line_start": len(lines), "line_end": len(lines)}
                located.append(Located(block, gold))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return located


# --------------------------------------------------------------------------- verification

def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def verify_pdf(doc: Document, path: Path, records: list[dict[str, Any]]) -> None:
    with pdfplumber.open(path) as pdf:
        pages = [_squash(page.extract_text() or "") for page in pdf.pages]
    _check(len(pages) == len(doc.pages), f"{doc.file}: expected {len(doc.pages)} pages, found {len(pages)}")
    for record in records:
        page = record["gold"][0]["page"]
        _check(_squash(record["answers"][0]) in pages[page - 1], f"{record['id']}: answer not on {doc.file} p.{page}")


def verify_docx(doc: Document, path: Path, records: list[dict[str, Any]]) -> None:
    page, h1, h2 = 1, "", ""
    body: list[tuple[int, str, str]] = []  # (page, heading path, text) per body paragraph
    for paragraph in docx.Document(str(path)).paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style == "Heading 1":
            h1, h2 = paragraph.text, ""
        elif style == "Heading 2":
            h2 = paragraph.text
        elif paragraph.text.strip():
            body.append((page, f"{h1} > {h2}", paragraph.text))
        page += len(paragraph._p.xpath(".//w:br[@w:type='page']"))
    _check(page == len(doc.pages), f"{doc.file}: expected {len(doc.pages)} pages, found {page}")
    for record in records:
        gold = record["gold"][0]
        _check(gold["paragraph"] < len(body), f"{record['id']}: paragraph index out of range")
        found_page, found_heading, text = body[gold["paragraph"]]
        _check((found_page, found_heading) == (gold["page"], gold["heading"]), f"{record['id']}: wrong page/heading")
        _check(record["answers"][0] in text, f"{record['id']}: answer not in {doc.file} paragraph {gold['paragraph']}")


def verify_markdown(doc: Document, path: Path, records: list[dict[str, Any]]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for record in records:
        gold = record["gold"][0]
        start = gold["line_start"]
        before = lines[:start]
        h1 = next(line[2:] for line in reversed(before) if line.startswith("# "))
        h2 = next(line[3:] for line in reversed(before) if line.startswith("## "))
        _check(start == gold["line_end"], f"{record['id']}: answer paragraph spans several lines")
        _check(f"{h1} > {h2}" == gold["heading"], f"{record['id']}: wrong heading {gold['heading']!r}")
        _check(record["answers"][0] in lines[start - 1], f"{record['id']}: answer not on {doc.file} line {start}")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BuildError(f"gold check failed: {message}")


Writer = Callable[[Document, Path], list[Located]]
Verifier = Callable[[Document, Path, list[dict[str, Any]]], None]
FORMATS: dict[str, tuple[Writer, Verifier]] = {
    ".pdf": (write_pdf, verify_pdf),
    ".docx": (write_docx, verify_docx),
    ".md": (write_markdown, verify_markdown),
}


# --------------------------------------------------------------------------- build

def gold_records(doc: Document, located: list[Located]) -> list[dict[str, Any]]:
    records = []
    for number, question in enumerate(doc.questions, start=1):
        anchor = question.anchor or question.answer
        hits = [loc for loc in located if anchor in loc.text]
        if len(hits) != 1:
            raise BuildError(f"{doc.file}: anchor {anchor!r} matches {len(hits)} blocks, expected exactly 1")
        if question.answer not in hits[0].text:
            raise BuildError(f"{doc.file}: answer {question.answer!r} is not in the block matched by {anchor!r}")
        records.append({
            "id": f"sample_{doc.lang}_{doc.key}_q{number}",
            "lang": doc.lang,
            "question": question.question,
            "answers": [question.answer],
            "gold": [{"file": doc.file, **hits[0].gold}],
        })
    return records


def check_fonts() -> None:
    missing = [font for fonts in PDF_FONTS.values() for font in fonts.values() if not font.is_file()]
    if missing:
        hints = ", ".join(f"{font} (apt-get install -y {FONT_PACKAGES[font]})" for font in dict.fromkeys(missing))
        raise BuildError(f"missing PDF font(s): {hints}")


def build(out_dir: Path) -> list[dict[str, Any]]:
    check_fonts()
    out_dir.mkdir(parents=True, exist_ok=True)
    all_records: list[dict[str, Any]] = []
    for doc in DOCUMENTS:
        writer, verifier = FORMATS[Path(doc.file).suffix]
        path = out_dir / doc.file
        records = gold_records(doc, writer(doc, path))
        verifier(doc, path, records)
        all_records += records
        pages = f", {len(doc.pages)} pages" if path.suffix != ".md" else ""
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.1f} KB{pages}, {len(records)} questions)")
    questions_path = out_dir / "questions.jsonl"
    questions_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in all_records), encoding="utf-8")
    print(f"wrote {questions_path.relative_to(ROOT)} ({len(all_records)} questions, all gold locations verified)")
    return all_records


def main() -> int:
    try:
        build(OUT_DIR)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

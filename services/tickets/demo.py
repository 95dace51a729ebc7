"""Demo data for the tickets service: the handling units of the demo street 万楼街道 (Wanlou), a
category catalogue and forty work orders in every state of their lifecycle.

Pure data, no I/O: `services.tickets.seed_demo` loads it into a running system over gRPC. It sits
on top of the blocks demo (`services.blocks.demo`): tickets are placed in its 17 blocks, at points
well inside their boundaries, and are reported by its residents and block staff.

- `UNITS`: the street's four centers (node yuhu/wanlou) and six district departments (node yuhu),
  each with one staff member whose phone (178 0732 ....) cannot collide with the blocks demo's
  phones, which use other number blocks (`services.blocks.demo.MOBILE_PREFIXES`).
- `CATEGORIES`: 25 categories in 12 groups, with routing, priority, matter class, typed
  attributes and SLA targets (working hours for most, round the clock for the urgent ones).
- `TICKETS`: 40 tickets, each with the transitions (`Step`) that take it to its target state;
  every `TicketState` is the target of at least two of them.
- `block_places()` and `demo_residents()`: a point inside each block, its buildings, and one
  resident with a phone per block, derived from the blocks demo files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.duration_pb2 import Duration

from gov.tickets.v1 import tickets_pb2 as pb
from services.blocks import demo as blocks_demo

STREET = "yuhu/wanlou"
DISTRICT = "yuhu"
CST = dt.timezone(dt.timedelta(hours=8), "CST")

# ---------------------------------------------------------------------------------------- units


@dataclass(frozen=True)
class UnitSpec:
    code: str
    display_name: str
    kind: int  # pb.UnitKind
    node: str
    staff_name: str  # the unit's demo staff member
    staff_phone: str  # mainland mobile; 178 0732 .... is not used by the blocks demo


UNITS: tuple[UnitSpec, ...] = (
    UnitSpec(
        "wanlou-guidance",
        "万楼街道综合指挥中心",
        pb.UNIT_KIND_COMPREHENSIVE_GUIDANCE,
        STREET,
        "周建华",
        "17807320001",
    ),
    UnitSpec(
        "wanlou-livelihood", "万楼街道民生服务中心", pb.UNIT_KIND_LIVELIHOOD, STREET, "李秀兰", "17807320002"
    ),
    UnitSpec(
        "wanlou-rapid", "万楼街道快速处置中心", pb.UNIT_KIND_RAPID_RESPONSE, STREET, "谭志刚", "17807320003"
    ),
    UnitSpec(
        "wanlou-economy",
        "万楼街道经济发展中心",
        pb.UNIT_KIND_ECONOMIC_DEVELOPMENT,
        STREET,
        "彭丽娟",
        "17807320004",
    ),
    UnitSpec(
        "yuhu-housing", "雨湖区住房和城乡建设局", pb.UNIT_KIND_DEPARTMENT, DISTRICT, "罗建军", "17807320005"
    ),
    UnitSpec(
        "yuhu-urban", "雨湖区城市管理和综合执法局", pb.UNIT_KIND_DEPARTMENT, DISTRICT, "胡海波", "17807320006"
    ),
    UnitSpec("yuhu-civil", "雨湖区民政局", pb.UNIT_KIND_DEPARTMENT, DISTRICT, "曾晓燕", "17807320007"),
    UnitSpec(
        "yuhu-police", "湘潭市公安局雨湖分局", pb.UNIT_KIND_DEPARTMENT, DISTRICT, "邓卫东", "17807320008"
    ),
    UnitSpec(
        "yuhu-market", "雨湖区市场监督管理局", pb.UNIT_KIND_DEPARTMENT, DISTRICT, "黄春梅", "17807320009"
    ),
    UnitSpec(
        "yuhu-water", "湘潭市自来水公司雨湖服务站", pb.UNIT_KIND_DEPARTMENT, DISTRICT, "唐国强", "17807320010"
    ),
)
UNITS_BY_CODE: Mapping[str, UnitSpec] = {u.code: u for u in UNITS}
# The street center of each kind (a category routed to a center goes to the ticket's street's one).
CENTERS: Mapping[int, str] = {u.kind: u.code for u in UNITS if u.kind != pb.UNIT_KIND_DEPARTMENT}


def unit_message(unit: UnitSpec) -> pb.Unit:
    return pb.Unit(code=unit.code, display_name=unit.display_name, kind=unit.kind, node=unit.node)


# ----------------------------------------------------------------------------------- categories

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
# A working day of the working calendar: 08:30-12:00 and 14:00-17:30, 7 hours.
WORKING_DAY = 7 * HOUR


@dataclass(frozen=True)
class Sla:
    acknowledge_within: dt.timedelta
    resolve_within: dt.timedelta
    calendar_clock: bool = False  # round the clock instead of working hours
    escalate_on_acknowledge_breach: bool = False


@dataclass(frozen=True)
class Attr:
    code: str
    display_name: str
    type: int  # pb.AttributeType
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    description: str = ""


@dataclass(frozen=True)
class CategorySpec:
    code: str
    display_name: str
    group: str
    description: str
    keywords: tuple[str, ...]
    priority: int  # pb.Priority
    matter_class: int  # pb.MatterClass
    sla: Sla
    attributes: tuple[Attr, ...] = ()
    default_center: int = pb.UNIT_KIND_UNSPECIFIED  # street work: one of the street's four centers
    default_unit: str = ""  # a department's unit code
    kind: int = pb.TICKET_KIND_GENERAL

    @property
    def route(self) -> str:
        """The unit code a ticket of this category in the demo street goes to."""
        return self.default_unit or CENTERS[self.default_center]


# Shorthands for the catalogue below.
_S, _N, _DT, _TXT = (
    pb.ATTRIBUTE_TYPE_STRING,
    pb.ATTRIBUTE_TYPE_NUMBER,
    pb.ATTRIBUTE_TYPE_DATETIME,
    pb.ATTRIBUTE_TYPE_TEXT,
)
_ONE, _MANY = pb.ATTRIBUTE_TYPE_SINGLE_VALUE_LIST, pb.ATTRIBUTE_TYPE_MULTI_VALUE_LIST
_YES_NO = (("yes", "是"), ("no", "否"))
_PUBLIC, _CO, _SELF = pb.MATTER_CLASS_PUBLIC, pb.MATTER_CLASS_CO_HANDLED, pb.MATTER_CLASS_SELF_HANDLED
_LOW, _NORMAL, _HIGH, _URGENT = pb.PRIORITY_LOW, pb.PRIORITY_NORMAL, pb.PRIORITY_HIGH, pb.PRIORITY_URGENT
_GUIDANCE, _LIVELIHOOD = pb.UNIT_KIND_COMPREHENSIVE_GUIDANCE, pb.UNIT_KIND_LIVELIHOOD
_RAPID, _ECONOMY = pb.UNIT_KIND_RAPID_RESPONSE, pb.UNIT_KIND_ECONOMIC_DEVELOPMENT
# Urgent matters: someone on the spot in 15 minutes round the clock, the district told if not.
_EMERGENCY = Sla(15 * MINUTE, 4 * HOUR, calendar_clock=True, escalate_on_acknowledge_breach=True)


def _building_attr(required: bool = True) -> Attr:
    return Attr("building", "楼栋号", _S, required, description="如:3栋")


CATEGORIES: tuple[CategorySpec, ...] = (
    # ------------------------------------------------------------ 物业与电梯
    CategorySpec(
        "lift-failure",
        "电梯故障",
        "物业与电梯",
        "电梯停运、异响、门无法开关或有人被困。有人被困请同时拨打电梯内的96333或119，"
        "街道快速处置中心协调维保单位到场，市场监管部门督办。",
        ("电梯", "困人", "停运", "关人", "升降梯"),
        _URGENT,
        _PUBLIC,
        _EMERGENCY,
        (
            _building_attr(),
            Attr("people_trapped", "是否有人被困", _ONE, True, _YES_NO),
            Attr("floor", "停靠楼层", _N, description="电梯停在几楼"),
        ),
        default_center=_RAPID,
    ),
    CategorySpec(
        "property-service",
        "物业服务问题",
        "物业与电梯",
        "小区物业保洁、维修、安保、绿化不到位或报修不处理，由街道督促物业公司整改。",
        ("物业", "保洁", "报修", "门禁", "绿化", "楼道灯"),
        _NORMAL,
        _CO,
        Sla(4 * HOUR, 3 * WORKING_DAY),
        (
            Attr(
                "issues",
                "问题类型",
                _MANY,
                True,
                (
                    ("cleaning", "保洁不到位"),
                    ("repairs", "报修不处理"),
                    ("security", "门禁安保"),
                    ("greenery", "绿化养护"),
                    ("facilities", "公共设施损坏"),
                    ("fees", "收费问题"),
                ),
            ),
            Attr("property_company", "物业公司", _S),
        ),
        default_center=_LIVELIHOOD,
    ),
    # ------------------------------------------------------------ 环境卫生
    CategorySpec(
        "garbage-overflow",
        "垃圾清运不及时",
        "环境卫生",
        "垃圾桶满溢、垃圾站未按时清运、散发异味。",
        ("垃圾", "清运", "满溢", "臭", "垃圾桶"),
        _NORMAL,
        _CO,
        Sla(2 * HOUR, WORKING_DAY),
        (
            Attr(
                "spot",
                "位置类型",
                _ONE,
                True,
                (("bin", "垃圾桶点"), ("station", "垃圾中转站"), ("corridor", "楼道"), ("street", "路边")),
            ),
            Attr("days_uncollected", "几天未清运", _N),
        ),
        default_center=_RAPID,
    ),
    CategorySpec(
        "illegal-dumping",
        "乱堆乱放",
        "环境卫生",
        "建筑垃圾、大件垃圾、杂物乱堆乱放，占用公共空间。",
        ("乱堆", "建筑垃圾", "杂物", "大件垃圾"),
        _NORMAL,
        _CO,
        Sla(2 * HOUR, 3 * WORKING_DAY),
        (
            Attr(
                "waste_kind",
                "垃圾种类",
                _MANY,
                True,
                (("construction", "建筑垃圾"), ("bulky", "大件家具"), ("household", "生活杂物")),
            ),
        ),
        default_center=_RAPID,
    ),
    CategorySpec(
        "sewage-blockage",
        "下水道堵塞",
        "环境卫生",
        "下水道、化粪池堵塞，污水外溢或倒灌。",
        ("下水道", "堵塞", "污水", "化粪池", "倒灌"),
        _HIGH,
        _PUBLIC,
        Sla(2 * HOUR, 2 * WORKING_DAY),
        (Attr("overflowing", "是否已外溢", _ONE, True, _YES_NO),),
        default_unit="yuhu-urban",
    ),
    # ------------------------------------------------------------ 停车与交通
    CategorySpec(
        "illegal-parking",
        "违规停车",
        "停车与交通",
        "机动车、非机动车占道停放，堵塞出入口或人行道。",
        ("停车", "占道", "堵门", "僵尸车"),
        _NORMAL,
        _CO,
        Sla(2 * HOUR, WORKING_DAY),
        (
            Attr("plate_number", "车牌号", _S),
            Attr(
                "blocking",
                "占用位置",
                _MANY,
                True,
                (("entrance", "小区或单元出入口"), ("sidewalk", "人行道"), ("road", "车行道")),
            ),
        ),
        default_center=_RAPID,
    ),
    CategorySpec(
        "fire-lane-blocked",
        "消防通道堵塞",
        "停车与交通",
        "消防车通道、楼道被车辆或杂物占用。",
        ("消防通道", "生命通道", "楼道堆物"),
        _HIGH,
        _CO,
        Sla(HOUR, WORKING_DAY),
        (
            Attr(
                "blocked_by",
                "占用物",
                _ONE,
                True,
                (("vehicles", "车辆"), ("goods", "杂物"), ("construction", "施工材料")),
            ),
        ),
        default_center=_RAPID,
    ),
    # ------------------------------------------------------------ 噪音扰民
    CategorySpec(
        "noise-nuisance",
        "生活噪音扰民",
        "噪音扰民",
        "广场舞、商铺喇叭、装修、宠物等社会生活噪音。",
        ("噪音", "吵", "广场舞", "喇叭", "装修"),
        _NORMAL,
        _CO,
        Sla(2 * HOUR, 3 * WORKING_DAY),
        (
            Attr("noise_time", "发生时间", _DT, True, description="最近一次发生的时间"),
            Attr(
                "noise_kinds",
                "噪音类型",
                _MANY,
                True,
                (
                    ("square_dance", "广场舞"),
                    ("shop_speaker", "商铺喇叭"),
                    ("renovation", "装修"),
                    ("pets", "宠物"),
                    ("entertainment", "娱乐场所"),
                    ("other", "其他"),
                ),
            ),
            Attr("recurring", "是否反复发生", _ONE, options=_YES_NO),
        ),
        default_center=_RAPID,
    ),
    CategorySpec(
        "construction-noise",
        "夜间施工噪音",
        "噪音扰民",
        "22:00至次日6:00未经许可的建筑施工噪音。",
        ("施工", "夜间", "工地", "噪音"),
        _NORMAL,
        _PUBLIC,
        Sla(2 * HOUR, 2 * WORKING_DAY),
        (
            Attr("noise_time", "发生时间", _DT, True),
            Attr("site_name", "工地名称", _S),
        ),
        default_unit="yuhu-urban",
    ),
    # ------------------------------------------------------------ 道路与照明
    CategorySpec(
        "streetlight-out",
        "路灯不亮",
        "道路与照明",
        "路灯、巷道灯不亮或昼亮夜不亮。",
        ("路灯", "不亮", "照明", "巷道灯"),
        _NORMAL,
        _PUBLIC,
        Sla(2 * HOUR, 3 * WORKING_DAY),
        (Attr("pole_number", "灯杆编号", _S), Attr("lights_out", "不亮的盏数", _N)),
        default_unit="yuhu-urban",
    ),
    CategorySpec(
        "road-damage",
        "道路破损",
        "道路与照明",
        "路面坑洼、塌陷、人行道板松动、路沿石损坏。",
        ("路面", "坑洼", "塌陷", "人行道", "破损"),
        _NORMAL,
        _PUBLIC,
        Sla(4 * HOUR, 5 * WORKING_DAY),
        (
            Attr(
                "damage_kind",
                "破损类型",
                _ONE,
                True,
                (
                    ("pothole", "坑洼"),
                    ("subsidence", "塌陷"),
                    ("paving", "人行道板松动"),
                    ("kerb", "路沿石损坏"),
                ),
            ),
            Attr("area_m2", "面积（平方米）", _N),
        ),
        default_unit="yuhu-urban",
    ),
    CategorySpec(
        "manhole-cover",
        "井盖缺失或破损",
        "道路与照明",
        "井盖丢失、破损、松动，易造成行人跌落，须立即设置警示。",
        ("井盖", "窨井", "下水井"),
        _HIGH,
        _PUBLIC,
        Sla(HOUR, 24 * HOUR, calendar_clock=True, escalate_on_acknowledge_breach=True),
        (
            Attr(
                "condition",
                "井盖状况",
                _ONE,
                True,
                (("missing", "缺失"), ("broken", "破损"), ("loose", "松动")),
            ),
        ),
        default_unit="yuhu-urban",
    ),
    # ------------------------------------------------------------ 邻里纠纷
    CategorySpec(
        "neighbour-dispute",
        "邻里纠纷",
        "邻里纠纷",
        "楼上漏水、公共空间占用、噪音、宠物等邻里矛盾，区块治理员、楼栋长和人民调解员共同调解。",
        ("邻居", "纠纷", "漏水", "矛盾", "调解"),
        _NORMAL,
        _CO,
        Sla(4 * HOUR, 10 * WORKING_DAY),
        (
            Attr(
                "dispute_kind",
                "纠纷类型",
                _ONE,
                True,
                (
                    ("water_leak", "漏水"),
                    ("shared_space", "公共空间占用"),
                    ("noise", "噪音"),
                    ("pets", "宠物"),
                    ("other", "其他"),
                ),
            ),
            Attr("other_party", "对方住址", _S),
        ),
        default_center=_GUIDANCE,
        kind=pb.TICKET_KIND_DISPUTE,
    ),
    CategorySpec(
        "family-dispute",
        "家庭矛盾",
        "邻里纠纷",
        "婚姻、赡养、继承等家庭矛盾，家事自办为主，区块和调解委员会协助。",
        ("家庭", "赡养", "婚姻", "继承"),
        _NORMAL,
        _SELF,
        Sla(4 * HOUR, 10 * WORKING_DAY),
        (
            Attr(
                "dispute_kind",
                "纠纷类型",
                _ONE,
                True,
                (("marriage", "婚姻"), ("support", "赡养"), ("inheritance", "继承"), ("other", "其他")),
            ),
            Attr("wants_mediation", "是否同意调解", _ONE, True, _YES_NO),
        ),
        default_center=_GUIDANCE,
        kind=pb.TICKET_KIND_DISPUTE,
    ),
    # ------------------------------------------------------------ 养老服务
    CategorySpec(
        "elderly-home-care",
        "居家养老服务",
        "养老服务",
        "助餐、助洁、助浴、助医等居家养老服务申请。",
        ("养老", "助餐", "助洁", "老人"),
        _LOW,
        _PUBLIC,
        Sla(WORKING_DAY, 5 * WORKING_DAY),
        (
            Attr("age", "老人年龄", _N, True),
            Attr(
                "services",
                "需要的服务",
                _MANY,
                True,
                (
                    ("meals", "助餐"),
                    ("cleaning", "助洁"),
                    ("bathing", "助浴"),
                    ("medical", "助医"),
                    ("company", "陪伴"),
                ),
            ),
        ),
        default_center=_LIVELIHOOD,
    ),
    CategorySpec(
        "elderly-welfare-check",
        "独居老人关爱",
        "养老服务",
        "独居、空巢老人联系不上或需要上门探视。",
        ("独居", "空巢", "探视", "联系不上"),
        _HIGH,
        _PUBLIC,
        Sla(2 * HOUR, 24 * HOUR, calendar_clock=True),
        (
            Attr("living_alone", "是否独居", _ONE, True, _YES_NO),
            Attr("last_contact", "最后联系时间", _DT),
        ),
        default_center=_LIVELIHOOD,
    ),
    # ------------------------------------------------------------ 低保救助
    CategorySpec(
        "subsistence-allowance",
        "低保申请帮办",
        "低保救助",
        "城乡最低生活保障申请、复核材料帮办代办（帮代办事项）。",
        ("低保", "帮办", "代办", "最低生活保障"),
        _NORMAL,
        _PUBLIC,
        Sla(WORKING_DAY, 10 * WORKING_DAY),
        (
            Attr("household_size", "家庭人口", _N, True),
            Attr("monthly_income", "家庭月收入（元）", _N),
        ),
        default_center=_LIVELIHOOD,
    ),
    CategorySpec(
        "temporary-assistance",
        "临时救助",
        "低保救助",
        "因病、因灾、意外事故导致基本生活暂时困难的临时救助申请。",
        ("临时救助", "困难", "大病", "救助"),
        _NORMAL,
        _PUBLIC,
        Sla(4 * HOUR, 5 * WORKING_DAY),
        (
            Attr(
                "cause",
                "困难原因",
                _ONE,
                True,
                (("illness", "疾病"), ("accident", "意外事故"), ("disaster", "灾害"), ("other", "其他")),
            ),
        ),
        default_unit="yuhu-civil",
    ),
    # ------------------------------------------------------------ 安全隐患
    CategorySpec(
        "gas-leak",
        "燃气泄漏",
        "安全隐患",
        "闻到燃气味、燃气管道破损。请立即开窗、不要开关电器，并拨打燃气抢修电话。",
        ("燃气", "煤气", "天然气", "泄漏", "气味"),
        _URGENT,
        _PUBLIC,
        _EMERGENCY,
        (
            Attr("smell", "气味程度", _ONE, True, (("faint", "轻微"), ("strong", "浓烈"))),
            Attr("evacuated", "是否已疏散", _ONE, True, _YES_NO),
        ),
        default_center=_RAPID,
    ),
    CategorySpec(
        "ebike-charging",
        "电动车违规充电",
        "安全隐患",
        "电动自行车楼道停放、飞线充电、入户充电。",
        ("电动车", "飞线", "充电", "楼道"),
        _HIGH,
        _CO,
        Sla(2 * HOUR, 2 * WORKING_DAY),
        (
            _building_attr(required=False),
            Attr(
                "charging_place",
                "充电方式",
                _ONE,
                True,
                (("corridor", "楼道停放充电"), ("flying_lead", "飞线充电"), ("indoors", "入户充电")),
            ),
        ),
        default_center=_RAPID,
    ),
    CategorySpec(
        "building-hazard",
        "房屋安全隐患",
        "安全隐患",
        "外墙脱落、墙体开裂、阳台或雨棚松动等房屋安全隐患，需要鉴定和维修。",
        ("外墙", "开裂", "脱落", "危房", "房屋"),
        _HIGH,
        _PUBLIC,
        Sla(2 * HOUR, 5 * WORKING_DAY),
        (
            _building_attr(),
            Attr(
                "hazard_kinds",
                "隐患类型",
                _MANY,
                True,
                (
                    ("facade", "外墙脱落"),
                    ("cracks", "墙体开裂"),
                    ("balcony", "阳台雨棚松动"),
                    ("tilt", "房屋倾斜"),
                ),
            ),
        ),
        default_unit="yuhu-housing",
    ),
    # ------------------------------------------------------------ 经营与企业
    CategorySpec(
        "food-safety",
        "食品安全",
        "经营与企业",
        "过期食品、无证经营、餐饮卫生问题。",
        ("食品", "过期", "餐馆", "卫生", "无证"),
        _NORMAL,
        _PUBLIC,
        Sla(4 * HOUR, 5 * WORKING_DAY),
        (
            Attr("shop_name", "商户名称", _S, True),
            Attr("purchase_time", "购买或就餐时间", _DT),
        ),
        default_unit="yuhu-market",
    ),
    CategorySpec(
        "business-service",
        "企业和个体户服务",
        "经营与企业",
        "营业执照、扶持政策、招工用工等企业和个体工商户服务帮办。",
        ("营业执照", "个体户", "企业", "政策", "招工"),
        _LOW,
        _PUBLIC,
        Sla(WORKING_DAY, 5 * WORKING_DAY),
        (
            Attr(
                "service_kind",
                "服务类型",
                _ONE,
                True,
                (("licence", "证照办理"), ("policy", "扶持政策"), ("hiring", "招工用工"), ("other", "其他")),
            ),
            Attr("business_name", "企业或店铺名称", _S),
        ),
        default_center=_ECONOMY,
    ),
    # ------------------------------------------------------------ 供水供电
    CategorySpec(
        "water-outage",
        "停水与水压不足",
        "供水供电",
        "无预告停水、水压不足、水质浑浊。",
        ("停水", "水压", "自来水", "水质"),
        _HIGH,
        _PUBLIC,
        Sla(HOUR, 24 * HOUR, calendar_clock=True),
        (
            Attr(
                "extent",
                "影响范围",
                _ONE,
                True,
                (("flat", "仅本户"), ("building", "整栋楼"), ("area", "片区")),
            ),
            Attr("since", "开始时间", _DT, True),
        ),
        default_unit="yuhu-water",
    ),
    # ------------------------------------------------------------ 社会治安
    CategorySpec(
        "public-security",
        "治安隐患",
        "社会治安",
        "盗窃、可疑人员、电信诈骗线索等治安隐患（紧急情况请直接拨打110）。",
        ("治安", "盗窃", "可疑", "诈骗", "小偷"),
        _HIGH,
        _PUBLIC,
        Sla(2 * HOUR, 3 * WORKING_DAY),
        (
            Attr(
                "kind",
                "类型",
                _ONE,
                True,
                (("theft", "盗窃"), ("suspicious", "可疑人员"), ("fraud", "诈骗"), ("other", "其他")),
            ),
        ),
        default_unit="yuhu-police",
    ),
)
CATEGORIES_BY_CODE: Mapping[str, CategorySpec] = {c.code: c for c in CATEGORIES}
# Categories whose tickets anyone may read (Open311 without a key): matters of public places. The
# rest stay private: disputes, welfare, elderly care, a neighbour's noise or charging, one's home.
PUBLIC_CATEGORIES = frozenset(
    {
        "lift-failure",
        "garbage-overflow",
        "illegal-dumping",
        "sewage-blockage",
        "illegal-parking",
        "fire-lane-blocked",
        "construction-noise",
        "streetlight-out",
        "road-damage",
        "manhole-cover",
        "water-outage",
    }
)


def _duration(value: dt.timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(value)
    return d


def category_message(c: CategorySpec) -> pb.Category:
    return pb.Category(
        code=c.code,
        display_name=c.display_name,
        group=c.group,
        description=c.description,
        keywords=list(c.keywords),
        default_unit=f"units/{c.default_unit}" if c.default_unit else "",
        default_center=c.default_center,
        priority=c.priority,
        matter_class=c.matter_class,
        kind=c.kind,
        attributes=[
            pb.AttributeDefinition(
                code=a.code,
                display_name=a.display_name,
                description=a.description,
                type=a.type,
                required=a.required,
                options=[pb.AttributeOption(key=k, display_name=n) for k, n in a.options],
            )
            for a in c.attributes
        ],
        sla=pb.SlaPolicy(
            acknowledge_within=_duration(c.sla.acknowledge_within),
            resolve_within=_duration(c.sla.resolve_within),
            clock=pb.SLA_CLOCK_CALENDAR if c.sla.calendar_clock else pb.SLA_CLOCK_WORKING_HOURS,
            escalate_on_acknowledge_breach=c.sla.escalate_on_acknowledge_breach,
        ),
        active=True,
        public=c.code in PUBLIC_CATEGORIES,
    )


# ---------------------------------------------------------------------------------- the places


@dataclass(frozen=True)
class BlockPlace:
    number: int  # 1..17
    path: str  # yuhu/wanlou/yaowan/b01
    name: str  # 窑湾社区第1区块
    community: str  # 窑湾社区
    lanes: tuple[str, ...]  # the community's lanes, for addresses outside a building
    point: tuple[float, float]  # (lat, lng), well inside the block
    ring: tuple[tuple[float, float], ...]  # the boundary, (lng, lat) as in GeoJSON, closed
    buildings: tuple[tuple[str, str], ...]  # (name, address): ("3栋", "万楼街道窑湾社区3栋")

    def contains(self, lat: float, lng: float, margin: float = 0.0003) -> bool:
        """Inside the boundary and at least `margin` degrees (about 30 m) from its edges."""
        return _inside(self.ring, lng, lat) and all(
            _distance_to_segment(lng, lat, a, b) >= margin for a, b in itertools.pairwise(self.ring)
        )


def _inside(ring: tuple[tuple[float, float], ...], x: float, y: float) -> bool:
    """Even-odd ray casting."""
    inside = False
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def _distance_to_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
    px, py = ax + t * dx, ay + t * dy
    return float(((x - px) ** 2 + (y - py) ** 2) ** 0.5)


def _interior_point(ring: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """A point deep inside a polygon: the best of a grid over its bounding box, by distance to the
    boundary (a coarse pole of inaccessibility; the demo's blocks are about 600 m across)."""
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    best, best_d = (sum(ys) / len(ys), sum(xs) / len(xs)), -1.0
    steps = 24
    for i in range(1, steps):
        for j in range(1, steps):
            x = min(xs) + (max(xs) - min(xs)) * i / steps
            y = min(ys) + (max(ys) - min(ys)) * j / steps
            if not _inside(ring, x, y):
                continue
            d = min(_distance_to_segment(x, y, a, b) for a, b in itertools.pairwise(ring))
            if d > best_d:
                best, best_d = (round(y, 6), round(x, 6)), d
    return best


def block_places(files: blocks_demo.DemoFiles | None = None) -> dict[int, BlockPlace]:
    """The 17 demo blocks by number, each with a point well inside it and its buildings."""
    files = files or blocks_demo.wanlou_demo()
    communities = {code: (name, lanes) for code, name, lanes in blocks_demo.COMMUNITIES}
    buildings: dict[str, list[tuple[str, str]]] = {}
    for line in files.buildings_csv.splitlines()[1:]:
        path, _code, name, address = line.split(",")
        buildings.setdefault(path, []).append((name, address))
    places = {}
    for feature in json.loads(files.boundaries_geojson)["features"]:
        path = feature["properties"]["path"]
        if path.count("/") != 3:
            continue
        ring = tuple((float(x), float(y)) for x, y in feature["geometry"]["coordinates"][0])
        community, lanes = communities[path.split("/")[2]]
        number = int(path.rsplit("/b", 1)[1])
        places[number] = BlockPlace(
            number=number,
            path=path,
            name=feature["properties"]["name"],
            community=community,
            lanes=lanes,
            point=_interior_point(ring),
            ring=ring,
            buildings=tuple(buildings.get(path, ())),
        )
    return places


@dataclass(frozen=True)
class Resident:
    """A demo resident who reports problems: a household head with a phone, of a given block."""

    block: int
    path: str
    name: str
    phone: str
    household_code: str
    address: str


def demo_residents(files: blocks_demo.DemoFiles | None = None) -> dict[int, Resident]:
    """One resident per block number that has resident reports in `TICKETS`: the first household
    head of that block, aged 25-70, with a phone."""
    files = files or blocks_demo.wanlou_demo()
    wanted = {t.block for t in TICKETS if t.reporter == "resident"}
    households: dict[str, tuple[str, str]] = {}  # code -> (block path, address)
    for line in files.households_csv.splitlines()[1:]:
        code, path, _building, address, _tags = line.split(",")
        households[code] = (path, address)
    residents: dict[int, Resident] = {}
    for line in files.residents_csv.splitlines()[1:]:
        household, name, relation, phone, birth_year, _ = line.split(",")
        block = int(household.split("-")[1].removeprefix("B"))
        if block not in wanted or block in residents or relation != "head" or not phone or not birth_year:
            continue
        if not 25 <= blocks_demo.REFERENCE_YEAR - int(birth_year) <= 70:
            continue
        path, address = households[household]
        residents[block] = Resident(block, path, name, phone, household, address)
    return residents


# ------------------------------------------------------------------------------------- tickets


@dataclass(frozen=True)
class Step:
    """One transition. `actor` is who makes it:

    dispatcher  the street's dispatcher          leader      the district leader (district dispatching)
    reporter    whoever reported the ticket      supervisor  the ticket's block supervisor
    unit:<code> that unit's demo staff member (and the unit they act for)
    """

    action: int  # pb.Action
    actor: str
    note: str = ""
    reason: str = ""
    lead_unit: str = ""  # unit code
    assisting_units: tuple[str, ...] = ()
    original: str = ""  # merge: the demo ticket key of the original
    score: int = 0
    comment: str = ""
    mediation_outcome: int = pb.MEDIATION_OUTCOME_UNSPECIFIED


@dataclass(frozen=True)
class DemoTicket:
    key: str  # stable: the request id of its creation is derived from it
    block: int  # 1..17
    category: str
    source: int  # pb.TicketSource
    # resident (the block's demo resident), governor / assistant (the block's), or dispatcher (who
    # takes the 12345 hotline's calls and files them with the caller as contact)
    reporter: str
    title: str
    description: str
    spot: str  # where exactly: after the building's address, or after a lane's name
    target: int  # pb.TicketState after the steps
    steps: tuple[Step, ...]
    building: int | None = 0  # index into the block's buildings; None: in a lane, not a building
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    contact: tuple[str, str] | None = None  # (name, phone) of a hotline caller
    # Which of a few points around the block's deepest point (0: by key); a duplicate names the
    # same as its original and lands a few metres from it.
    nudge: int = 0


# --- step builders ---


def _accept(note: str = "核实属实，予以受理。") -> Step:
    return Step(pb.ACTION_ACCEPT, "dispatcher", note=note)


def _dispatch(lead: str, *assisting: str, actor: str = "dispatcher", note: str = "") -> Step:
    names = "、".join(UNITS_BY_CODE[u].display_name for u in assisting)
    default = f"请{UNITS_BY_CODE[lead].display_name}牵头办理" + (f"，{names}协助。" if names else "。")
    return Step(
        pb.ACTION_DISPATCH, actor, note=note or default, lead_unit=lead, assisting_units=tuple(assisting)
    )


def _ack(unit: str, note: str = "已签收，马上安排人员。") -> Step:
    return Step(pb.ACTION_ACKNOWLEDGE, f"unit:{unit}", note=note)


def _start(unit: str, note: str = "工作人员已到现场处置。") -> Step:
    return Step(pb.ACTION_START, f"unit:{unit}", note=note)


def _resolve(unit: str, note: str, outcome: int = pb.MEDIATION_OUTCOME_UNSPECIFIED) -> Step:
    return Step(pb.ACTION_RESOLVE, f"unit:{unit}", note=note, mediation_outcome=outcome)


def _rate(score: int, comment: str, actor: str = "reporter") -> Step:
    return Step(pb.ACTION_RATE, actor, score=score, comment=comment)


def _close(actor: str = "dispatcher") -> Step:
    return Step(pb.ACTION_CLOSE, actor, note="已回访，办结归档。")


def _working(lead: str, *assisting: str, actor: str = "dispatcher", start: str = "") -> tuple[Step, ...]:
    """Dispatched, every unit reported in, the lead at work."""
    return (
        _dispatch(lead, *assisting, actor=actor),
        _ack(lead),
        *(_ack(u, "已签收，配合牵头单位处置。") for u in assisting),
        _start(lead, start or "工作人员已到现场处置。"),
    )


def _closed(
    lead: str,
    result: str,
    score: int,
    comment: str,
    *assisting: str,
    rater: str = "reporter",
    outcome: int = pb.MEDIATION_OUTCOME_UNSPECIFIED,
) -> tuple[Step, ...]:
    """Accepted, dispatched, worked, resolved, rated and closed."""
    return (
        _accept(),
        *_working(lead, *assisting),
        _resolve(lead, result, outcome),
        _rate(score, comment, rater),
        _close(),
    )


_SUBMITTED, _ACCEPTED = pb.TICKET_STATE_SUBMITTED, pb.TICKET_STATE_ACCEPTED
_REJECTED, _MERGED, _ESCALATED = pb.TICKET_STATE_REJECTED, pb.TICKET_STATE_MERGED, pb.TICKET_STATE_ESCALATED
_DISPATCHED, _IN_PROGRESS = pb.TICKET_STATE_DISPATCHED, pb.TICKET_STATE_IN_PROGRESS
_RESOLVED, _CLOSED = pb.TICKET_STATE_RESOLVED, pb.TICKET_STATE_CLOSED
_RESIDENT, _PATROL, _VISIT = pb.TICKET_SOURCE_RESIDENT, pb.TICKET_SOURCE_PATROL, pb.TICKET_SOURCE_VISIT
_HOTLINE, _DELIBERATION = pb.TICKET_SOURCE_HOTLINE, pb.TICKET_SOURCE_DELIBERATION
_SETTLED, _NOT_SETTLED = pb.MEDIATION_OUTCOME_SETTLED, pb.MEDIATION_OUTCOME_NOT_SETTLED

TICKETS: tuple[DemoTicket, ...] = (
    DemoTicket(
        "t01",
        1,
        "lift-failure",
        _RESIDENT,
        "resident",
        "电梯卡在5楼，里面关了两个人",
        "2单元电梯突然停在5楼和6楼之间，里面有一位老人和一个小孩，按了警铃没人应，请赶快派人来！",
        "2单元",
        _CLOSED,
        _closed(
            "wanlou-rapid",
            "维保单位20分钟到场，被困2人安全救出，无人受伤；故障原因为门机板损坏，已更换并经检测恢复运行。"
            "市场监管局已约谈维保单位，要求加密维保频次。",
            5,
            "救援很及时，老人小孩都没事，谢谢街道和维保师傅！",
            "yuhu-market",
        ),
        building=1,
        attributes=(("building", ("{building}",)), ("people_trapped", ("yes",)), ("floor", ("5",))),
    ),
    DemoTicket(
        "t02",
        2,
        "garbage-overflow",
        _RESIDENT,
        "resident",
        "垃圾桶三天没人清运",
        "小区东门垃圾桶点已经满出来了，三天没见清运车，天气一热味道很大。",
        "东门垃圾桶点",
        _CLOSED,
        _closed(
            "wanlou-rapid",
            "已协调环卫公司当天清运完毕并冲洗消毒桶点，清运频次调整为每日两次。",
            4,
            "当天就清走了，希望以后能保持。",
        ),
        attributes=(("spot", ("bin",)), ("days_uncollected", ("3",))),
    ),
    DemoTicket(
        "t03",
        3,
        "neighbour-dispute",
        _RESIDENT,
        "resident",
        "楼上卫生间漏水到我家，协商不成",
        "楼上卫生间漏水半年了，我家天花板发霉掉灰，找楼上几次都说不是他家的问题，请社区帮忙调解。",
        "1单元",
        _CLOSED,
        _closed(
            "wanlou-guidance",
            "区块治理员、楼栋长和人民调解员上门，请物业做闭水试验确认为楼上防水层破损。经调解，"
            "楼上住户同意重做防水并赔偿天花板修复费800元，双方签订人民调解协议书。",
            5,
            "调解员很耐心，问题解决了，邻居关系也缓和了。",
            outcome=_SETTLED,
        ),
        building=2,
        attributes=(("dispute_kind", ("water_leak",)), ("other_party", ("楼上同一单元",))),
    ),
    DemoTicket(
        "t04",
        4,
        "streetlight-out",
        _PATROL,
        "governor",
        "河街一段路灯整排不亮",
        "夜间巡查发现河街靠江边一段5盏路灯不亮，老人晚上散步看不清路。",
        "靠江边一段",
        _CLOSED,
        _closed(
            "yuhu-urban",
            "路灯管理所已排查，为地下电缆老化短路，更换电缆30米，5盏路灯全部恢复。",
            4,
            "修好了，晚上亮堂多了。",
        ),
        building=None,
        attributes=(("lights_out", ("5",)),),
    ),
    DemoTicket(
        "t05",
        5,
        "illegal-parking",
        _RESIDENT,
        "resident",
        "单元门口总停着一辆车",
        "有辆白色小车长期停在我们单元门口，进出很不方便。",
        "3单元门口",
        _REJECTED,
        (
            Step(
                pb.ACTION_REJECT,
                "dispatcher",
                reason="经现场核实，该车停放在业主自有产权车位内，不属于违规停车；已电话向反映人说明情况。",
            ),
        ),
        building=0,
        attributes=(("blocking", ("entrance",)),),
    ),
    DemoTicket(
        "t06",
        6,
        "noise-nuisance",
        _RESIDENT,
        "resident",
        "广场舞音响太大声，每天晚上到十点",
        "小区广场每天晚上七点到十点跳广场舞，音响开得很大，家里孩子要中考，根本没法学习。",
        "小区中心广场",
        _IN_PROGRESS,
        (_accept(), *_working("wanlou-rapid", start="已联系广场舞队负责人，约定协商时间。")),
        attributes=(
            ("noise_time", ("@-1 21:40",)),
            ("noise_kinds", ("square_dance",)),
            ("recurring", ("yes",)),
        ),
        nudge=1,
    ),
    DemoTicket(
        "t07",
        7,
        "sewage-blockage",
        _HOTLINE,
        "dispatcher",
        "12345转办：小区下水道堵塞污水外溢",
        "市民来电反映，小区4栋后面下水道堵塞，污水漫到路面，气味很大，一楼住户担心倒灌。",
        "后面道路",
        _CLOSED,
        _closed(
            "yuhu-urban",
            "区城管局排水所用高压疏通车疏通主管道，清掏淤泥约2吨；快速处置中心清洗路面；"
            "自来水公司排查确认无供水管渗漏。已恢复正常。",
            5,
            "回访市民：疏通很及时，满意。",
            "wanlou-rapid",
            "yuhu-water",
        ),
        building=3,
        attributes=(("overflowing", ("yes",)),),
        contact=("王女士", "+8617807320101"),
    ),
    DemoTicket(
        "t08",
        8,
        "road-damage",
        _PATROL,
        "assistant",
        "杨梅洲路人行道板松动翘起",
        "巡查发现杨梅洲路人行道约10平方米地砖松动翘起，雨天踩上去溅水，容易绊倒老人。",
        "公交站旁人行道",
        _DISPATCHED,
        (_accept(), _dispatch("yuhu-urban")),
        building=None,
        attributes=(("damage_kind", ("paving",)), ("area_m2", ("10",))),
        nudge=2,
    ),
    DemoTicket(
        "t09",
        9,
        "elderly-welfare-check",
        _VISIT,
        "governor",
        "独居老人两天电话联系不上",
        "走访时发现独居的李奶奶（82岁）家门两天没开，电话没人接，邻居也说没见到人。",
        "2单元",
        _RESOLVED,
        (
            _accept(),
            *_working("wanlou-livelihood", start="已联系老人女儿，和物业一起上门。"),
            _resolve(
                "wanlou-livelihood",
                "上门确认老人因感冒在家休息，手机没电，身体无大碍。已联系其女儿每日电话问候，"
                "为老人安装一键呼叫设备，并纳入每周探访名单。",
            ),
        ),
        building=4,
        attributes=(("living_alone", ("yes",)), ("last_contact", ("@-2 10:00",))),
    ),
    DemoTicket(
        "t10",
        10,
        "subsistence-allowance",
        _VISIT,
        "assistant",
        "因病致贫家庭申请低保",
        "走访发现一户家庭男主人去年中风后失去劳动能力，妻子打零工，孩子读初中，希望申请低保，"
        "不清楚需要哪些材料。",
        "3单元",
        _IN_PROGRESS,
        (
            _accept(),
            *_working("wanlou-livelihood", "yuhu-civil", start="已上门指导准备材料，代为填写申请表。"),
        ),
        building=1,
        attributes=(("household_size", ("3",)), ("monthly_income", ("1800",))),
    ),
    DemoTicket(
        "t11",
        11,
        "road-damage",
        _RESIDENT,
        "resident",
        "唐兴桥路路面塌陷一个大坑",
        "唐兴桥路靠近路口的路面塌陷出一个一米多宽的坑，下面好像是空的，车子都绕着走，很危险。",
        "靠近路口处",
        _ESCALATED,
        (
            _accept(),
            Step(
                pb.ACTION_ESCALATE,
                "dispatcher",
                reason="塌陷疑似地下排水管破裂掏空路基，需开挖修复并办理占道施工手续，超出街道处置能力，"
                "现场已设置围挡，提请区里统筹。",
            ),
        ),
        building=None,
        attributes=(("damage_kind", ("subsidence",)), ("area_m2", ("2",))),
    ),
    DemoTicket(
        "t12",
        12,
        "building-hazard",
        _PATROL,
        "governor",
        "老旧楼栋外墙瓷砖成片脱落",
        "巡查发现该栋楼北面外墙瓷砖成片脱落，下面是小区主通道，已经砸坏一辆电动车。",
        "北面外墙",
        _CLOSED,
        (
            _accept(),
            Step(
                pb.ACTION_ESCALATE,
                "dispatcher",
                reason="整栋外墙需要安全鉴定和维修资金统筹，超出街道权限，提请区住建局处理。",
            ),
            Step(pb.ACTION_ACCEPT_ESCALATION, "leader", note="区里受理，由区住建局牵头。"),
            _dispatch("yuhu-housing", "wanlou-rapid", actor="leader"),
            _ack("yuhu-housing"),
            _ack("wanlou-rapid", "已签收，先行设置围挡和警示。"),
            _start("yuhu-housing", "已委托鉴定机构现场勘察。"),
            _resolve(
                "yuhu-housing",
                "鉴定为外墙饰面层空鼓，结构安全。已纳入老旧小区改造计划，先行铲除空鼓瓷砖并做涂料外墙，"
                "快速处置中心在施工期间设置围挡、引导通行。",
            ),
            _rate(4, "处理得比较快，就是施工期间通道绕了一点。"),
            _close("leader"),
        ),
        building=0,
        attributes=(("building", ("{building}",)), ("hazard_kinds", ("facade",))),
    ),
    DemoTicket(
        "t13",
        13,
        "construction-noise",
        _RESIDENT,
        "resident",
        "工地半夜还在打桩",
        "附近工地最近每天晚上十一点以后还在打桩，整栋楼都睡不着。",
        "小区北侧工地",
        _SUBMITTED,
        (),
        building=None,
        attributes=(("noise_time", ("@-1 23:20",)), ("site_name", ("雨湖路北侧安置房项目",))),
    ),
    DemoTicket(
        "t14",
        14,
        "ebike-charging",
        _PATROL,
        "governor",
        "楼道里电动车飞线充电",
        "巡查发现该栋1单元有住户从二楼窗户拉电线到楼道给电动车充电，存在火灾隐患。",
        "1单元楼道",
        _CLOSED,
        _closed(
            "wanlou-rapid",
            "已当面劝导住户拆除飞线，讲解电动车火灾案例；协调物业在小区新增智能充电桩12个。",
            5,
            "住户已整改，新充电桩大家都说方便。",
        ),
        building=2,
        attributes=(("building", ("{building}",)), ("charging_place", ("flying_lead",))),
    ),
    DemoTicket(
        "t15",
        15,
        "gas-leak",
        _RESIDENT,
        "resident",
        "楼道里一股很浓的煤气味",
        "下班回来闻到3楼楼道里煤气味很浓，不知道是哪家漏气，敲门也没人开。",
        "1单元3楼",
        _CLOSED,
        _closed(
            "wanlou-rapid",
            "快速处置中心10分钟到场，疏散该单元住户并通知燃气公司抢修；查明为302室灶具软管老化开裂，"
            "已关闭阀门、更换软管，检测无残留后恢复供气。",
            5,
            "街道和燃气公司十几分钟就到了，非常专业，点赞！",
        ),
        building=1,
        attributes=(("smell", ("strong",)), ("evacuated", ("no",))),
    ),
    DemoTicket(
        "t16",
        16,
        "food-safety",
        _RESIDENT,
        "resident",
        "小卖部卖过期牛奶",
        "在小区门口的便民超市买的牛奶已经过期一个星期，店主不肯退。",
        "小区门口便民超市",
        _DISPATCHED,
        (_accept(), _dispatch("yuhu-market")),
        building=None,
        attributes=(("shop_name", ("风车坪便民超市",)), ("purchase_time", ("@-1 18:30",))),
    ),
    DemoTicket(
        "t17",
        17,
        "elderly-home-care",
        _RESIDENT,
        "resident",
        "为父亲申请助餐和助浴服务",
        "父亲86岁，腿脚不便，我白天上班，想申请社区的助餐和每周一次助浴服务。",
        "2单元",
        _ACCEPTED,
        (_accept(),),
        building=3,
        attributes=(("age", ("86",)), ("services", ("meals", "bathing"))),
    ),
    DemoTicket(
        "t18",
        6,
        "noise-nuisance",
        _HOTLINE,
        "dispatcher",
        "12345转办：小区广场舞噪音扰民",
        "市民来电反映小区广场每晚广场舞声音太大，影响休息。",
        "小区中心广场",
        _MERGED,
        (
            Step(
                pb.ACTION_MERGE,
                "dispatcher",
                reason="与居民此前反映的同一处广场舞噪音重复，并入原工单一并处理。",
                original="t06",
            ),
        ),
        attributes=(("noise_time", ("@-1 21:00",)), ("noise_kinds", ("square_dance",))),
        contact=("陈先生", "+8617807320102"),
        nudge=1,
    ),
    DemoTicket(
        "t19",
        8,
        "road-damage",
        _RESIDENT,
        "resident",
        "公交站旁边地砖翘起来了",
        "杨梅洲路公交站旁边的人行道地砖翘起来了，我妈昨天差点绊倒。",
        "公交站旁人行道",
        _MERGED,
        (
            Step(
                pb.ACTION_MERGE,
                "dispatcher",
                reason="与区块巡查上报的同一处人行道板松动重复，已并入原工单。",
                original="t08",
            ),
        ),
        building=None,
        attributes=(("damage_kind", ("paving",)),),
        nudge=2,
    ),
    DemoTicket(
        "t20",
        3,
        "property-service",
        _RESIDENT,
        "resident",
        "物业费涨价不合理",
        "物业今年物业费从每平米0.6元涨到0.9元，服务没有变好，要求街道让物业降价。",
        "",
        _REJECTED,
        (
            Step(
                pb.ACTION_REJECT,
                "dispatcher",
                reason="物业收费标准调整属业主大会与物业公司的合同事项，不属于工单受理范围；"
                "已告知可通过业主委员会召开业主大会协商，或向区住建局物业科咨询。",
            ),
        ),
        building=0,
        attributes=(("issues", ("fees",)), ("property_company", ("湘潭万家物业",))),
    ),
    DemoTicket(
        "t21",
        4,
        "family-dispute",
        _VISIT,
        "governor",
        "兄妹三人因母亲赡养问题闹矛盾",
        "走访时了解到，85岁的王奶奶三个子女因赡养费分担和轮流照顾问题争吵，老人很伤心。",
        "3单元",
        _RESOLVED,
        (
            _accept(),
            *_working("wanlou-guidance", start="已约三兄妹到社区调解室面谈。"),
            _resolve(
                "wanlou-guidance",
                "组织两次调解，大儿子同意承担赡养费，但轮流照顾安排未能达成一致。已告知当事人可申请法律援助"
                "或向法院起诉，区块将每周探望老人。",
                _NOT_SETTLED,
            ),
            _rate(3, "没调成，但工作人员确实尽力了。"),
        ),
        building=1,
        attributes=(("dispute_kind", ("support",)), ("wants_mediation", ("yes",))),
    ),
    DemoTicket(
        "t22",
        5,
        "fire-lane-blocked",
        _PATROL,
        "assistant",
        "消防通道被私家车堵死",
        "巡查发现小区消防通道入口停了三辆私家车，消防车完全进不去。",
        "消防通道入口",
        _CLOSED,
        _closed(
            "wanlou-rapid",
            "联系车主挪车，对其中一辆长期占用车辆张贴告知书；协调物业施划禁停标线、安装隔离桩。",
            5,
            "通道已经畅通，禁停标线也画好了。",
        ),
        building=2,
        attributes=(("blocked_by", ("vehicles",)),),
    ),
    DemoTicket(
        "t23",
        7,
        "lift-failure",
        _HOTLINE,
        "dispatcher",
        "12345转办：电梯停运两天无人维修",
        "市民来电反映所住楼栋电梯已停运两天，物业说在等配件，楼里有好几位行动不便的老人。",
        "1单元",
        _RESOLVED,
        (
            _accept(),
            *_working("wanlou-rapid", "yuhu-market", start="已约物业和维保单位到场。"),
            _resolve(
                "wanlou-rapid",
                "督促维保单位调货，当天下午更换曳引机编码器，电梯已恢复运行；市场监管局对维保单位下达整改通知。",
            ),
        ),
        building=0,
        attributes=(("building", ("{building}",)), ("people_trapped", ("no",))),
        contact=("刘先生", "+8617807320103"),
    ),
    DemoTicket(
        "t24",
        9,
        "water-outage",
        _RESIDENT,
        "resident",
        "整栋楼从早上开始停水",
        "今天早上开始整栋楼都没水，没看到停水通知，家里老人做饭洗漱都成问题。",
        "",
        _CLOSED,
        _closed(
            "yuhu-water",
            "经排查为楼前阀门井内阀门损坏，抢修人员更换阀门，下午4点恢复供水；抢修期间送来桶装水。",
            4,
            "恢复供水比预计的快，还送了水，不错。",
        ),
        building=2,
        attributes=(("extent", ("building",)), ("since", ("@0 07:00",))),
    ),
    DemoTicket(
        "t25",
        10,
        "illegal-parking",
        _PATROL,
        "assistant",
        "僵尸车长期占用路边车位",
        "巡查发现唐兴桥路边一辆无牌面包车停放超过半年，轮胎瘪了，车内堆满杂物。",
        "路边停车位",
        _IN_PROGRESS,
        (_accept(), *_working("wanlou-rapid", start="已张贴限期挪车告知书，正在联系车主。")),
        building=None,
        attributes=(("blocking", ("road",)),),
    ),
    DemoTicket(
        "t26",
        11,
        "streetlight-out",
        _RESIDENT,
        "resident",
        "小区后面巷子路灯坏了",
        "雨湖路后面巷子里的路灯坏了好多盏，晚上一片漆黑，下班回家很害怕。",
        "后巷",
        _IN_PROGRESS,
        (
            *_closed(
                "yuhu-urban",
                "已更换2盏路灯灯泡，恢复照明。",
                4,
                "修了，谢谢。",
            ),
            Step(
                pb.ACTION_REOPEN,
                "supervisor",
                reason="监督员夜间复查：后巷共有5盏路灯不亮，只修了2盏，整改不到位，重新办理。",
            ),
            _dispatch("yuhu-urban", note="监督员复查不合格，请区城管局重新处置全部故障路灯。"),
            _ack("yuhu-urban", "已签收，安排路灯所全面排查。"),
            _start("yuhu-urban", "路灯所正在排查线路。"),
        ),
        building=None,
        attributes=(("lights_out", ("5",)),),
    ),
    DemoTicket(
        "t27",
        12,
        "public-security",
        _RESIDENT,
        "resident",
        "小区连续发生电动车电瓶被盗",
        "这个月小区车棚已经有四五户的电动车电瓶被偷，监控好像是坏的。",
        "车棚",
        _DISPATCHED,
        (_accept(), _dispatch("yuhu-police", "wanlou-rapid")),
        building=1,
        attributes=(("kind", ("theft",)),),
    ),
    DemoTicket(
        "t28",
        13,
        "business-service",
        _RESIDENT,
        "resident",
        "想开早餐店，不知道怎么办证",
        "下岗后想在家附近开个早餐店，营业执照和食品经营许可证不知道去哪里办、要什么材料。",
        "",
        _CLOSED,
        _closed(
            "wanlou-economy",
            "经济发展中心工作人员帮办：线上提交个体工商户登记，三天领取营业执照，并协助办理食品经营许可；"
            "同时申请了创业担保贷款贴息。",
            5,
            "全程有人帮着办，少跑了好多路，早餐店已经开张了！",
        ),
        building=0,
        attributes=(("service_kind", ("licence",)), ("business_name", ("湘味早餐店",))),
    ),
    DemoTicket(
        "t29",
        14,
        "temporary-assistance",
        _VISIT,
        "assistant",
        "白血病患儿家庭申请临时救助",
        "走访发现一户家庭孩子患白血病，治疗已花费二十多万元，家里积蓄用尽，申请临时救助。",
        "2单元",
        _ESCALATED,
        (
            _accept(),
            Step(
                pb.ACTION_ESCALATE,
                "dispatcher",
                reason="救助金额超过街道审批权限，且需要协调大病医疗救助和慈善资源，提请区民政局统筹。",
            ),
        ),
        building=1,
        attributes=(("cause", ("illness",)),),
    ),
    DemoTicket(
        "t30",
        15,
        "garbage-overflow",
        _HOTLINE,
        "dispatcher",
        "12345转办：垃圾中转站异味大",
        "市民来电反映小区旁垃圾中转站夏天异味很大，污水流到路面。",
        "垃圾中转站",
        _ACCEPTED,
        (_accept(),),
        building=None,
        attributes=(("spot", ("station",)),),
        contact=("赵女士", "+8617807320104"),
    ),
    DemoTicket(
        "t31",
        16,
        "neighbour-dispute",
        _RESIDENT,
        "resident",
        "邻居长期在楼道堆放杂物",
        "对门邻居在楼道里堆了旧家具和纸箱，占了一半通道，跟他说了几次都不理。",
        "2单元4楼",
        _IN_PROGRESS,
        (
            _accept(),
            *_working("wanlou-guidance", start="楼栋长已上门了解情况，约双方周末到议事室调解。"),
        ),
        building=2,
        attributes=(("dispute_kind", ("shared_space",)),),
    ),
    DemoTicket(
        "t32",
        17,
        "manhole-cover",
        _PATROL,
        "governor",
        "建设路井盖丢失",
        "巡查发现建设路人行道上一个雨水井盖不见了，已临时放置锥桶。",
        "人行道",
        _CLOSED,
        _closed(
            "yuhu-urban",
            "排水所1小时内到场补装防盗井盖，并对该路段井盖全面排查。",
            5,
            "处理迅速。",
        ),
        building=None,
        attributes=(("condition", ("missing",)),),
    ),
    DemoTicket(
        "t33",
        1,
        "elderly-home-care",
        _RESIDENT,
        "resident",
        "申请助洁服务",
        "家里两位老人都八十多岁了，想申请每月两次的上门保洁。",
        "1单元",
        _RESOLVED,
        (
            _accept(),
            *_working("wanlou-livelihood", start="已上门评估老人需求。"),
            _resolve("wanlou-livelihood", "评估通过，已安排居家养老服务站每月两次上门助洁，首次服务已完成。"),
            _rate(5, "阿姨打扫得很干净，老人很满意。"),
        ),
        building=0,
        attributes=(("age", ("83",)), ("services", ("cleaning",))),
    ),
    DemoTicket(
        "t34",
        2,
        "construction-noise",
        _HOTLINE,
        "dispatcher",
        "12345转办：夜间施工噪音",
        "市民来电反映窑湾街附近工地夜里十二点还在浇筑混凝土，噪音很大。",
        "附近工地",
        _DISPATCHED,
        (_accept(), _dispatch("yuhu-urban")),
        building=None,
        attributes=(("noise_time", ("@-1 23:50",)),),
        contact=("孙先生", "+8617807320105"),
    ),
    DemoTicket(
        "t35",
        5,
        "property-service",
        _RESIDENT,
        "resident",
        "单元门禁坏了一个月没修",
        "单元门禁坏了一个月，谁都能进，报给物业好几次都说没配件。",
        "2单元",
        _SUBMITTED,
        (),
        building=1,
        attributes=(("issues", ("security", "repairs")),),
    ),
    DemoTicket(
        "t36",
        13,
        "ebike-charging",
        _RESIDENT,
        "resident",
        "有人把电动车推进电梯带回家充电",
        "楼里有人每天把电动车推进电梯带回家充电，太危险了。",
        "电梯间",
        _SUBMITTED,
        (),
        building=2,
        attributes=(("charging_place", ("indoors",)),),
    ),
    DemoTicket(
        "t37",
        14,
        "sewage-blockage",
        _RESIDENT,
        "resident",
        "一楼厨房下水道返水",
        "我家住一楼，最近厨房下水道经常往上返污水，应该是楼下主管堵了。",
        "1单元101",
        _IN_PROGRESS,
        (
            _accept(),
            _dispatch("wanlou-livelihood"),
            Step(
                pb.ACTION_RETURN,
                "unit:wanlou-livelihood",
                reason="属排水管网疏通，不属于民生服务中心职责，请改派城管排水部门。",
            ),
            *_working("yuhu-urban", start="排水所已到场用管道机器人检测。"),
        ),
        building=3,
        attributes=(("overflowing", ("yes",)),),
    ),
    DemoTicket(
        "t38",
        16,
        "water-outage",
        _HOTLINE,
        "dispatcher",
        "12345转办：水压不足高层上不去水",
        "市民来电反映所住楼栋6楼以上水压不足，早晚高峰基本没水。",
        "",
        _ACCEPTED,
        (_accept(),),
        building=0,
        attributes=(("extent", ("building",)), ("since", ("@-3 07:00",))),
        contact=("周女士", "+8617807320106"),
    ),
    DemoTicket(
        "t39",
        17,
        "noise-nuisance",
        _RESIDENT,
        "resident",
        "楼下商铺喇叭循环播放",
        "楼下新开的手机店门口喇叭从早上九点循环喊到晚上九点。",
        "临街商铺",
        _SUBMITTED,
        (),
        building=1,
        attributes=(("noise_time", ("@0 09:10",)), ("noise_kinds", ("shop_speaker",))),
    ),
    DemoTicket(
        "t40",
        12,
        "property-service",
        _DELIBERATION,
        "governor",
        "居民议事会：楼道灯坏了物业迟迟不修",
        "区块议事会上多位居民反映该栋各单元楼道声控灯坏了大半，物业报修一周没人来。",
        "各单元楼道",
        _RESOLVED,
        (
            _accept(),
            *_working("wanlou-livelihood", start="已约谈物业项目经理。"),
            _resolve("wanlou-livelihood", "督促物业更换楼道声控灯26盏，并建立报修48小时回复制度。"),
            _rate(2, "灯是换了，但拖了一个多星期才来，希望物业能改进。"),
        ),
        building=2,
        attributes=(("issues", ("repairs", "facilities")), ("property_company", ("湘潭万家物业",))),
    ),
)
TICKETS_BY_KEY: Mapping[str, DemoTicket] = {t.key: t for t in TICKETS}

# A few points around a block's deepest point, in degrees (100 m is about 0.0009 degrees here).
_NUDGES = ((0.0, 0.0), (0.0006, 0.0005), (-0.0005, 0.0006), (0.0005, -0.0006), (-0.0006, -0.0004))
_DUPLICATES = frozenset(t.key for t in TICKETS if any(s.action == pb.ACTION_MERGE for s in t.steps))


def ticket_point(ticket: DemoTicket, place: BlockPlace) -> tuple[float, float]:
    """Where the ticket is: near the block's deepest point, and always well inside the block."""
    index = ticket.nudge or int(ticket.key.removeprefix("t")) % len(_NUDGES)
    dlat, dlng = _NUDGES[index % len(_NUDGES)]
    if ticket.key in _DUPLICATES:
        dlat, dlng = dlat + 0.00004, dlng + 0.00003  # about 5 m from the original
    lat, lng = round(place.point[0] + dlat, 6), round(place.point[1] + dlng, 6)
    return (lat, lng) if place.contains(lat, lng) else place.point


def ticket_address(ticket: DemoTicket, place: BlockPlace) -> str:
    if ticket.building is None or not place.buildings:
        lane = place.lanes[place.number % len(place.lanes)]
        return f"{blocks_demo.STREET[1]}{place.community}{lane}{ticket.spot}"
    return place.buildings[ticket.building % len(place.buildings)][1] + ticket.spot


def _attribute_value(value: str, ticket: DemoTicket, place: BlockPlace, now: dt.datetime) -> str:
    if value == "{building}":
        return place.buildings[(ticket.building or 0) % len(place.buildings)][0]
    if value.startswith("@"):  # "@-1 21:40": yesterday at 21:40 China Standard Time
        days, clock = value[1:].split()
        hh, mm = (int(x) for x in clock.split(":"))
        day = now.astimezone(CST).date() + dt.timedelta(days=int(days))
        moment = dt.datetime.combine(day, dt.time(hh, mm), CST)
        if moment > now:  # "today at 09:10" before 09:10: the day before
            moment -= dt.timedelta(days=1)
        return moment.isoformat()
    return value


def ticket_message(ticket: DemoTicket, place: BlockPlace, now: dt.datetime) -> pb.Ticket:
    """The ticket as a CreateTicketRequest carries it; `now` anchors relative attribute times."""
    lat, lng = ticket_point(ticket, place)
    message = pb.Ticket(
        category=f"categories/{ticket.category}",
        source=ticket.source,
        title=ticket.title,
        description=ticket.description,
        location=pb.Location(
            latitude=lat, longitude=lng, has_point=True, address=ticket_address(ticket, place)
        ),
        attributes=[
            pb.TicketAttribute(code=code, values=[_attribute_value(v, ticket, place, now) for v in values])
            for code, values in ticket.attributes
        ],
    )
    if ticket.contact:
        message.contact.display_name, message.contact.phone = ticket.contact
    return message

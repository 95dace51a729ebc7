"""Built-in message texts per kind and locale, and the parameters each kind offers (pure data).

Inbox, e-mail and group robots use `title` and `body`; SMS uses `sms` (or the body). Edited
templates (the `templates` table) take precedence; these apply until then.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LOCALE = "zh-CN"
FALLBACK_LOCALE = "en"
LOCALES = (DEFAULT_LOCALE, FALLBACK_LOCALE)
CHANNELS = ("inbox", "webhook", "sms", "email")


@dataclass(frozen=True)
class Text:
    title: str
    body: str
    sms: str = ""


_TICKET = ("ticket", "ticket_id", "category", "node", "state")
# Parameters each kind offers its templates, with sample values for previews and checks.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "ticket.accepted": _TICKET,
    "ticket.rejected": _TICKET,
    "ticket.merged": (*_TICKET, "merged_into"),
    "ticket.dispatched": _TICKET,
    "ticket.resolved": (*_TICKET, "rating_link"),
    "ticket.reopened": _TICKET,
    "ticket.assigned": _TICKET,
    "ticket.escalated": _TICKET,
    "ticket.overdue": (*_TICKET, "deadline", "deadline_kind"),
    "ticket.unacknowledged": (*_TICKET, "deadline", "deadline_kind"),
    "staff.assigned": ("block", "role"),
    "staff.removed": ("block", "role"),
    "account.password_reset": (),
    "account.login_locked": ("failed_attempts", "locked_seconds"),
    "points.awarded": ("points", "award", "entry"),
    "points.penalty": ("points", "award", "entry", "appeal_link"),
    "points.expiring": ("points", "expire_time"),
    "points.redemption_ready": ("redemption", "points", "quantity"),
    "points.list_red": ("ranking",),
    "points.list_black": ("ranking",),
}
SAMPLES: dict[str, str] = {
    "ticket": "tickets/T20250601001",
    "ticket_id": "T20250601001",
    "category": "road-damage",
    "node": "yuhu/wanlou/taoyuan/b07",
    "state": "accepted",
    "merged_into": "T20250531007",
    "rating_link": "https://gov.example.org/tickets/T20250601001/rating",
    "deadline": "2025-06-02 17:30",
    "deadline_kind": "resolve",
    "block": "yuhu/wanlou/taoyuan/b07",
    "role": "supervisor",
    "failed_attempts": "5",
    "locked_seconds": "60",
    "points": "10",
    "award": "awards/a1",
    "entry": "entries/e1",
    "appeal_link": "https://gov.example.org/points/awards/a1/appeal",
    "expire_time": "2025-07-01",
    "redemption": "redemptions/r1",
    "quantity": "1",
    "ranking": "rankings/k1",
    "link": "https://gov.example.org/tickets/T20250601001",
}

ZH: dict[str, Text] = {
    "ticket.accepted": Text("您的诉求已受理", "诉求 {{ ticket_id }} 已受理，我们会尽快处理。"),
    "ticket.rejected": Text("您的诉求未予受理", "诉求 {{ ticket_id }} 未予受理，详情请在应用中查看。"),
    "ticket.merged": Text("您的诉求已合并", "诉求 {{ ticket_id }} 已并入 {{ merged_into }} 一并处理。"),
    "ticket.dispatched": Text("您的诉求已派单", "诉求 {{ ticket_id }} 已派至责任单位处理。"),
    "ticket.resolved": Text(
        "您的诉求已办结",
        "诉求 {{ ticket_id }} 已办结，请为办理结果评价：{{ rating_link }}",
        "诉求{{ ticket_id }}已办结，请评价：{{ rating_link }}",
    ),
    "ticket.reopened": Text("您的诉求已重新办理", "诉求 {{ ticket_id }} 已重新打开办理。"),
    "ticket.assigned": Text(
        "新派单", "诉求 {{ ticket_id }}（{{ category }}，{{ node }}）已派至本单位，请及时签收。"
    ),
    "ticket.escalated": Text("诉求已上报", "诉求 {{ ticket_id }}（{{ node }}）已上报，请关注。"),
    "ticket.overdue": Text(
        "诉求超期",
        "诉求 {{ ticket_id }}（{{ node }}）{{ '签收' if deadline_kind == 'acknowledge' else '办结' }}"
        "已超过时限 {{ deadline }}。",
    ),
    "ticket.unacknowledged": Text(
        "派单未签收", "诉求 {{ ticket_id }} 未在 {{ deadline }} 前签收，请立即处理。"
    ),
    "staff.assigned": Text("岗位任命", "您已被任命为 {{ block }} 的{{ role }}。"),
    "staff.removed": Text("岗位变更", "您已不再担任 {{ block }} 的{{ role }}。"),
    "account.password_reset": Text("密码已重置", "管理员已重置您的密码，如非本人知晓请联系社区。"),
    "account.login_locked": Text(
        "登录已暂时锁定", "您的账号连续 {{ failed_attempts }} 次登录失败，{{ locked_seconds }} 秒内无法再试。"
    ),
    "points.awarded": Text("积分到账", "您获得 {{ points }} 积分。"),
    "points.penalty": Text(
        "积分扣减", "您被扣减 {{ points }} 积分。如有异议，可在 30 天内申诉：{{ appeal_link }}"
    ),
    "points.expiring": Text(
        "积分即将过期", "您有 {{ points }} 积分将于 {{ expire_time }} 过期，请及时兑换。"
    ),
    "points.redemption_ready": Text("兑换已备好", "您兑换的 {{ quantity }} 件物品已备好，请到兑换点领取。"),
    "points.list_red": Text("您已上红榜", "您已登上社区红榜，感谢您的付出！"),
    "points.list_black": Text("您已上黑榜", "您已被列入社区黑榜，详情及申诉方式请在应用中查看。"),
}

EN: dict[str, Text] = {
    "ticket.accepted": Text("Your request was accepted", "Request {{ ticket_id }} was accepted."),
    "ticket.rejected": Text("Your request was not accepted", "Request {{ ticket_id }} was not accepted."),
    "ticket.merged": Text(
        "Your request was merged", "Request {{ ticket_id }} is handled with {{ merged_into }}."
    ),
    "ticket.dispatched": Text("Your request was dispatched", "Request {{ ticket_id }} went to a unit."),
    "ticket.resolved": Text(
        "Your request was resolved", "Request {{ ticket_id }} was resolved. Rate it: {{ rating_link }}"
    ),
    "ticket.reopened": Text("Your request was reopened", "Request {{ ticket_id }} is being handled again."),
    "ticket.assigned": Text(
        "New work", "Request {{ ticket_id }} ({{ category }}, {{ node }}) was dispatched to your unit."
    ),
    "ticket.escalated": Text("Request escalated", "Request {{ ticket_id }} ({{ node }}) was escalated."),
    "ticket.overdue": Text(
        "Request overdue",
        "Request {{ ticket_id }} ({{ node }}) passed its {{ deadline_kind }} deadline {{ deadline }}.",
    ),
    "ticket.unacknowledged": Text(
        "Not acknowledged", "Request {{ ticket_id }} was not acknowledged by {{ deadline }}."
    ),
    "staff.assigned": Text("Appointed", "You are now {{ role }} of {{ block }}."),
    "staff.removed": Text("Appointment ended", "You are no longer {{ role }} of {{ block }}."),
    "account.password_reset": Text("Password reset", "An administrator reset your password."),
    "account.login_locked": Text(
        "Sign-in locked", "{{ failed_attempts }} failed sign-ins: wait {{ locked_seconds }} s."
    ),
    "points.awarded": Text("Points awarded", "You received {{ points }} points."),
    "points.penalty": Text(
        "Points deducted", "{{ points }} points were deducted. Appeal within 30 days: {{ appeal_link }}"
    ),
    "points.expiring": Text("Points expiring", "{{ points }} points expire on {{ expire_time }}."),
    "points.redemption_ready": Text("Redemption ready", "Your {{ quantity }} item(s) are ready to collect."),
    "points.list_red": Text("On the red list", "You are on the community's red list. Thank you!"),
    "points.list_black": Text(
        "On the black list", "You are on the community's black list; see the app to appeal."
    ),
}

BUILT_IN: dict[str, dict[str, Text]] = {DEFAULT_LOCALE: ZH, FALLBACK_LOCALE: EN}


def sample(kind: str) -> dict[str, str]:
    return {p: SAMPLES.get(p, p) for p in (*PARAMETERS.get(kind, ()), "link")}

"""Rendering message texts with sandboxed Jinja2 (pure: the edited texts are passed in).

Lookup for a kind, channel and locale: an edited template for that channel, else one edited for
the inbox, else the built-in text; locales fall back from the one asked for to zh-CN, then English.
A template that fails at render time is logged and the built-in text used, so a bad edit can delay
no message.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from govkit.errors import InvalidArgument
from services.notifications.texts import BUILT_IN, DEFAULT_LOCALE, FALLBACK_LOCALE, PARAMETERS, Text, sample

log = logging.getLogger(__name__)

# Edited texts: (kind, channel, locale) -> (subject, body).
Edits = Mapping[tuple[str, str, str], tuple[str, str]]

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
MAX_SOURCE = 4000


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@functools.lru_cache(maxsize=512)
def _compiled(source: str):  # type: ignore[no-untyped-def]  # jinja2.Template; cached by source text
    return _ENV.from_string(source)


def _render(source: str, params: Mapping[str, str]) -> str:
    return str(_compiled(source).render(**params)).strip()


def locales(locale: str) -> list[str]:
    return list(dict.fromkeys([locale, DEFAULT_LOCALE, FALLBACK_LOCALE]))


def built_in(kind: str, channel: str, locale: str) -> tuple[str, str] | None:
    for loc in locales(locale):
        text: Text | None = BUILT_IN.get(loc, {}).get(kind)
        if text is not None:
            return text.title, (text.sms or text.body) if channel == "sms" else text.body
    return None


def source(kind: str, channel: str, locale: str, edits: Edits) -> tuple[str, str, bool]:
    """(subject, body, customized) a message of `kind` on `channel` is rendered from."""
    for loc in locales(locale):
        for ch in dict.fromkeys([channel, "inbox"]):
            if (kind, ch, loc) in edits:
                subject, body = edits[(kind, ch, loc)]
                return subject, body, True
    found = built_in(kind, channel, locale)
    if found is None:
        return kind, kind, False
    return found[0], found[1], False


def render(kind: str, channel: str, locale: str, params: Mapping[str, str], edits: Edits) -> Rendered:
    subject, body, customized = source(kind, channel, locale, edits)
    values = {**sample_blanks(kind), **params}
    try:
        return Rendered(_render(subject, values), _render(body, values))
    except TemplateError:
        if not customized:
            raise
        log.exception("edited template failed; built-in text used", extra={"kind": kind, "channel": channel})
        subject, body, _ = source(kind, channel, locale, {})
        return Rendered(_render(subject, values), _render(body, values))


def sample_blanks(kind: str) -> dict[str, str]:
    """Every parameter a kind offers, empty: a missing fact renders as nothing, never an error."""
    return dict.fromkeys((*PARAMETERS.get(kind, ()), "link"), "")


def check(kind: str, subject: str, body: str, params: Mapping[str, str] | None = None) -> Rendered:
    """Compile and render an edit with the kind's sample (or given) values; INVALID_ARGUMENT if it
    does not, naming the field."""
    values = {**sample(kind), **(params or {})}
    out: list[str] = []
    for field, text in (("template.subject", subject), ("template.body", body)):
        if len(text) > MAX_SOURCE:
            raise InvalidArgument(f"at most {MAX_SOURCE} characters", field=field)
        try:
            out.append(_render(text, values))
        except TemplateError as exc:
            raise InvalidArgument(f"does not render: {exc}", field=field) from None
    return Rendered(out[0], out[1])

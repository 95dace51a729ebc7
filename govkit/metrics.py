"""Prometheus metrics of every component, defined once here (names: docs/metrics.md).

Each process serves them on a port of its own (GOV_METRICS_PORT; the chart uses 9464), apart from
its API, so a scrape never competes with requests and the port is never exposed through an
ingress. Unset means no metrics endpoint; 0 picks a free port (written to the log).

Series are updated where the thing happens (the gRPC interceptor, the gateway middleware, the outbox
relay, the event consumer) or read at scrape time (database pools), never copied into services.
Business counters come from the events a transaction commits (`count_committed_events`), so they
count what really happened and nothing the outbox may still retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, start_http_server

log = logging.getLogger(__name__)

# No `<name>_created` timestamp series beside every counter: they double the series for nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

# Seconds; from a cached read (~1 ms) to the upstream timeout (10 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Codes that mean the server failed, not that the caller asked for something wrong: the error
# ratio alerts on these (NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED ... are the caller's).
SERVER_ERROR_CODES = frozenset(
    {"UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED", "UNIMPLEMENTED"}
)

# --- gRPC server (govkit.grpc_server.PlatformInterceptor) -------------------------------------
grpc_requests = Counter(
    "gov_grpc_server_requests", "gRPC calls handled, by method and status code", ["method", "code"]
)
grpc_errors = Counter(
    "gov_grpc_server_errors",
    "gRPC calls that failed on the server's side (UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS, "
    "DEADLINE_EXCEEDED, UNIMPLEMENTED)",
    ["method", "code"],
)
grpc_latency = Histogram(
    "gov_grpc_server_handling_seconds",
    "time to handle a gRPC call, by method and status code",
    ["method", "code"],
    buckets=LATENCY_BUCKETS,
)

# --- HTTP (gateway middleware) ----------------------------------------------------------------
http_requests = Counter(
    "gov_http_requests", "HTTP requests, by method, route template and status", ["method", "route", "status"]
)
http_latency = Histogram(
    "gov_http_request_duration_seconds",
    "time to answer an HTTP request, by method, route template and status",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
# Server-Sent Event streams the gateway holds open (each costs one upstream gRPC stream).
sse_streams_open = Gauge("gov_sse_streams_open", "server-sent event streams open at the gateway", ["route"])

# --- outbox relay (govkit.outbox) -------------------------------------------------------------
outbox_pending = Gauge("gov_outbox_pending_rows", "events committed but not yet published", ["service"])
outbox_oldest_age = Gauge(
    "gov_outbox_oldest_age_seconds", "age of the oldest unpublished event (0 when none)", ["service"]
)
outbox_published = Counter("gov_outbox_published_events", "events published from the outbox", ["service"])

# --- event consumers (govkit.consumer) --------------------------------------------------------
consumer_lag = Gauge(
    "gov_consumer_pending_messages",
    "messages in the stream the consumer has not been delivered yet (JetStream num_pending)",
    ["consumer", "stream"],
)
consumer_ack_pending = Gauge(
    "gov_consumer_ack_pending_messages", "messages delivered but not yet acknowledged", ["consumer", "stream"]
)
consumer_events = Counter(
    "gov_consumer_events",
    "events handled, by outcome (applied, duplicate, retry, dead_letter, dead_letter_failed)",
    ["consumer", "outcome"],
)
consumer_redeliveries = Counter(
    "gov_consumer_redeliveries", "events delivered again after a failure or a timeout", ["consumer"]
)
consumer_dead_letters = Counter(
    "gov_consumer_dead_letters", "events given up on and stored in the DEADLETTER stream", ["consumer"]
)

# --- database pools (read at scrape time) -----------------------------------------------------
db_pool_in_use = Gauge("gov_db_pool_connections_in_use", "database connections checked out", ["service"])
db_pool_size = Gauge(
    "gov_db_pool_size", "database connections the pool keeps open (steady size)", ["service"]
)

# --- business ---------------------------------------------------------------------------------
events_committed = Counter("gov_events_committed", "domain events committed, by event type", ["type"])
tickets_created = Counter("gov_tickets_created", "tickets created")
tickets_overdue = Counter("gov_tickets_overdue", "ticket deadlines breached (acknowledge or resolve)")
tickets_escalated = Counter("gov_tickets_escalated", "tickets escalated to the level above")
points_entries_posted = Counter("gov_points_entries_posted", "points ledger entries posted")
notifications_sent = Counter("gov_notifications_sent", "notifications delivered, by channel", ["channel"])
notifications_failed = Counter(
    "gov_notifications_failed", "notifications that could not be delivered, by channel", ["channel"]
)

# Event type -> the business counter it also counts.
BUSINESS_EVENTS: dict[str, Counter] = {
    "tickets.v1.ticket.created": tickets_created,
    "tickets.v1.ticket.overdue": tickets_overdue,
    "tickets.v1.ticket.escalated": tickets_escalated,
    "points.v1.entry.posted": points_entries_posted,
}


def count_committed_events(types: Iterable[str]) -> None:
    """Called once a transaction that staged these outbox events has committed (govkit.db)."""
    for event_type in types:
        events_committed.labels(event_type).inc()
        business = BUSINESS_EVENTS.get(event_type)
        if business is not None:
            business.inc()


def count_notification(channel: str, *, sent: bool) -> None:
    """For the notifications service: one delivery attempt's outcome on a channel (sms, email, ...)."""
    (notifications_sent if sent else notifications_failed).labels(channel).inc()


def code_name(code: Any) -> str:
    """A status code as its name ("OK", "NOT_FOUND"), whether grpc gives the enum or its number."""
    if isinstance(code, grpc.StatusCode):
        return code.name
    if code is None:
        return "OK"
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return "UNKNOWN"


# (method, code) -> its series: `labels()` takes a lock and builds the key on every call; the
# children are looked up once. Bounded by the methods a server has times the status codes.
_grpc_series: dict[tuple[str, str], tuple[Any, Any, Any | None]] = {}


def observe_grpc(method: str, code: str, seconds: float) -> None:
    series = _grpc_series.get((method, code))
    if series is None:
        errors = grpc_errors.labels(method, code) if code in SERVER_ERROR_CODES else None
        series = _grpc_series[(method, code)] = (
            grpc_requests.labels(method, code),
            grpc_latency.labels(method, code),
            errors,
        )
    requests, latency, errors = series
    requests.inc()
    latency.observe(seconds)
    if errors is not None:
        errors.inc()


# The same for the gateway's (method, route template, status): as many as the series themselves.
_http_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    series = _http_series.get((method, route, status))
    if series is None:
        series = _http_series[(method, route, status)] = (
            http_requests.labels(method, route, str(status)),
            http_latency.labels(method, route, str(status)),
        )
    requests, latency = series
    requests.inc()
    latency.observe(seconds)


def watch_pool(service: str, in_use: Callable[[], float], size: Callable[[], float]) -> None:
    """Pool gauges read when scraped."""
    db_pool_in_use.labels(service).set_function(in_use)
    db_pool_size.labels(service).set_function(size)


def serve(port: int | None, host: str = "0.0.0.0") -> int | None:  # noqa: S104 - scraped from other pods
    """Start the /metrics endpoint in a thread of its own; returns its port (None: not served)."""
    if port is None:
        return None
    try:
        server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        raise SystemExit(f"cannot serve metrics on {host}:{port} (GOV_METRICS_PORT): {exc}") from None
    bound: int = server.server_port
    log.info("metrics served", extra={"metrics_port": bound})
    return bound


class Stopwatch:
    """Seconds since it was made (monotonic)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

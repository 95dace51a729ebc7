"""gRPC server bootstrap shared by every service.

Health (NOT_SERVING until the database is reachable; a NATS outage leaves it SERVING, as the
outbox holds events), reflection, caller authentication from a verified bearer token for calls
of every kind, domain-error mapping, retry of transactions that lost a deadlock, the outbox
relay, event consumers, housekeeping, and a graceful SIGTERM drain: stop accepting, finish
in-flight calls, flush the outbox, drain NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import grpc
import uvloop
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from opentelemetry import trace

from govkit import bus, channels, heap, logs, metrics, streams, tls
from govkit.auth import revocations
from govkit.auth.principal import Principal, reset_principal, set_principal
from govkit.auth.tokens import GrpcJwksSource, TokenVerifier, bearer_token
from govkit.config import ServiceSettings
from govkit.consumer import ConsumerSpec, EventConsumer
from govkit.db import Database, database_unavailable, retry_conflicts
from govkit.errors import DomainError
from govkit.events import DEAD_LETTER_STREAM, stream_name
from govkit.housekeeping import Housekeeping
from govkit.logs import setup_logging
from govkit.outbox import OutboxRelay
from govkit.tables import PlatformTables
from govkit.telemetry import setup_telemetry, shutdown_telemetry

log = logging.getLogger(__name__)

RETRY_AFTER_KEY = "retry-after"
# What a request id passed on by the gateway looks like (anything else is not logged).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Health entry that is SERVING while the process runs, whatever its dependencies do: for
# liveness probes, which must not restart a healthy process during a database outage.
LIVENESS_SERVICE = "liveness"
# How often a service that misses a stream looks again.
STREAM_CHECK_SECONDS = 2.0
# How long a starting service waits for NATS to say whether its streams exist before it serves anyway.
STREAM_CHECK_GRACE_SECONDS = 3.0

# The context every servicer method receives. Request and response types stay Any: the
# generated servicer base classes are untyped, and the methods only abort and read metadata.
# (A string: grpc's classes are not subscriptable at runtime.)
ServicerContext: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


# A status's trailers are one header block, and gRPC clients refuse a received block over 8 KiB at
# random, the more often the larger it is, and every one over 16 KiB (the defaults of
# grpc.max_metadata_size and grpc.absolute_max_metadata_size): the call then fails on the client
# with RESOURCE_EXHAUSTED, "received metadata size exceeds soft limit", whatever the server said.
# An import's hundred bad rows came to 8.4 KiB: about 3% of those answers reached the gateway as a
# 429 instead of the 400. So the trailers stay under this, a kilobyte short of the soft limit.
TRAILERS_BUDGET = 7 * 1024
# How a receiver counts an entry: its name and value (a -bin value decoded, grpc-message as sent,
# percent-encoded) and HPACK's 32 bytes per entry.
_ENTRY_OVERHEAD = 32
# The rest of an answer sent before any response message (trailers-only): :status, content-type and
# grpc-status, as grpc counts them.
_FIXED_ENTRIES_SIZE = 42 + 60 + 44
# Longest grpc-message sent, percent-encoded: a message quoting a long value leaves room for details.
MAX_MESSAGE_BYTES = 1024
_DETAILS_KEY = "grpc-status-details-bin"


def _message_bytes(char: str) -> int:
    """What one character of grpc-message takes on the wire: printable ASCII but `%` as it is,
    every other byte of its UTF-8 percent-encoded."""
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in char.encode())


def bounded_message(message: str) -> str:
    """The message, cut (marked with an ellipsis) where it would pass MAX_MESSAGE_BYTES on the wire."""
    if sum(map(_message_bytes, message)) <= MAX_MESSAGE_BYTES:
        return message
    room = MAX_MESSAGE_BYTES - _message_bytes("…")
    for end, char in enumerate(message):
        room -= _message_bytes(char)
        if room < 0:
            return message[:end] + "…"
    return message  # not reached: the whole message was found too long


def _status(exc: DomainError, message: str, pairs: list[tuple[str, str]]) -> bytes:
    status = status_pb2.Status(code=exc.code.value[0], message=message)
    if pairs:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in pairs
                ]
            )
        )
        status.details.append(detail)
    raw: bytes = status.SerializeToString()  # google.rpc has no stubs: typed here
    return raw


def _status_details(exc: DomainError, message: str, budget: int) -> bytes:
    """google.rpc.Status with a BadRequest naming the fields, so clients can point at them: as many
    of the (field, problem) pairs as fit in `budget` bytes, the first ones (an import's first bad
    rows; its message has the count)."""
    pairs = ([(exc.field, exc.message)] if exc.field else []) + exc.violations
    fits, beyond = 0, len(pairs) + 1  # the longest prefix that fits: at least `fits`, under `beyond`
    while beyond - fits > 1:
        middle = (fits + beyond) // 2
        if len(_status(exc, message, pairs[:middle])) <= budget:
            fits = middle
        else:
            beyond = middle
    return _status(exc, message, pairs[:fits])


async def abort_with(context: ServicerContext, exc: DomainError) -> None:
    message = bounded_message(str(exc))
    trailers: list[tuple[str, str | bytes]] = []
    if exc.retry_after is not None:
        trailers.append((RETRY_AFTER_KEY, str(exc.retry_after)))
    used = _FIXED_ENTRIES_SIZE + len("grpc-message") + sum(map(_message_bytes, message)) + _ENTRY_OVERHEAD
    used += sum(len(key) + len(value) + _ENTRY_OVERHEAD for key, value in trailers)
    budget = TRAILERS_BUDGET - used - len(_DETAILS_KEY) - _ENTRY_OVERHEAD
    trailers.insert(0, (_DETAILS_KEY, _status_details(exc, message, budget)))
    await context.abort(exc.code, message, trailing_metadata=tuple(trailers))


# Open to every caller on every service: probes and tooling must work without a token.
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class PlatformInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call that is not public, of all four kinds, and maps domain errors to
    status codes.

    The caller's identity comes only from a bearer token this service verifies itself; any other
    metadata claiming an identity is ignored. A method of any kind (unary or streaming, either way)
    needs a verified token unless it is listed public: nothing passes by default.
    """

    def __init__(self, verifier: TokenVerifier, public_methods: Iterable[str]) -> None:
        self.verifier = verifier
        self.public = frozenset(public_methods)

    async def authenticate(self, method: str, metadata: dict[str, str]) -> Principal | None:
        """The verified caller, or None for a public method; raises Unauthenticated."""
        if method in self.public:
            return None
        return await self.verifier.verify(bearer_token(metadata))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        if method.startswith(OPEN_PREFIXES):
            return handler
        metadata = {key: value for key, value in details.invocation_metadata or () if isinstance(value, str)}
        guard = _CallGuard(self, method, metadata)
        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(guard.unary(handler.unary_unary, retry=True), **codecs)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(guard.streaming(handler.unary_stream), **codecs)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(guard.unary(handler.stream_unary), **codecs)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(guard.streaming(handler.stream_stream), **codecs)
        return None  # a handler of no known kind is not served (UNIMPLEMENTED), never passed through


class _CallGuard:
    """Wraps one call's behaviour: authenticate first, then run it as the verified caller."""

    def __init__(self, interceptor: PlatformInterceptor, method: str, metadata: dict[str, str]) -> None:
        self.interceptor = interceptor
        self.method = method
        self.metadata = metadata

    async def _enter(self, context: ServicerContext) -> contextvars.Token[Principal | None]:
        # Each call runs in a task of its own: the request id stays with this call's log lines.
        incoming = self.metadata.get("x-request-id", "")
        if _REQUEST_ID.match(incoming):
            logs.request_id.set(incoming)
            trace.get_current_span().set_attribute("gov.request_id", incoming)
        try:
            principal = await self.interceptor.authenticate(self.method, self.metadata)
        except DomainError as exc:
            await abort_with(context, exc)
        return set_principal(principal)

    def _observe(self, context: ServicerContext, started: float, outcome: BaseException | None) -> None:
        """One call in the request, error and latency series (govkit.metrics)."""
        if isinstance(outcome, asyncio.CancelledError | GeneratorExit):
            code = "CANCELLED"
        else:
            code = metrics.code_name(context.code())
            if code == "OK" and outcome is not None and not isinstance(outcome, grpc.aio.AbortError):
                code = "UNKNOWN"
        metrics.observe_grpc(self.method, code, time.perf_counter() - started)

    async def _failed(self, context: ServicerContext, exc: Exception) -> None:
        if isinstance(exc, DomainError):
            await abort_with(context, exc)
        if database_unavailable(exc):
            # The database went away under this call (restart, failover; the pool has dropped the
            # dead connections) or refused a new one (too many clients): the client's retry may pass.
            log.warning("database unavailable in %s: %s", self.method, exc.__class__.__name__)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; try again")
        log.exception("unhandled error in %s", self.method)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    def unary(self, inner: Callable[..., Awaitable[Any]], *, retry: bool = False) -> Callable[..., Any]:
        """For methods that answer once (unary-unary, stream-unary)."""

        async def behavior(request: Any, context: ServicerContext) -> Any:
            started = time.perf_counter()
            outcome: BaseException | None = None
            try:
                token = await self._enter(context)
                try:
                    if retry:
                        # A request message can be handled again; a request stream has been consumed.
                        return await retry_conflicts(lambda: inner(request, context))
                    return await inner(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._failed(context, exc)
                finally:
                    reset_principal(token)
            except BaseException as exc:
                outcome = exc
                raise
            finally:
                self._observe(context, started, outcome)

        return behavior

    def streaming(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        """For methods that answer with a stream (unary-stream, stream-stream): written as an async
        generator, or as a coroutine that writes with `context.write`."""
        if not inspect.isasyncgenfunction(inner):
            return self.unary(inner)

        async def behavior(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            outcome: BaseException | None = None
            try:
                token = await self._enter(context)
                try:
                    async for response in inner(request, context):
                        yield response
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await self._failed(context, exc)
                finally:
                    # A stream cancelled by its client is closed from another context; its own ends
                    # with it.
                    with contextlib.suppress(ValueError):
                        reset_principal(token)
            except BaseException as exc:
                outcome = exc
                raise
            finally:
                self._observe(context, started, outcome)

        return behavior


@dataclass
class ServiceDefinition:
    """What a service contributes to the shared runtime."""

    name: str  # also the event domain: subjects `<name>.v1.*`
    settings: ServiceSettings
    tables: PlatformTables
    # Registers servicers on the server; receives the runtime for its db, verifier, nats.
    register: Callable[[grpc.aio.Server, ServiceRuntime], None]
    service_names: Sequence[str]  # full names, for reflection and health
    public_methods: Sequence[str] = ()
    consumers: Sequence[ConsumerSpec] = ()
    make_verifier: Callable[[ServiceRuntime], TokenVerifier] | None = None
    on_start: Callable[[ServiceRuntime], Awaitable[None]] | None = None
    # Largest request accepted; services taking bulk files raise it.
    max_request_bytes: int = 8 * 1024 * 1024
    background: list[Callable[[ServiceRuntime], Coroutine[Any, Any, None]]] = field(default_factory=list)


def identity_verifier(issuer: str) -> Callable[[ServiceRuntime], TokenVerifier]:
    """How every service but identity checks tokens: with the keys identity publishes."""

    def make(runtime: ServiceRuntime) -> TokenVerifier:
        if runtime.identity_channel is None:
            raise RuntimeError("GOV_IDENTITY_ADDR is required to verify tokens")
        return TokenVerifier(GrpcJwksSource(runtime.identity_channel), issuer=issuer)

    return make


class ServiceRuntime:
    def __init__(self, definition: ServiceDefinition) -> None:
        self.definition = definition
        self.settings = definition.settings
        self.db = Database(
            self.settings.database_url,
            pool_size=self.settings.db_pool_size,
            ssl_ca_file=self.settings.tls_postgres_ca_file,
            forbid_nested=self.settings.db_forbid_nested_connections,
        )
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        # Runs from the start, NATS or not: events wait in the outbox and its gauges show the backlog.
        self.relay = OutboxRelay(self.db, definition.tables.outbox, name=definition.name)
        self.housekeeping = Housekeeping(self.db, definition.tables, self.settings)
        self.consumers: list[EventConsumer] = []
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        # Plaintext health only (GOV_GRPC_HEALTH_PORT), beside a TLS server.
        self.health_server: grpc.aio.Server | None = None
        self.health_port: int | None = None
        self.identity_channel: grpc.aio.Channel | None = None
        self.verifier: TokenVerifier | None = None
        self.channels: list[grpc.aio.Channel] = []
        self.port = 0
        self.metrics_port: int | None = None
        # Streams NATS said do not exist (unknown while NATS is away, which leaves readiness alone).
        self.missing_streams: list[str] = []
        # Not ready before the first look at the streams, unless NATS could not be asked (an
        # error, or no answer within STREAM_CHECK_GRACE_SECONDS of the start).
        self._streams_known = False
        self._nats_away = False
        self._started_at = time.monotonic()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()

    async def start(self) -> None:
        d = self.definition
        if self.settings.identity_addr:
            self.identity_channel = self.channel(self.settings.identity_addr)
        if d.make_verifier is None:
            raise RuntimeError("a service must say how it verifies tokens")
        self.verifier = d.make_verifier(self)
        self.server = grpc.aio.server(
            interceptors=[PlatformInterceptor(self.verifier, d.public_methods)],
            options=[("grpc.max_receive_message_length", d.max_request_bytes), *self._connection_age()],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        d.register(self.server, self)
        reflection.enable_server_reflection(
            (*d.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        credentials = tls.server_credentials(self.settings)
        if credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, credentials)
        if self.port == 0:
            raise SystemExit(f"cannot bind gRPC port {self.settings.grpc_port}")
        if self.settings.health_port is not None:
            self.health_server = self._health_only_server(self.settings.health_port)
        metrics.watch_pool(d.name, self.db.pool_in_use, self.db.pool_size)
        self.metrics_port = metrics.serve(self.settings.metrics_port, self.settings.metrics_host)
        await self._set_serving(False)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        log.info(
            "gRPC server listening",
            extra={
                "port": self.port,
                "tls": credentials is not None,
                "health_port": self.health_port,
                "service": d.name,
            },
        )
        self._tasks.append(asyncio.create_task(self._connect_bus(), name="bus"))
        self._tasks.append(asyncio.create_task(self._watch_health(), name="health"))
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        self._tasks.append(asyncio.create_task(self.housekeeping.run(), name="housekeeping"))
        for job in d.background:
            self._tasks.append(asyncio.create_task(job(self), name=getattr(job, "__name__", "job")))
        heap.freeze_startup_heap()

    def _health_only_server(self, port: int) -> grpc.aio.Server:
        """grpc.health.v1 alone, in plaintext: Kubernetes' gRPC probes do not speak TLS. It tells
        what /grpc.health.v1.Health/Check on the TLS port would (the same servicer), nothing else."""
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        self.health_port = server.add_insecure_port(f"{self.settings.grpc_host}:{port}")
        if self.health_port == 0:
            raise SystemExit(f"cannot bind gRPC health port {port} (GOV_GRPC_HEALTH_PORT)")
        return server

    async def _connect_bus(self) -> None:
        d = self.definition
        while self.nc is None and not self._stop.is_set():
            try:
                self.nc = await bus.connect(
                    self.settings.nats_url, f"gov-{d.name}", ca_file=self.settings.tls_nats_ca_file
                )
            except Exception as exc:
                self._nats_away = True
                log.warning("NATS not reachable yet; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1)
        if self.nc is None:
            return
        self.js = self.nc.jetstream()
        if self.verifier is not None:  # revoked tokens stop working within moments, not at expiry
            feed = revocations.follow(self.nc, self.verifier.revocations)
            self._tasks.append(asyncio.create_task(feed, name="revocations"))
        await self._wait_for_streams()
        if self._stop.is_set():
            return
        self.relay.attach(self.js)
        for spec in d.consumers:
            consumer = EventConsumer(spec, self.js, self.db, d.tables)
            self.consumers.append(consumer)
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{spec.durable}"))
        if d.on_start is not None:
            await d.on_start(self)

    def _connection_age(self) -> list[tuple[str, int]]:
        """Connections end after an age, so clients re-resolve and reach replicas added since."""
        age = self.settings.grpc_max_connection_age_seconds
        if age <= 0:
            return []
        grace = self.settings.grpc_max_connection_age_grace_seconds
        return [
            ("grpc.max_connection_age_ms", int(age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(grace * 1000)),
        ]

    def required_streams(self) -> list[str]:
        """The streams this service publishes to and consumes from (and dead-letters into)."""
        d = self.definition
        names = [stream_name(d.name), *(spec.stream for spec in d.consumers)]
        if d.consumers:
            names.append(DEAD_LETTER_STREAM)
        return list(dict.fromkeys(names))

    async def _wait_for_streams(self) -> None:
        """Until every stream this service needs exists. Streams belong to the deployment
        (`python -m govkit.streams apply`); a service never creates or changes one, and stays
        NOT_SERVING, saying why, while one is missing."""
        assert self.js is not None
        said: list[str] = []
        while not self._stop.is_set():
            try:
                absent = await streams.missing(self.js, self.required_streams())
            except Exception as exc:  # NATS away: not a missing stream; readiness stays as it is
                log.warning("cannot check JetStream streams yet; retrying", extra={"error": repr(exc)})
                self._nats_away = True
                absent = None
            if absent is not None:
                self._streams_known = True
            if absent == []:
                if self.missing_streams:
                    log.info("JetStream streams now exist", extra={"streams": self.missing_streams})
                self.missing_streams = []
                return
            if absent is not None:
                self.missing_streams = absent
                if absent != said:
                    said = absent
                    log.error(
                        "JetStream stream(s) %s missing; not ready until they exist. Create them with "
                        "`%s` (the Helm chart's streams Job runs it)",
                        ", ".join(absent),
                        streams.APPLY_COMMAND,
                        extra={"streams": absent},
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), STREAM_CHECK_SECONDS)

    def channel(self, address: str, **options: Any) -> grpc.aio.Channel:
        """A channel to another service (govkit.channels), closed when this service stops."""
        made = channels.to_peer(address, self.settings, **options)
        self.channels.append(made)
        return made

    async def _dependencies_ok(self) -> bool:
        """Ready when the database answers and no stream it needs is known to be missing. NATS is
        not asked: without it requests still succeed and their events wait in the outbox (the
        relay's pending and lag gauges show the backlog), so a broker outage must not take the
        service out of its load balancer. A missing stream is different: it is a deployment
        mistake that no wait fixes, and the events would never leave the outbox."""
        if self.missing_streams:
            return False
        if not (self._streams_known or self._nats_away):
            if time.monotonic() - self._started_at < STREAM_CHECK_GRACE_SECONDS:
                return False
            self._nats_away = True  # NATS does not answer: serve, the outbox keeps the events
        try:
            await asyncio.wait_for(self.db.ping(), 3)
        except Exception:
            return False
        return True

    async def _watch_health(self) -> None:
        serving = False
        while not self._stop.is_set():
            ok = await self._dependencies_ok()
            if ok != serving:
                serving = ok
                await self._set_serving(ok)
                log.info("health changed", extra={"serving": ok})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0 if not serving else 5.0)

    async def _set_serving(self, ok: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set("", status)
        for name in self.definition.service_names:
            await self.health.set(name, status)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()
        await self.health.enter_graceful_shutdown()
        if self.server is not None:
            # Stops accepting at once; in-flight calls get the grace period to finish.
            await self.server.stop(self.settings.shutdown_grace_seconds)
        if self.health_server is not None:
            await self.health_server.stop(0)
        for consumer in self.consumers:
            consumer.stop()
        await self.relay.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        for channel in self.channels:
            await channel.close()
        await self.db.close()
        log.info("stopped", extra={"service": self.definition.name})


def run(definition: ServiceDefinition) -> None:
    """Serve on the event loop the settings choose (GOV_EVENT_LOOP): uvloop unless asyncio is asked for."""
    factory = uvloop.new_event_loop if definition.settings.event_loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(definition))


async def serve(definition: ServiceDefinition) -> None:
    """Run a service until SIGTERM or SIGINT, then drain."""
    setup_logging(definition.name, definition.settings.log_level)
    setup_telemetry(definition.name)
    runtime = ServiceRuntime(definition)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.request_stop)
    await runtime.start()
    try:
        await runtime.wait()
    finally:
        log.info("shutting down", extra={"service": definition.name})
        await runtime.stop()
        shutdown_telemetry()

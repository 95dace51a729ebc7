"""gRPC server bootstrap shared by every service.

Health (NOT_SERVING until the database and NATS are reachable), reflection, caller
authentication from a verified bearer token, domain-error mapping, the outbox relay,
event consumers, and a graceful SIGTERM drain: stop accepting, finish in-flight calls,
flush the outbox, drain NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from govkit import bus
from govkit.auth import revocations
from govkit.auth.principal import Principal, reset_principal, set_principal
from govkit.auth.tokens import GrpcJwksSource, TokenVerifier, bearer_token
from govkit.config import ServiceSettings
from govkit.consumer import ConsumerSpec, EventConsumer
from govkit.db import Database
from govkit.errors import DomainError
from govkit.logs import setup_logging
from govkit.outbox import OutboxRelay
from govkit.tables import PlatformTables
from govkit.telemetry import setup_telemetry, shutdown_telemetry

log = logging.getLogger(__name__)

RETRY_AFTER_KEY = "retry-after"
# Health entry that is SERVING while the process runs, whatever its dependencies do: for
# liveness probes, which must not restart a healthy process during a database outage.
LIVENESS_SERVICE = "liveness"


def _status_details(exc: DomainError) -> bytes:
    """google.rpc.Status with a BadRequest naming the field, so clients can point at it."""
    status = status_pb2.Status(code=exc.code.value[0], message=str(exc))
    pairs = ([(exc.field, exc.message)] if exc.field else []) + exc.violations
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
    return status.SerializeToString()


async def abort_with(context: grpc.aio.ServicerContext, exc: DomainError) -> None:
    trailers: list[tuple[str, str | bytes]] = [("grpc-status-details-bin", _status_details(exc))]
    if exc.retry_after is not None:
        trailers.append((RETRY_AFTER_KEY, str(exc.retry_after)))
    await context.abort(exc.code, str(exc), trailing_metadata=tuple(trailers))


class PlatformInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every non-public unary call and maps domain errors to status codes.

    The caller's identity comes only from a bearer token this service verifies itself;
    any other metadata claiming an identity is ignored.
    """

    def __init__(self, verifier: TokenVerifier, public_methods: Iterable[str]) -> None:
        self.verifier = verifier
        self.public = frozenset(public_methods)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        if method.startswith(("/grpc.health.v1.", "/grpc.reflection.")):
            return handler
        if handler.unary_unary is None:  # services expose unary methods only
            return handler
        metadata = {m.key: m.value for m in details.invocation_metadata or () if isinstance(m.value, str)}
        public = method in self.public
        inner = handler.unary_unary
        verifier = self.verifier

        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal: Principal | None = None
            try:
                if not public:
                    principal = await verifier.verify(bearer_token(metadata))
            except DomainError as exc:
                await abort_with(context, exc)
            token = set_principal(principal)
            try:
                return await inner(request, context)
            except DomainError as exc:
                await abort_with(context, exc)
            except grpc.aio.AbortError:
                raise
            except Exception:
                log.exception("unhandled error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                reset_principal(token)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


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
    background: list[Callable[[ServiceRuntime], Awaitable[None]]] = field(default_factory=list)


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
        self.db = Database(self.settings.database_url)
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[EventConsumer] = []
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.identity_channel: grpc.aio.Channel | None = None
        self.verifier: TokenVerifier | None = None
        self.port = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()

    async def start(self) -> None:
        d = self.definition
        if self.settings.identity_addr:
            self.identity_channel = grpc.aio.insecure_channel(self.settings.identity_addr)
        if d.make_verifier is None:
            raise RuntimeError("a service must say how it verifies tokens")
        self.verifier = d.make_verifier(self)
        self.server = grpc.aio.server(
            interceptors=[PlatformInterceptor(self.verifier, d.public_methods)],
            options=[("grpc.max_receive_message_length", d.max_request_bytes)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        d.register(self.server, self)
        reflection.enable_server_reflection(
            (*d.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{self.settings.grpc_host}:{self.settings.grpc_port}")
        if self.port == 0:
            raise SystemExit(f"cannot bind gRPC port {self.settings.grpc_port}")
        await self._set_serving(False)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        log.info("gRPC server listening", extra={"port": self.port, "service": d.name})
        self._tasks.append(asyncio.create_task(self._connect_bus(), name="bus"))
        self._tasks.append(asyncio.create_task(self._watch_health(), name="health"))
        for job in d.background:
            self._tasks.append(asyncio.create_task(job(self), name=getattr(job, "__name__", "job")))

    async def _connect_bus(self) -> None:
        d = self.definition
        while self.nc is None and not self._stop.is_set():
            try:
                self.nc = await bus.connect(self.settings.nats_url, f"gov-{d.name}")
            except Exception as exc:
                log.warning("NATS not reachable yet; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1)
        if self.nc is None:
            return
        self.js = self.nc.jetstream()
        if self.verifier is not None:  # revoked tokens stop working within moments, not at expiry
            feed = revocations.follow(self.nc, self.verifier.revocations)
            self._tasks.append(asyncio.create_task(feed, name="revocations"))
        while True:
            try:
                await bus.ensure_domain_stream(self.js, d.name)
                await bus.ensure_dead_letter_stream(self.js)
                # Streams this service consumes from, so it can start before their owners do.
                for spec in d.consumers:
                    await bus.ensure_domain_stream(self.js, spec.stream.lower())
                break
            except Exception as exc:
                log.warning("cannot create streams yet; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1)
        self.relay = OutboxRelay(self.db, d.tables.outbox, self.js)
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for spec in d.consumers:
            consumer = EventConsumer(spec, self.js, self.db, d.tables)
            self.consumers.append(consumer)
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{spec.durable}"))
        if d.on_start is not None:
            await d.on_start(self)

    async def _dependencies_ok(self) -> bool:
        try:
            await asyncio.wait_for(self.db.ping(), 3)
        except Exception:
            return False
        return self.nc is not None and self.nc.is_connected and self.relay is not None

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
        for consumer in self.consumers:
            consumer.stop()
        if self.relay is not None:
            await self.relay.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        if self.identity_channel is not None:
            await self.identity_channel.close()
        await self.db.close()
        log.info("stopped", extra={"service": self.definition.name})


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

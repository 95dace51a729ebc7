"""`make run`'s single-process host (development only): every service and the gateway in one
interpreter and one event loop, each on its own gRPC port and database as in production.

Production runs one service per pod, and so do the tests and benchmarks (govkit.devstack.Stack);
this exists because seven idle interpreters cost a laptop ~650 MiB. Sharing a process changes:

- settings: each component's are read from its own environment mapping (`settings_from`), never
  from os.environ, so no component sees another's variables;
- metrics: one Prometheus registry per process; every series already names its service (gRPC
  method, `service`/`consumer` label), so the host serves them all on one endpoint;
- logs: each component's lines go to .data/logs/<component>.log, as from its own process, named by
  a context variable set while the component starts (its tasks and gRPC handlers inherit it);
- tracing: one tracer provider, so one service.name (OTEL_SERVICE_NAME, default gov-devhost); a
  span's rpc.service still says which service served it;
- signals: the host alone handles SIGINT/SIGTERM (uvicorn's own capture is off) and stops the
  gateway first, then the services in reverse start order.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import typing
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from gateway.__main__ import GatewayServer, build_server
from gateway.routes.blocks import UNTRACED_CLIENT_METHODS
from gateway.settings import GatewaySettings
from govkit import config, metrics, telemetry
from govkit.grpc_server import ServiceRuntime
from govkit.logs import JsonFormatter, setup_logging

log = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseSettings)

HOST = "devhost"
# How long a component may take to start serving (as govkit.devstack waits for a process).
STARTUP_SECONDS = 30
# The component whose code is running; tasks copy it when they are created.
component: ContextVar[str] = ContextVar("gov_devhost_component", default=HOST)


class _MappingEnvSource(EnvSettingsSource):
    """Environment variables from a mapping instead of os.environ (pydantic-settings reads
    them in `_load_env_vars`, which this pinned version lets a subclass replace)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def settings_from(settings_type: type[S], environ: Mapping[str, str]) -> S:
    """`settings_type` from `environ` alone, validated as govkit.config.load does (exit 2 naming the
    variable)."""

    def sources(
        cls: type[BaseSettings], /, settings_cls: type[BaseSettings], **_: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_MappingEnvSource(settings_cls, environ),)

    reading = type(
        settings_type.__name__, (settings_type,), {"settings_customise_sources": classmethod(sources)}
    )
    return config.load(typing.cast(type[S], reading))


class _LogFiles(logging.Handler):
    """One JSON log file per component, chosen by `component` when a line is written."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.files: dict[str, logging.Handler] = {}

    def emit(self, record: logging.LogRecord) -> None:
        name = component.get()
        handler = self.files.get(name)
        if handler is None:
            handler = self.files[name] = logging.FileHandler(self.folder / f"{name}.log", encoding="utf-8")
            handler.setFormatter(JsonFormatter(name))
        handler.handle(record)

    def close(self) -> None:
        for handler in self.files.values():
            handler.close()
        super().close()


@contextlib.contextmanager
def _as(name: str) -> Iterator[None]:
    token = component.set(name)
    try:
        yield
    finally:
        component.reset(token)


class _HostedGateway(GatewayServer):
    """The gateway's server without signal handlers of its own: the host stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DevHost:
    """Starts components one at a time (the caller orders them) and stops them all."""

    def __init__(self, log_dir: Path, log_level: str = "INFO") -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(HOST, log_level)  # levels of the noisy libraries; the handler is replaced:
        logging.getLogger().handlers[:] = [_LogFiles(log_dir)]
        telemetry.setup_telemetry(HOST, untraced_client_methods=UNTRACED_CLIENT_METHODS)
        self.runtimes: list[ServiceRuntime] = []
        self.gateway: GatewayServer | None = None
        self._gateway_task: asyncio.Task[None] | None = None
        self.failed = asyncio.Event()

    def serve_metrics(self, port: int, host: str = "127.0.0.1") -> int | None:
        """The process's one /metrics endpoint (every component's series)."""
        return metrics.serve(port, host)

    async def start_service(self, name: str, environ: Mapping[str, str]) -> ServiceRuntime:
        """Start services/<name> as `python -m services.<name> serve` would with `environ`, and
        return once it is SERVING."""
        module: Any = importlib.import_module(f"services.{name}.__main__")
        settings_type = typing.get_type_hints(module.definition)["settings"]
        runtime = ServiceRuntime(module.definition(settings_from(settings_type, environ)))
        self.runtimes.append(runtime)
        with _as(name):
            await _started(runtime.start(), name)
        await _wait_serving(f"127.0.0.1:{runtime.port}")
        return runtime

    async def start_gateway(self, environ: Mapping[str, str]) -> str:
        """Start the gateway with `environ` and return its URL once /readyz answers 200."""
        settings = settings_from(GatewaySettings, environ)
        with _as("gateway"):
            server = self.gateway = build_server(settings, _HostedGateway)
            self._gateway_task = asyncio.create_task(self._serve_gateway(server))
        url = f"http://{settings.http_host}:{settings.http_port}"
        async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(STARTUP_SECONDS):
            while True:
                if self._gateway_task.done():
                    raise RuntimeError("the gateway stopped while starting (see its log)")
                with contextlib.suppress(httpx.HTTPError):
                    if server.started and (await client.get(f"{url}/readyz")).status_code == 200:
                        return url
                await asyncio.sleep(0.1)

    async def _serve_gateway(self, server: GatewayServer) -> None:
        try:
            await _started(server.serve(), "gateway")
        finally:
            self.failed.set()  # it only ends on its own when it could not start or crashed

    async def stop(self) -> None:
        """Gateway first (it ends open SSE streams), then the services in reverse start order."""
        if self.gateway is not None and self._gateway_task is not None:
            self.gateway.handle_exit(signal.SIGINT, None)  # as `python -m gateway` on Ctrl-C
            with contextlib.suppress(Exception):
                await self._gateway_task
        for runtime in reversed(self.runtimes):
            with _as(runtime.definition.name):
                await runtime.stop()
        telemetry.shutdown_telemetry()


async def _started(start: typing.Awaitable[None], name: str) -> None:
    """`start` with SystemExit (a port taken: uvicorn and the runtime exit) turned into an error,
    which the loop does not let escape from a task."""
    try:
        await start
    except SystemExit as exc:
        raise RuntimeError(f"{name} could not start ({exc})") from None


async def _wait_serving(addr: str) -> None:
    request = health_pb2.HealthCheckRequest()
    async with grpc.aio.insecure_channel(addr) as channel, asyncio.timeout(STARTUP_SECONDS):
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            with contextlib.suppress(grpc.RpcError):
                reply = await stub.Check(request, timeout=1)  # type: ignore[attr-defined]
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)

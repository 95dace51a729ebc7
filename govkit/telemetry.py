"""OpenTelemetry set-up, driven only by the standard OTEL_* environment variables.

OTEL_SDK_DISABLED=true turns it off; OTEL_TRACES_EXPORTER picks `otlp` (default when
OTEL_EXPORTER_OTLP_ENDPOINT is set), `console` or `none`; OTEL_SERVICE_NAME names the
component (defaulted to the component name). Everything else (sampler, resource
attributes, endpoint, headers) is read by the SDK itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

_configured = False


def _disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def enabled() -> bool:
    return _configured


def _exporter_name() -> str:
    explicit = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if explicit:
        return explicit.split(",")[0]
    return "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"


def setup_telemetry(component: str, *, untraced_client_methods: Sequence[str] = ()) -> None:
    """Install the tracer provider and instrument gRPC; idempotent.

    `untraced_client_methods` (full names, `/pkg.Service/Method`) are left out of the gRPC client
    instrumentation: its aio interceptor waits for a client-streaming call to finish before it hands
    the call back, so a caller that writes requests one at a time, or waits for the initial metadata
    mid-call, would wait forever. Callers of those methods inject the trace context themselves."""
    global _configured
    if _configured or _disabled():
        return
    _configured = True
    os.environ.setdefault("OTEL_SERVICE_NAME", f"gov-{component}")
    provider = TracerProvider(resource=Resource.create())
    exporter_name = _exporter_name()
    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter_name == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)

    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )

    skipped = [filters.full_method_name(m) for m in untraced_client_methods]
    traced = filters.negate(filters.any_of(*skipped)) if skipped else None
    GrpcAioInstrumentorServer().instrument()
    GrpcAioInstrumentorClient(filter_=traced).instrument()


def shutdown_telemetry() -> None:
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


tracer = trace.get_tracer("govkit")
meter = metrics.get_meter("govkit")

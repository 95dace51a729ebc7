"""A minimal OTLP/gRPC trace collector for tests: keeps every exported span in memory.

The processes under test export with the SDK's real OTLP exporter (OTEL_TRACES_EXPORTER=otlp,
OTEL_EXPORTER_OTLP_ENDPOINT pointing here); nothing of theirs is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass(frozen=True)
class CollectedSpan:
    service: str
    span: trace_pb2.Span
    scope: str = ""  # the instrumentation that made it

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.span.parent_span_id.hex()

    def attribute(self, key: str) -> Any:
        for kv in self.span.attributes:
            if kv.key == key:
                return getattr(kv.value, kv.value.WhichOneof("value"))
        return None


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[CollectedSpan] = []
        self.server: grpc.aio.Server | None = None

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                self.spans.extend(CollectedSpan(service, span, scope) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self, port: int) -> None:
        self.server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{port}")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)

"""The stack's ceiling: a bare FastAPI endpoint making one grpc.aio call to a server answering from memory.

    python bench/_ceiling_echo.py grpc PORT             the gRPC server (grpc.health.v1, answers from memory)
    python bench/_ceiling_echo.py http PORT GRPC_ADDR   the FastAPI app on uvicorn (uvloop + httptools)

Nothing of the platform is in the path: no authentication, no database, no logging, no tracing. What
is left is what every platform request pays at least: HTTP parsing, FastAPI's routing and JSON, one
grpc.aio round trip over a long-lived HTTP/2 channel. bench/ceiling.py measures the platform's paths
as ratios of this one, in the same run.
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class Echo(health_pb2_grpc.HealthServicer):
    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def serve_grpc(port: int) -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def serve_http(port: int, grpc_addr: str) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    state: dict[str, health_pb2_grpc.HealthStub] = {}

    @app.get("/echo")
    async def echo() -> dict[str, str]:
        stub = state.get("stub")
        if stub is None:  # made on first use, inside uvicorn's event loop
            stub = state["stub"] = health_pb2_grpc.HealthStub(grpc.aio.insecure_channel(grpc_addr))
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""))
        return {"status": health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "grpc":
        asyncio.run(serve_grpc(port))
    else:
        serve_http(port, sys.argv[3])

"""Liveness, readiness and the public key set."""

from __future__ import annotations

import asyncio
import json

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.upstream import call, upstreams
from gov.identity.v1 import identity_pb2 as pb

router = APIRouter(tags=["meta"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: signing keys are loaded; each upstream's health is reported, not required",
)
async def readyz(request: Request) -> JSONResponse:
    """Ready once the gateway can verify tokens. An upstream that is down does not make it unready:
    that upstream's routes answer 503 on their own, while everything else keeps working; taking the
    gateway out of its load balancer would turn one service's outage into the whole API's."""
    ups = upstreams(request)
    targets = ups.health_targets
    statuses = await asyncio.gather(*(_health(channel, service) for channel, service in targets.values()))
    checks = dict(zip(targets, statuses, strict=True))
    if not ups.verifier.ready and checks["identity"] == "SERVING":
        try:
            await ups.verifier.refresh(force=True)
        except Exception as exc:
            checks["signing_keys_error"] = type(exc).__name__
    checks["signing_keys"] = "loaded" if ups.verifier.ready else "missing"
    ready = ups.verifier.ready
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


async def _health(channel: grpc.aio.Channel, service: str) -> str:
    # Short: an upstream that hangs must not make this probe miss its own timeout.
    try:
        # The stubs of grpcio-health-checking declare no methods on HealthStub (set in __init__).
        reply = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(service=service), timeout=1
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens (RFC 7517)")
async def jwks(request: Request) -> JSONResponse:
    reply = await call(request, upstreams(request).identity.GetJwks, pb.GetJwksRequest())
    return JSONResponse(json.loads(reply.json), headers={"Cache-Control": "public, max-age=60"})

"""Liveness, readiness and the public key set."""

from __future__ import annotations

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


@router.get("/readyz", summary="Readiness: upstream services are SERVING and signing keys are loaded")
async def readyz(request: Request) -> JSONResponse:
    ups = upstreams(request)
    checks: dict[str, str] = {}
    for name, (channel, service) in ups.health_targets.items():
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
            checks[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            checks[name] = exc.code().name
    if not ups.verifier.ready and checks["identity"] == "SERVING":
        try:
            await ups.verifier.refresh(force=True)
        except Exception as exc:
            checks["signing_keys_error"] = type(exc).__name__
    checks["signing_keys"] = "loaded" if ups.verifier.ready else "missing"
    ready = all(checks[name] == "SERVING" for name in ups.health_targets) and ups.verifier.ready
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens (RFC 7517)")
async def jwks(request: Request) -> JSONResponse:
    reply = await call(request, upstreams(request).identity.GetJwks, pb.GetJwksRequest())
    return JSONResponse(json.loads(reply.json), headers={"Cache-Control": "public, max-age=60"})

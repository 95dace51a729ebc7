"""`helm test` check, run inside the platform image by the chart's test Pod.

1. every gRPC component answers grpc.health.v1 Check("") with SERVING (addresses from the
   GOV_<NAME>_ADDR variables the chart computes, the same the services use);
2. the gateway's /readyz answers 200;
3. one authenticated call through the gateway: a client-credentials token from
   POST /api/v1/auth/token, then GET /api/v1/me with it (skipped, and said so, when the chart was
   given no credentials Secret).

Prints one line per check and never a credential; exits 1 if any check failed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

ATTEMPTS = 5
PAUSE_SECONDS = 3.0
TIMEOUT_SECONDS = 5.0


def health_address(addr: str) -> str:
    """Where to ask for health: with TLS on, services answer it in plaintext on port + offset."""
    offset = int(os.environ.get("GOV_TEST_HEALTH_PORT_OFFSET", "0") or 0)
    if not offset:
        return addr
    host, _, port = addr.rpartition(":")
    return f"{host}:{int(port) + offset}"


def grpc_serving(addr: str) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    addr = health_address(addr)

    with grpc.insecure_channel(addr, options=[("grpc.lb_policy_name", "round_robin")]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if status != "SERVING":
        raise RuntimeError(status)
    return status


def http(method: str, url: str, *, data: dict[str, str] | None = None, token: str = "") -> tuple[int, bytes]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - scheme checked above
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as reply:  # noqa: S310
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def gateway_ready(base: str) -> str:
    status, body = http("GET", f"{base}/readyz")
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return "ready"


def authenticated_call(base: str, client_id: str, client_secret: str) -> str:
    status, body = http(
        "POST",
        f"{base}/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
    )
    if status != 200:
        raise RuntimeError(f"token endpoint answered HTTP {status}")
    token = json.loads(body)["access_token"]
    status, body = http("GET", f"{base}/api/v1/me", token=token)
    if status != 200:
        raise RuntimeError(f"GET /api/v1/me answered HTTP {status}")
    return f"caller {json.loads(body)['principal']}"


def attempt(name: str, check: Callable[[], str]) -> bool:
    error = ""
    for n in range(1, ATTEMPTS + 1):
        try:
            print(f"ok   {name}: {check()}", flush=True)
            return True
        except Exception as exc:  # every failure is reported, the next check still runs
            error = f"{type(exc).__name__}: {exc}"
            if n < ATTEMPTS:
                time.sleep(PAUSE_SECONDS)
    print(f"FAIL {name}: {error}", flush=True)
    return False


def main() -> int:
    results = []
    addrs = {
        key[len("GOV_") : -len("_ADDR")].lower(): value
        for key, value in sorted(os.environ.items())
        if key.startswith("GOV_") and key.endswith("_ADDR") and value
    }
    for name, addr in addrs.items():
        results.append(attempt(f"{name} grpc health ({addr})", lambda addr=addr: grpc_serving(addr)))
    base = os.environ.get("GOV_GATEWAY_URL", "").rstrip("/")
    if base:
        results.append(attempt(f"gateway /readyz ({base})", lambda: gateway_ready(base)))
        client_id = os.environ.get("GOV_TEST_CLIENT_ID", "")
        client_secret = os.environ.get("GOV_TEST_CLIENT_SECRET", "")
        if client_id and client_secret:
            results.append(
                attempt(
                    "authenticated call through the gateway",
                    lambda: authenticated_call(base, client_id, client_secret),
                )
            )
        else:
            print("skip authenticated call: tests.credentials.existingSecret is not set", flush=True)
    if not results:
        print("FAIL nothing to check: no GOV_*_ADDR and no GOV_GATEWAY_URL", flush=True)
        return 1
    print(f"helm-test: {sum(results)} passed, {len(results) - sum(results)} failed", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m gateway`: serve the REST API with uvicorn."""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.routes.blocks import UNTRACED_CLIENT_METHODS
from gateway.settings import GatewaySettings
from govkit import config, metrics, telemetry
from govkit.logs import setup_logging


class GatewayServer(uvicorn.Server):
    """uvicorn's server, which also ends open SSE streams the moment it is told to stop: uvicorn waits
    for in-flight responses, and a stream would otherwise hold it until the graceful timeout."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        upstreams = getattr(self.app.state, "upstreams", None)
        if upstreams is not None:
            upstreams.shutdown.set()
        super().handle_exit(sig, frame)


def build_server(
    settings: GatewaySettings, server_type: type[GatewayServer] = GatewayServer
) -> GatewayServer:
    """The app under uvicorn as `python -m gateway` serves it; govkit.devhost hosts it the same way."""
    app = create_app(settings)
    if telemetry.enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # Not the SSE stream: a span would last the whole connection, and its URL may carry the
        # access_token query parameter, which must never reach a trace.
        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,api/v1/notifications/stream")
    # uvicorn handles SIGTERM: stops accepting, waits for in-flight requests, runs the lifespan exit.
    server_config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop=settings.http_loop,
        http=settings.http_parser,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # The gateway decides itself whose X-Forwarded-For to believe (GOV_TRUSTED_PROXIES).
        proxy_headers=False,
    )
    return server_type(server_config, app)


def main() -> None:
    settings = config.load(GatewaySettings)
    setup_logging("gateway", settings.log_level)
    telemetry.setup_telemetry("gateway", untraced_client_methods=UNTRACED_CLIENT_METHODS)
    server = build_server(settings)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    server.run()


if __name__ == "__main__":
    main()

"""`python -m gateway`: serve the REST API with uvicorn."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.routes.blocks import UNTRACED_CLIENT_METHODS
from gateway.settings import GatewaySettings
from govkit import config, metrics, telemetry
from govkit.logs import setup_logging


def main() -> None:
    settings = config.load(GatewaySettings)
    setup_logging("gateway", settings.log_level)
    telemetry.setup_telemetry("gateway", untraced_client_methods=UNTRACED_CLIENT_METHODS)
    app = create_app(settings)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    if telemetry.enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    # uvicorn handles SIGTERM: stops accepting, waits for in-flight requests, runs the lifespan exit.
    uvicorn.run(
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


if __name__ == "__main__":
    main()

"""Platform code shared by every service and the gateway.

One copy of each mechanism: configuration, logging, telemetry, database sessions,
the transactional outbox and its relay, the event consumer runner, the gRPC server
bootstrap and the auth helpers.
"""

"""The REST/JSON API gateway for frontends: OpenAPI, problem+json errors, token auth."""

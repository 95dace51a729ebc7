"""Identity: users, credentials, scoped role bindings, service accounts and signing keys."""

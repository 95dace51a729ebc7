"""Authentication and authorization shared by every service and the gateway."""

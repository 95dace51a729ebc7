"""Identity's use cases, one module per responsibility; each method is one transaction.

`IdentityFlows` only wires them together over one database, one settings object and one
password hasher (its thread pool bounds the memory argon2 takes).
"""

from __future__ import annotations

from govkit.db import Database
from services.identity.flows.common import Passwords
from services.identity.flows.role_bindings import RoleBindingFlows
from services.identity.flows.service_accounts import ServiceAccountFlows
from services.identity.flows.tokens import TokenFlows, Tokens
from services.identity.flows.users import UserFlows
from services.identity.keys import KeyRing
from services.identity.settings import IdentitySettings

__all__ = ["IdentityFlows", "Tokens"]


class IdentityFlows:
    def __init__(self, db: Database, settings: IdentitySettings, keys: KeyRing) -> None:
        self.keys = keys
        passwords = Passwords(settings)
        self.tokens = TokenFlows(db, settings, passwords, keys)
        self.users = UserFlows(db, settings, passwords)
        self.role_bindings = RoleBindingFlows(db, settings, passwords)
        self.service_accounts = ServiceAccountFlows(db, settings, passwords)

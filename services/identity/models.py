"""Identity's tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govkit import treemoves
from govkit.db import UtcDateTime, new_metadata
from govkit.tables import PlatformTables


class Base(DeclarativeBase):
    metadata = new_metadata()


platform = PlatformTables(Base.metadata)
# The region tree's node moves applied here (services.identity.node_moves), in blocks' order.
MOVES = treemoves.MoveLog(treemoves.moves_table(Base.metadata))


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    username: Mapped[str | None] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(300), index=True)
    state: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(String(200))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_users_create_time_id", "create_time", "id"),)


class LoginAttempts(Base):
    """Consecutive failed logins per login key and client address, whether or not an account
    has that login. Keyed by both, so a stranger's failures never lock the owner out."""

    __tablename__ = "login_attempts"

    login_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    # The client's address (an IPv6 client by its /64), see govkit.auth.logins.address_key.
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_attempt: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class RoleBinding(Base):
    __tablename__ = "role_bindings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    principal: Mapped[str] = mapped_column(String(60), index=True)
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(300), index=True)
    granted_by: Mapped[str] = mapped_column(String(60))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("principal", "role", "scope", name="uq_role_bindings_principal_role_scope"),
    )


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    principal: Mapped[str] = mapped_column(String(60), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expire_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ServiceAccount(Base):
    __tablename__ = "service_accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(10))
    # PKCS#8 PEM encrypted with GOV_SIGNING_KEY_PASSPHRASE.
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Stopped signing at; tokens it signed stay valid until expire_time.
    retire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    expire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class StaffAssignment(Base):
    """A block staffing assignment as identity last heard of it (services.identity.staff_sync).

    A removed one stays, inactive, so a late redelivery of its `assigned` event grants nothing;
    the role binding exists while any active assignment asks for it.
    """

    __tablename__ = "staff_assignments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # blocks' assignment id
    principal: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(300), index=True)  # the block's path
    active: Mapped[bool] = mapped_column(Boolean)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_staff_assignments_principal_role_scope", "principal", "role", "scope"),)

"""Identity hardening end to end, on real processes.

The login race and the per-address delay, rate limits at the gateway (behind a trusted proxy and
not), revocation reaching the gateway and every service within 2 s, the delegation table, and the
events each state change emits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import httpx
import jwt
import pytest

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import events_pb2
from gov.identity.v1 import identity_pb2 as pb
from gov.tickets.v1 import tickets_pb2
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit import bus
from govkit.auth.revocations import REVOCATION_SUBJECT, Revocations, follow
from govkit.devstack import Stack, free_port
from govkit.events import build_event, unpack_payload
from govkit.protobuf import timestamp
from tests.support.identity import (
    PASSWORD,
    IdentityClient,
    find_event,
    from_address,
    md,
    random_phone,
    role,
)

PROBLEM = "application/problem+json"
TOKEN = "/api/v1/auth/token"
# tests/conftest.py runs identity with GOV_LOCKOUT_THRESHOLD=3 and GOV_LOCKOUT_DURATION_SECONDS=3.
THRESHOLD = 3
FIRST_DELAY = 3.0
REVOCATION_DEADLINE = 2.0  # seconds, the requirement

_addresses = itertools.count(1)


def unique_address() -> str:
    """A fresh documentation-range address per call, so counters never collide between tests."""
    n = next(_addresses) + uuid.uuid4().int % 10_000 * 256
    return f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}"


def xff(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _code(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# ----------------------------------------------------------------------------- the login race


async def test_forty_concurrent_wrong_passwords_verify_at_most_threshold(identity: IdentityClient) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    address = unique_address()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def attempt() -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await identity.stub.Login(
                pb.LoginRequest(login=phone, password="wrong-password"), metadata=from_address(address)
            )
        return err.value

    errors = await asyncio.gather(*(attempt() for _ in range(40)))
    elapsed = loop.time() - started
    verified = [e for e in errors if e.code() == grpc.StatusCode.UNAUTHENTICATED]
    refused = [e for e in errors if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert len(verified) + len(refused) == 40
    # Each wait that ran out during the burst lets exactly one more attempt through (3 s, then 6 s
    # more, ...); on any machine that finishes the burst inside the first wait that is zero.
    waits_over = sum(1 for total in (3.0, 9.0, 21.0, 45.0) if elapsed >= total)
    assert len(verified) == THRESHOLD + waits_over, (len(verified), elapsed)
    for err in refused:
        assert int(dict(err.trailing_metadata() or ())["retry-after"]) >= 1


async def test_the_delay_grows_per_login_and_address_and_spares_the_owner(identity: IdentityClient) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    stranger, owner = unique_address(), unique_address()

    def login(password: str, address: str) -> Awaitable[pb.TokenPair]:
        return identity.stub.Login(
            pb.LoginRequest(login=phone, password=password), metadata=from_address(address)
        )

    async def strangers_wait() -> int:
        """The stranger's right password is refused: the seconds they are told to wait."""
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await login(PASSWORD, stranger)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return int(dict(err.value.trailing_metadata() or ())["retry-after"])

    for _ in range(THRESHOLD):
        assert await _code(login("wrong-password", stranger)) == grpc.StatusCode.UNAUTHENTICATED
    # The stranger now waits, even with the right password ...
    first_wait = await strangers_wait()
    assert 1 <= first_wait <= FIRST_DELAY
    # ... but the owner, elsewhere, is not locked out by a stranger's failures.
    pair = await login(PASSWORD, owner)
    assert pair.access_token
    # Once the wait is over, one more failure from the stranger's address doubles the next wait.
    await asyncio.sleep(first_wait + 0.2)
    assert await _code(login("wrong-password", stranger)) == grpc.StatusCode.UNAUTHENTICATED
    assert FIRST_DELAY < await strangers_wait() <= 2 * FIRST_DELAY


# ----------------------------------------------------------------------------- gateway rate limits


@contextlib.contextmanager
def _extra_gateway(stack: Stack, **env: str) -> Iterator[str]:
    """Another gateway on the same services, with its own settings; the session's stays the default."""
    main, metrics = stack.gateway_url, stack.metrics_urls.get("gateway", "")
    proc = stack.start_gateway(env=env)
    url, stack.gateway_url, stack.metrics_urls["gateway"] = stack.gateway_url, main, metrics
    try:
        yield url
    finally:
        stack.stop_proc(proc)


# A long window: no bucket refills during a test, so counts are exact.
LIMITS = {
    "GOV_AUTH_RATE_PER_ADDRESS": "4",
    "GOV_AUTH_RATE_PER_LOGIN": "3",
    "GOV_AUTH_RATE_WINDOW_SECONDS": "600",
}


@pytest.fixture(scope="module")
def proxied_gateway(stack: Stack) -> Iterator[str]:
    """A gateway behind a trusted reverse proxy (this test, on 127.0.0.1)."""
    with _extra_gateway(stack, GOV_TRUSTED_PROXIES="127.0.0.1/32", **LIMITS) as url:
        yield url


@pytest.fixture(scope="module")
def exposed_gateway(stack: Stack) -> Iterator[str]:
    """A gateway that trusts no proxy: X-Forwarded-For is the client's own claim."""
    with _extra_gateway(stack, **LIMITS) as url:
        yield url


def assert_rate_limited(reply: httpx.Response) -> int:
    assert reply.status_code == 429, reply.text
    assert reply.headers["content-type"] == PROBLEM
    body = reply.json()
    assert body["status"] == 429 and body["type"] == "/problems/rate-limited", body
    retry_after = int(reply.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def _spelled_out(phone: str) -> str:
    return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"


async def test_per_login_limit_answers_429_with_retry_after(proxied_gateway: str) -> None:
    login = random_phone()
    async with httpx.AsyncClient(base_url=proxied_gateway, timeout=10) as http:
        for _ in range(3):  # each from another address: only the login's own limit applies
            reply = await http.post(
                TOKEN, data={"username": login, "password": "wrong-password"}, headers=xff(unique_address())
            )
            assert reply.status_code == 401, reply.text
        # Another spelling of the same phone is the same login.
        assert_rate_limited(
            await http.post(
                TOKEN,
                data={"username": _spelled_out(login), "password": PASSWORD},
                headers=xff(unique_address()),
            )
        )
        client_id = f"sa-{uuid.uuid4().hex[:12]}"
        grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "wrong"}
        for _ in range(3):
            reply = await http.post(TOKEN, data=grant, headers=xff(unique_address()))
            assert reply.status_code == 401, reply.text
        assert_rate_limited(await http.post(TOKEN, data=grant, headers=xff(unique_address())))


async def test_per_address_limit_counts_every_credential_exchange(proxied_gateway: str) -> None:
    address = unique_address()
    async with httpx.AsyncClient(base_url=proxied_gateway, timeout=10, headers=xff(address)) as http:
        attempts = [
            http.post(TOKEN, data={"username": random_phone(), "password": "wrong-password"}),
            http.post(TOKEN, data={"username": random_phone(), "password": "wrong-password"}),
            http.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": "not-a-token"}),
            http.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"}),
        ]
        for attempt in attempts:
            assert (await attempt).status_code == 401
        assert_rate_limited(await http.post(TOKEN, data={"username": random_phone(), "password": "x" * 10}))
        assert_rate_limited(await http.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"}))
        # Another client behind the same proxy is not held up.
        other = await http.post(
            TOKEN,
            data={"username": random_phone(), "password": "wrong-password"},
            headers=xff(unique_address()),
        )
        assert other.status_code == 401


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(exposed_gateway: str) -> None:
    async with httpx.AsyncClient(base_url=exposed_gateway, timeout=10) as http:
        for _ in range(4):
            reply = await http.post(
                TOKEN,
                data={"username": random_phone(), "password": "wrong-password"},
                headers=xff(unique_address()),
            )
            assert reply.status_code == 401
        # Every claimed address was the same client (the peer): the fifth is refused.
        assert_rate_limited(
            await http.post(
                TOKEN,
                data={"username": random_phone(), "password": "wrong-password"},
                headers=xff(unique_address()),
            )
        )


async def test_open311_api_key_exchange_is_limited_in_open311_format(proxied_gateway: str) -> None:
    api_key = f"sa-{uuid.uuid4().hex[:12]}:wrong-secret"
    async with httpx.AsyncClient(base_url=proxied_gateway, timeout=10) as http:
        for _ in range(3):
            reply = await http.get(
                "/open311/v2/requests.json", params={"api_key": api_key}, headers=xff(unique_address())
            )
            assert reply.status_code == 403, reply.text
        reply = await http.get(
            "/open311/v2/requests.json", params={"api_key": api_key}, headers=xff(unique_address())
        )
        assert reply.status_code == 429 and reply.headers["content-type"].startswith("application/json")
        [error] = reply.json()
        assert error["code"] == 429 and "api_key" in error["description"]
        assert int(reply.headers["retry-after"]) >= 1
        xml = await http.get(
            "/open311/v2/requests.xml", params={"api_key": api_key}, headers=xff(unique_address())
        )
        assert xml.status_code == 429 and "<errors>" in xml.text and "retry-after" in xml.headers


async def test_the_gateway_tells_identity_whose_attempt_it_is(
    proxied_gateway: str, identity: IdentityClient
) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    behind_proxy, elsewhere = unique_address(), unique_address()
    async with httpx.AsyncClient(base_url=proxied_gateway, timeout=10, headers=xff(behind_proxy)) as http:
        for _ in range(THRESHOLD):
            reply = await http.post(TOKEN, data={"username": phone, "password": "wrong-password"})
            assert reply.status_code == 401
    # Identity counted those failures under the forwarded address, not under the proxy's.
    code = await _code(
        identity.stub.Login(
            pb.LoginRequest(login=phone, password=PASSWORD), metadata=from_address(behind_proxy)
        )
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (
        await _code(
            identity.stub.Login(
                pb.LoginRequest(login=phone, password=PASSWORD), metadata=from_address(elsewhere)
            )
        )
        == grpc.StatusCode.OK
    )


# ----------------------------------------------------------------------------- revocation


class Verifiers:
    """The gateway and three services, each asked whether it still accepts a token."""

    def __init__(self, stack: Stack, identity: IdentityClient, gateway_url: str = "") -> None:
        self.http = httpx.AsyncClient(base_url=gateway_url or stack.gateway_url, timeout=10)
        self.identity = identity
        self.blocks_channel = grpc.aio.insecure_channel(stack.addrs["blocks"])
        self.tickets_channel = grpc.aio.insecure_channel(stack.addrs["tickets"])
        self.blocks = BlocksServiceStub(self.blocks_channel)
        self.tickets = TicketsServiceStub(self.tickets_channel)

    async def close(self) -> None:
        await self.http.aclose()
        await self.blocks_channel.close()
        await self.tickets_channel.close()

    def probes(self, token: str) -> dict[str, Callable[[], Awaitable[bool]]]:
        """name -> "is the token accepted?" (False when refused as unauthenticated)."""

        async def gateway() -> bool:
            # Refused by the gateway's own verifier, not by identity behind it (which says only
            # "Bearer"): the gateway checks tokens locally, so it needs its own deny-list.
            reply = await self.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert reply.status_code in (200, 401), reply.status_code
            return reply.status_code == 200 or "invalid_token" not in reply.headers["www-authenticate"]

        async def rpc(call: Awaitable[object]) -> bool:
            # Any answer but UNAUTHENTICATED means the token got past authentication.
            code = await _code(call)
            assert code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL), code
            return code != grpc.StatusCode.UNAUTHENTICATED

        return {
            "gateway": gateway,
            "identity": lambda: rpc(self.identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(token))),
            "blocks": lambda: rpc(self.blocks.ListNodes(blocks_pb2.ListNodesRequest(), metadata=md(token))),
            "tickets": lambda: rpc(
                self.tickets.ListTickets(
                    tickets_pb2.ListTicketsRequest(mine=True, page_size=1), metadata=md(token)
                )
            ),
        }

    async def accepted_everywhere(self, token: str) -> None:
        results = {name: await probe() for name, probe in self.probes(token).items()}
        assert all(results.values()), results
        me = await self.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text

    async def refused_everywhere_within(self, token: str, since: float, deadline: float) -> dict[str, float]:
        """Seconds from `since` until each verifier refused the token; each must be within `deadline`."""
        loop = asyncio.get_running_loop()

        async def until_refused(name: str, probe: Callable[[], Awaitable[bool]]) -> float:
            while await probe():
                assert loop.time() - since < deadline, f"{name} still accepts the token"
                await asyncio.sleep(0.05)
            return loop.time() - since

        probes = self.probes(token)
        times = await asyncio.gather(*(until_refused(name, probe) for name, probe in probes.items()))
        took = dict(zip(probes, times, strict=True))
        assert max(took.values()) < deadline, took
        return took


@pytest.fixture
async def verifiers(stack: Stack, identity: IdentityClient):  # type: ignore[no-untyped-def]
    v = Verifiers(stack, identity)
    yield v
    await v.close()


async def test_a_disabled_account_stops_working_everywhere_within_2s(
    verifiers: Verifiers, identity: IdentityClient, stack: Stack
) -> None:
    user, phone, token = await identity.make_user("yuhu/wanlou", [("dispatcher", "yuhu/wanlou")])
    await verifiers.accepted_everywhere(token)
    loop = asyncio.get_running_loop()
    reply = await verifiers.http.post(
        f"/api/v1/users/{user.id}/disable", headers={"Authorization": f"Bearer {identity.admin_token}"}
    )
    assert reply.status_code == 200
    await verifiers.refused_everywhere_within(token, loop.time(), REVOCATION_DEADLINE)
    # A gateway started after the revocation knows it too (it reads recent revocations on start).
    with _extra_gateway(stack) as fresh_url:
        fresh = Verifiers(stack, identity, fresh_url)
        try:
            await fresh.refused_everywhere_within(token, loop.time(), REVOCATION_DEADLINE)
        finally:
            await fresh.close()
    # Enabled again, a new login works everywhere: only tokens issued before the disable are denied.
    await identity.stub.EnableUser(pb.EnableUserRequest(name=user.name), metadata=md(identity.admin_token))
    await verifiers.accepted_everywhere((await identity.login(phone, PASSWORD)).access_token)


async def test_logout_ends_that_session_only_within_2s(
    verifiers: Verifiers, identity: IdentityClient
) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    leaving = await identity.login(phone, PASSWORD)
    staying = await identity.login(phone, PASSWORD)
    await verifiers.accepted_everywhere(leaving.access_token)
    loop = asyncio.get_running_loop()
    reply = await verifiers.http.post("/api/v1/auth/logout", json={"refresh_token": leaving.refresh_token})
    assert reply.status_code == 204
    await verifiers.refused_everywhere_within(leaving.access_token, loop.time(), REVOCATION_DEADLINE)
    await verifiers.accepted_everywhere(staying.access_token)


async def test_a_changed_or_reset_password_ends_earlier_tokens_within_2s(
    verifiers: Verifiers, identity: IdentityClient
) -> None:
    user, phone, token = await identity.make_user("yuhu/wanlou")
    await verifiers.accepted_everywhere(token)
    loop = asyncio.get_running_loop()
    reply = await verifiers.http.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a-new-password-1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 204
    await verifiers.refused_everywhere_within(token, loop.time(), REVOCATION_DEADLINE)
    # A login right after the change (often in the same second) is not caught by it.
    fresh = (await identity.login(phone, "a-new-password-1")).access_token
    await verifiers.accepted_everywhere(fresh)
    # An administrator's reset does the same.
    await identity.stub.ResetPassword(
        pb.ResetPasswordRequest(name=user.name, new_password="a-new-password-2"),
        metadata=md(identity.admin_token),
    )
    await verifiers.refused_everywhere_within(fresh, loop.time(), REVOCATION_DEADLINE)
    await verifiers.accepted_everywhere((await identity.login(phone, "a-new-password-2")).access_token)


async def test_a_reused_refresh_token_ends_its_session_everywhere(
    verifiers: Verifiers, identity: IdentityClient
) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    first = await identity.login(phone, PASSWORD)
    second = await identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    await verifiers.accepted_everywhere(second.access_token)
    loop = asyncio.get_running_loop()
    # The spent token comes back: someone copied it; the thief's fresh access token dies too.
    assert await _code(
        identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    ) == (grpc.StatusCode.UNAUTHENTICATED)
    await verifiers.refused_everywhere_within(second.access_token, loop.time(), REVOCATION_DEADLINE)


# ----------------------------------------------------------------------------- delegation


async def test_who_may_grant_what(identity: IdentityClient, stack: Stack) -> None:
    street = f"yuhu/s{uuid.uuid4().hex[:6]}"
    leader_user, _, leader = await identity.make_user(street, [("leader", street)])
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    target, _, _ = await identity.make_user(f"{street}/c1")

    def grant(token: str, role_name: str, scope: str):  # type: ignore[no-untyped-def]
        return identity.stub.CreateRoleBinding(
            pb.CreateRoleBindingRequest(
                parent=target.name, role_binding=pb.RoleBinding(role=role(role_name), scope=scope)
            ),
            metadata=md(token),
        )

    # A leader cannot make another leader, not even below themselves ...
    assert await _code(grant(leader, "leader", street)) == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(grant(leader, "leader", f"{street}/c1")) == grpc.StatusCode.PERMISSION_DENIED
    # ... nor bind block staff, which come from the blocks service's staffing records.
    assert await _code(grant(leader, "governor", f"{street}/c1/b01")) == grpc.StatusCode.PERMISSION_DENIED
    # A dispatcher cannot make a governor, over REST either.
    assert await _code(grant(dispatcher, "governor", f"{street}/c1/b01")) == grpc.StatusCode.PERMISSION_DENIED
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        reply = await http.post(
            f"/api/v1/users/{target.id}/role-bindings",
            json={"role": "governor", "scope": f"{street}/c1/b01"},
            headers={"Authorization": f"Bearer {dispatcher}"},
        )
        assert reply.status_code == 403 and reply.headers["content-type"] == PROBLEM
    # What the table allows goes through, and the event says who granted it under which binding.
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    binding = await grant(leader, "dispatcher", street)
    event = await find_event(stack.nats_url, "identity.v1.role.granted", binding.name, since)
    granted = unpack_payload(event, events_pb2.RoleGranted)
    assert event.actor == leader_user.name and granted.role_binding.granted_by == leader_user.name
    assert (granted.granter_role, granted.granter_scope) == (pb.ROLE_LEADER, street)
    assert (granted.role_binding.role, granted.role_binding.scope) == (pb.ROLE_DISPATCHER, street)
    bindings = await identity.stub.ListRoleBindings(
        pb.ListRoleBindingsRequest(parent=target.name), metadata=md(identity.admin_token)
    )
    assert [(b.role, b.scope) for b in bindings.role_bindings] == [(pb.ROLE_DISPATCHER, street)]


# ----------------------------------------------------------------------------- events


async def test_every_state_change_emits_an_event_without_contact_data(
    identity: IdentityClient, stack: Stack
) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    admin = await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(identity.admin_token))
    user, phone, token = await identity.make_user("yuhu/wanlou")
    created = await find_event(stack.nats_url, "identity.v1.user.created", user.name, since)
    assert unpack_payload(created, events_pb2.UserCreated).user.id == user.id
    digits = phone[-8:]
    assert digits.encode() not in created.SerializeToString()

    await identity.stub.ChangePassword(
        pb.ChangePasswordRequest(current_password=PASSWORD, new_password="changed-password"),
        metadata=md(token),
    )
    changed = await find_event(stack.nats_url, "identity.v1.password.changed", user.name, since)
    assert (
        changed.actor == user.name and unpack_payload(changed, events_pb2.PasswordChanged).user == user.name
    )
    revoked = unpack_payload(
        await find_event(stack.nats_url, "identity.v1.tokens.revoked", user.name, since),
        events_pb2.TokensRevoked,
    )
    assert revoked.reason == events_pb2.REVOCATION_REASON_PASSWORD_CHANGED and revoked.session == ""
    assert revoked.expire_time.ToDatetime() > revoked.issued_before.ToDatetime()

    await identity.stub.ResetPassword(
        pb.ResetPasswordRequest(name=user.name, new_password="reset-password"),
        metadata=md(identity.admin_token),
    )
    reset = await find_event(stack.nats_url, "identity.v1.password.reset", user.name, since)
    assert (
        reset.actor == admin.principal and unpack_payload(reset, events_pb2.PasswordReset).user == user.name
    )

    pair = await identity.login(phone, "reset-password")
    session = jwt.decode(pair.access_token, options={"verify_signature": False})["sid"]
    await identity.stub.Logout(pb.LogoutRequest(refresh_token=pair.refresh_token))
    logout = await find_event(
        stack.nats_url, "identity.v1.tokens.revoked", f"{user.name}/sessions/{session}", since
    )
    ended = unpack_payload(logout, events_pb2.TokensRevoked)
    assert (ended.principal, ended.session, ended.reason) == (
        user.name,
        session,
        events_pb2.REVOCATION_REASON_LOGOUT,
    )

    await identity.stub.DisableUser(pb.DisableUserRequest(name=user.name), metadata=md(identity.admin_token))
    disabled = await find_event(stack.nats_url, "identity.v1.user.disabled", user.name, since)
    summary = unpack_payload(disabled, events_pb2.UserDisabled).user
    assert summary.name == user.name
    assert not {"phone", "username", "display_name"} & set(summary.DESCRIPTOR.fields_by_name)
    assert digits.encode() not in disabled.SerializeToString()

    account = await identity.stub.CreateServiceAccount(
        pb.CreateServiceAccountRequest(service_account=pb.ServiceAccount(display_name="事件测试")),
        metadata=md(identity.admin_token),
    )
    sa_event = await find_event(
        stack.nats_url, "identity.v1.service_account.created", account.service_account.name, since
    )
    payload = unpack_payload(sa_event, events_pb2.ServiceAccountCreated)
    assert payload.service_account.client_id == account.service_account.client_id
    assert account.client_secret.encode() not in sa_event.SerializeToString()

    key = await identity.stub.RotateSigningKey(
        pb.RotateSigningKeyRequest(), metadata=md(identity.admin_token)
    )
    rotated = await find_event(
        stack.nats_url, "identity.v1.signing_key.rotated", f"signingKeys/{key.kid}", since
    )
    payload_key = unpack_payload(rotated, events_pb2.SigningKeyRotated)
    assert rotated.actor == admin.principal and payload_key.kid == key.kid and payload_key.retired_kids


# ----------------------------------------------------------------------------- the feed itself


def _revocation(subject: str) -> bytes:
    now = dt.datetime.now(dt.UTC)
    payload = events_pb2.TokensRevoked(
        principal=subject,
        issued_before=timestamp(now),
        expire_time=timestamp(now + dt.timedelta(minutes=5)),
        reason=events_pb2.REVOCATION_REASON_USER_DISABLED,
    )
    return build_event(REVOCATION_SUBJECT, payload, actor="system", resource=subject).envelope


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


async def test_the_revocation_feed_survives_a_nats_restart(tmp_path: Path) -> None:
    with Stack(tmp_path) as nats_only:
        port = free_port()
        nats_only.start_nats(port)
        publisher = await bus.connect(nats_only.nats_url, "test-publisher")
        # Stack.start_nats applied the stream declarations (govkit.streams), IDENTITY among them.
        # Published before the verifier starts: read back from the stream on start.
        await publisher.jetstream().publish(REVOCATION_SUBJECT, _revocation("users/before"))
        revocations = Revocations()
        subscriber = await bus.connect(nats_only.nats_url, "test-verifier")
        feed = asyncio.create_task(follow(subscriber, revocations, poll_seconds=0.1))
        try:
            await _until(lambda: revocations.is_revoked("users/before", "", 0.0), 5)
            await publisher.jetstream().publish(REVOCATION_SUBJECT, _revocation("users/live"))
            await _until(lambda: revocations.is_revoked("users/live", "", 0.0), 5)
            # NATS restarts; a fresh publisher (like identity's relay) publishes at once, likely
            # before the verifier has reconnected: it must still learn of it.
            nats_only.stop_proc(next(p for p in nats_only.procs if p.name == "nats"))
            nats_only.start_nats(port)
            await publisher.close()
            publisher = await bus.connect(nats_only.nats_url, "test-publisher-2")
            await publisher.jetstream().publish(REVOCATION_SUBJECT, _revocation("users/during"))
            await _until(lambda: revocations.is_revoked("users/during", "", 0.0), 10)
            await publisher.jetstream().publish(REVOCATION_SUBJECT, _revocation("users/after"))
            await _until(lambda: revocations.is_revoked("users/after", "", 0.0), 5)
        finally:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)
            await subscriber.close()
            await publisher.close()

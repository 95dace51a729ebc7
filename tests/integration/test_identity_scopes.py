"""Authorization by region-tree scope, input validation and idempotency on the identity service."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from gov.identity.v1 import identity_pb2 as pb
from tests.support.identity import PASSWORD, IdentityClient, md, random_phone, role


async def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def _error(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def test_resident_cannot_list_users(identity: IdentityClient) -> None:
    _, _, token = await identity.make_user(
        "yuhu/wanlou/taoyuan/b07", [("resident", "yuhu/wanlou/taoyuan/b07")]
    )
    assert await _code(identity.stub.ListUsers(pb.ListUsersRequest(), metadata=md(token))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # ... but can read themselves.
    me = await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(token))
    assert (
        await identity.stub.GetUser(pb.GetUserRequest(name=me.user.name), metadata=md(token))
    ).id == me.user.id


async def test_dispatcher_grants_only_within_their_street(identity: IdentityClient) -> None:
    street = f"yuhu/s{uuid.uuid4().hex[:6]}"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    governor, _, _ = await identity.make_user(f"{street}/c1/b01")

    def grant(role_name: str, scope: str):  # type: ignore[no-untyped-def]
        return identity.stub.CreateRoleBinding(
            pb.CreateRoleBindingRequest(
                parent=governor.name, role_binding=pb.RoleBinding(role=role(role_name), scope=scope)
            ),
            metadata=md(dispatcher),
        )

    binding = await grant("resident", f"{street}/c1/b01")
    assert binding.scope == f"{street}/c1/b01" and binding.granted_by.startswith("users/")
    # Another street of the same district: refused, nothing written.
    assert await _code(grant("resident", "yuhu/hetang/c1/b01")) == grpc.StatusCode.PERMISSION_DENIED
    # The district above their street: refused.
    assert await _code(grant("resident", "yuhu")) == grpc.StatusCode.PERMISSION_DENIED
    # A role stronger than their own, even inside their street: refused.
    assert await _code(grant("leader", street)) == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(grant("admin", street)) == grpc.StatusCode.PERMISSION_DENIED
    # Block staff come from the blocks service's staffing records, not from a dispatcher's grant.
    assert await _code(grant("governor", f"{street}/c1/b01")) == grpc.StatusCode.PERMISSION_DENIED
    bindings = await identity.stub.ListRoleBindings(
        pb.ListRoleBindingsRequest(parent=governor.name), metadata=md(identity.admin_token)
    )
    assert [(b.role, b.scope) for b in bindings.role_bindings] == [(pb.ROLE_RESIDENT, f"{street}/c1/b01")]


async def test_dispatcher_cannot_take_over_a_stronger_account(identity: IdentityClient) -> None:
    street = f"yuhu/s{uuid.uuid4().hex[:6]}"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    leader, _, _ = await identity.make_user(street, [("leader", street)])
    for call in (
        identity.stub.ResetPassword(
            pb.ResetPasswordRequest(name=leader.name, new_password="x" * 12), metadata=md(dispatcher)
        ),
        identity.stub.DisableUser(pb.DisableUserRequest(name=leader.name), metadata=md(dispatcher)),
    ):
        assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_list_users_is_limited_to_scope_and_pages_cleanly(identity: IdentityClient) -> None:
    street = f"yuhu/s{uuid.uuid4().hex[:6]}"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    mine = {(await identity.make_user(f"{street}/c{i}"))[0].id for i in range(4)}
    outsider, _, _ = await identity.make_user("yuhu/elsewhere")
    seen: list[str] = []
    token = ""
    while True:
        page = await identity.stub.ListUsers(
            pb.ListUsersRequest(page_size=2, page_token=token), metadata=md(dispatcher)
        )
        assert len(page.users) <= 2
        seen += [u.id for u in page.users]
        token = page.next_page_token
        if not token:
            break
    assert mine <= set(seen)
    assert outsider.id not in seen
    assert len(seen) == len(set(seen)) == 5  # four users and the dispatcher, no repeats
    # A user outside the scope looks exactly like a missing one.
    code = await _code(identity.stub.GetUser(pb.GetUserRequest(name=outsider.name), metadata=md(dispatcher)))
    assert code == grpc.StatusCode.NOT_FOUND
    # A page token cannot be replayed with other filters.
    first = await identity.stub.ListUsers(pb.ListUsersRequest(page_size=1), metadata=md(dispatcher))
    err = await _error(
        identity.stub.ListUsers(
            pb.ListUsersRequest(page_size=1, page_token=first.next_page_token, query="x"),
            metadata=md(dispatcher),
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in err.details()


@pytest.mark.parametrize(
    ("user", "password", "field"),
    [
        (pb.User(display_name="张三", scope="yuhu"), PASSWORD, "phone"),
        (pb.User(phone="12345", display_name="张三", scope="yuhu"), PASSWORD, "phone"),
        (pb.User(phone="1" * 5000, display_name="张三", scope="yuhu"), PASSWORD, "phone"),
        (pb.User(phone="13812345678", scope="yuhu"), PASSWORD, "display_name"),
        (pb.User(phone="13812345678", display_name="张" * 65, scope="yuhu"), PASSWORD, "display_name"),
        (pb.User(phone="13812345678", display_name="张三", scope="Yuhu/Bad Code"), PASSWORD, "scope"),
        (pb.User(phone="13812345678", display_name="张三"), PASSWORD, "scope"),
        (
            pb.User(phone="13812345678", display_name="张三", scope="yuhu", username="1x"),
            PASSWORD,
            "username",
        ),
        (pb.User(phone="13812345678", display_name="张三", scope="yuhu"), "short", "password"),
        (pb.User(phone="13812345678", display_name="张三", scope="yuhu"), "p" * 129, "password"),
    ],
)
async def test_bad_input_names_the_field(
    identity: IdentityClient, user: pb.User, password: str, field: str
) -> None:
    err = await _error(
        identity.stub.CreateUser(
            pb.CreateUserRequest(user=user, password=password), metadata=md(identity.admin_token)
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"{field}:"), err.details()


async def test_bad_list_arguments(identity: IdentityClient) -> None:
    for request, field in (
        (pb.ListUsersRequest(page_size=-1), "page_size"),
        (pb.ListUsersRequest(page_token="garbage!"), "page_token"),
        (pb.ListUsersRequest(query="q" * 65), "query"),
        (pb.ListUsersRequest(scope="NOT A PATH"), "scope"),
    ):
        err = await _error(identity.stub.ListUsers(request, metadata=md(identity.admin_token)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith(field), (
            err.details()
        )


async def test_create_user_is_idempotent_by_request_id(identity: IdentityClient) -> None:
    phone = random_phone()
    request = pb.CreateUserRequest(
        user=pb.User(phone=phone, display_name="李四", scope="yuhu/wanlou"),
        password=PASSWORD,
        request_id=str(uuid.uuid4()),
    )
    first = await identity.stub.CreateUser(request, metadata=md(identity.admin_token))
    again = await identity.stub.CreateUser(request, metadata=md(identity.admin_token))
    assert again.id == first.id
    request.request_id = str(uuid.uuid4())
    assert await _code(identity.stub.CreateUser(request, metadata=md(identity.admin_token))) == (
        grpc.StatusCode.ALREADY_EXISTS
    )


async def test_update_user_with_field_mask(identity: IdentityClient) -> None:
    user, _, token = await identity.make_user("yuhu/wanlou")
    # A user may rename themselves ...
    renamed = await identity.stub.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(name=user.name, display_name="王五"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=md(token),
    )
    assert renamed.display_name == "王五" and renamed.phone == user.phone
    # ... but not move themselves to another scope.
    code = await _code(
        identity.stub.UpdateUser(
            pb.UpdateUserRequest(
                user=pb.User(name=user.name, scope="yuhu"),
                update_mask=field_mask_pb2.FieldMask(paths=["scope"]),
            ),
            metadata=md(token),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    err = await _error(
        identity.stub.UpdateUser(
            pb.UpdateUserRequest(
                user=pb.User(name=user.name), update_mask=field_mask_pb2.FieldMask(paths=["state"])
            ),
            metadata=md(identity.admin_token),
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in err.details()


async def test_last_global_admin_cannot_be_revoked(identity: IdentityClient) -> None:
    caller = await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(identity.admin_token))
    admin_binding = next(b for b in caller.role_bindings if b.role == pb.ROLE_ADMIN and b.scope == "*")
    code = await _code(
        identity.stub.DeleteRoleBinding(
            pb.DeleteRoleBindingRequest(name=admin_binding.name), metadata=md(identity.admin_token)
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION

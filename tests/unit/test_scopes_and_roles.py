from __future__ import annotations

import pytest

from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Permission, Role
from govkit.auth.scopes import ancestors, covers, validate_path
from govkit.errors import InvalidArgument
from services.identity.domain import grant_authority


@pytest.mark.parametrize(
    ("scope", "path", "expected"),
    [
        ("yuhu/wanlou", "yuhu/wanlou", True),
        ("yuhu/wanlou", "yuhu/wanlou/taoyuan/b07", True),
        ("yuhu/wanlou", "yuhu/wanloux", False),  # a prefix of the text is not a prefix of the path
        ("yuhu/wanlou", "yuhu", False),
        ("yuhu/wanlou", "hetang/wanlou", False),
        ("*", "anything/at/all", True),
        ("yuhu", "*", False),
    ],
)
def test_covers_is_a_path_prefix_test(scope: str, path: str, expected: bool) -> None:
    assert covers(scope, path) is expected


@pytest.mark.parametrize("bad", ["", "Yuhu", "yuhu//b", "yuhu/", "/yuhu", "yu hu", "a/" * 9 + "a", "x" * 33])
def test_validate_path_refuses_bad_paths(bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_path(bad)
    assert err.value.field == "scope"


def test_ancestors() -> None:
    assert ancestors("a/b/c") == ["a", "a/b", "a/b/c"]


def test_principal_permissions_follow_scope() -> None:
    dispatcher = Principal("users/d", (Binding(Role.DISPATCHER, "yuhu/wanlou"),))
    assert dispatcher.can(Permission.USERS_READ, "yuhu/wanlou/taoyuan")
    assert not dispatcher.can(Permission.USERS_READ, "yuhu/hetang")
    assert not dispatcher.can(Permission.SERVICE_ACCOUNTS_MANAGE, "yuhu/wanlou")
    # Who may grant what is identity's delegation table (tests/unit/test_identity_delegation.py).
    assert grant_authority(dispatcher, Role.RESIDENT, "yuhu/wanlou/taoyuan/b07")
    assert not grant_authority(dispatcher, Role.RESIDENT, "yuhu/hetang/x/b01")
    assert not grant_authority(dispatcher, Role.LEADER, "yuhu/wanlou")
    resident = Principal("users/r", (Binding(Role.RESIDENT, "yuhu/wanlou/taoyuan/b07"),))
    assert resident.scopes_for(Permission.USERS_READ) == []
    admin = Principal("users/a", (Binding(Role.ADMIN, "*"),))
    assert grant_authority(admin, Role.ADMIN, "*") and admin.can(Permission.SIGNING_KEYS_ROTATE, "*")


def test_no_role_can_grant_a_stronger_one() -> None:
    leader = Principal("users/l", (Binding(Role.LEADER, "yuhu"),))
    dispatcher = Principal("users/d", (Binding(Role.DISPATCHER, "yuhu/wanlou"),))
    assert not grant_authority(leader, Role.ADMIN, "yuhu")
    for role in (Role.ADMIN, Role.LEADER, Role.DISPATCHER):
        assert not grant_authority(dispatcher, role, "yuhu/wanlou")

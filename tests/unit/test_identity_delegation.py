"""The delegation table (who may grant which role, where) row by row, and who may manage whom."""

from __future__ import annotations

import pytest

from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Role
from govkit.errors import PermissionDenied
from services.identity import domain
from services.identity.domain import DELEGATION, GLOBAL_ONLY, RANK, WITHIN, grant_authority

STREET = "yuhu/wanlou"
INSIDE = "yuhu/wanlou/taoyuan/b07"
ELSEWHERE = "yuhu/hetang"


def holder(role: Role, scope: str) -> Principal:
    return Principal(f"users/{role}", (Binding(role, scope),))


@pytest.mark.parametrize("rule", DELEGATION, ids=lambda r: f"{r.granter}-{r.scope}")
def test_each_row_grants_its_roles_where_it_says_and_nothing_else(rule: domain.DelegationRule) -> None:
    scope = "*" if rule.scope == GLOBAL_ONLY else STREET
    granter = holder(rule.granter, scope)
    for role in Role:
        granted = grant_authority(granter, role, INSIDE if rule.scope == WITHIN else scope)
        # Another row of the same granter may allow more; this row must allow at least its own.
        if role in rule.grants:
            assert granted == Binding(rule.granter, scope), role
    if rule.scope == WITHIN:
        for role in rule.grants:
            assert grant_authority(granter, role, STREET), "the granter's own node is within"
            assert not grant_authority(granter, role, ELSEWHERE), "outside the granter's node"
            assert not grant_authority(granter, role, "yuhu"), "above the granter's node"
    else:
        # The same role held below the global scope does not carry this row.
        for role in rule.grants:
            assert not grant_authority(holder(rule.granter, STREET), role, INSIDE)


def test_roles_missing_from_the_table_grant_nothing() -> None:
    granters = {rule.granter for rule in DELEGATION}
    for role in set(Role) - granters:
        p = holder(role, STREET)
        assert not any(grant_authority(p, r, INSIDE) for r in Role), role


def test_nobody_grants_a_role_equal_to_or_above_their_own_except_admins_appointing_admins() -> None:
    exceptions = []
    for rule in DELEGATION:
        for role in rule.grants:
            if RANK[role] >= RANK[rule.granter]:
                exceptions.append((rule.granter, rule.scope, role))
    assert exceptions == [(Role.ADMIN, GLOBAL_ONLY, Role.ADMIN)]
    assert set(RANK) == set(Role)


def test_the_refusals_the_issue_reported() -> None:
    leader = holder(Role.LEADER, "yuhu")
    assert not grant_authority(leader, Role.LEADER, "yuhu")
    assert not grant_authority(leader, Role.LEADER, "yuhu/wanlou")
    dispatcher = holder(Role.DISPATCHER, STREET)
    for staff in (Role.GOVERNOR, Role.ASSISTANT, Role.SUPERVISOR):
        assert not grant_authority(dispatcher, staff, INSIDE)
        assert not grant_authority(leader, staff, INSIDE)
    with pytest.raises(PermissionDenied):
        domain.require_grant(dispatcher, Role.GOVERNOR, INSIDE)
    assert domain.require_grant(leader, Role.DISPATCHER, STREET) == Binding(Role.LEADER, "yuhu")


def test_management_needs_a_stronger_role_over_each_binding() -> None:
    dispatcher = holder(Role.DISPATCHER, STREET)
    leader = holder(Role.LEADER, "yuhu")
    admin = holder(Role.ADMIN, "*")
    governor = [Binding(Role.GOVERNOR, INSIDE)]
    assert domain.can_manage(dispatcher, f"{STREET}/taoyuan", governor)
    assert not domain.can_manage(dispatcher, STREET, [Binding(Role.DISPATCHER, STREET)])
    assert not domain.can_manage(leader, "yuhu", [Binding(Role.LEADER, "yuhu/wanlou")])
    assert domain.can_manage(leader, "yuhu", [Binding(Role.DISPATCHER, STREET)])
    # A global admin may repair any account, another admin's included.
    assert domain.can_manage(admin, "*", [Binding(Role.ADMIN, "*")])

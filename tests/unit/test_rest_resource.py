"""gateway.rest.resource: what a resource's standard and custom methods derive from the AIP names
(routes, RPCs, resource names, request messages, Location), and the request fill of declared params."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Path, Query

from gateway.points_resources import (
    Decision,
    Item,
    ItemPage,
    ItemPatch,
    NewItem,
    RedemptionStateName,
    Reversal,
)
from gateway.rest import Body
from gateway.rest.resource import Resource, camel, plural, snake
from gateway.rest.routes import Endpoints, Param, fill
from gov.points.v1 import points_pb2 as pb
from gov.tickets.v1 import tickets_pb2 as tpb

Id = Annotated[str, Path(max_length=64)]


class Declared(Endpoints):
    """Endpoints that keep each declaration (the FastAPI route is made as usual)."""

    def __init__(self) -> None:
        super().__init__(APIRouter(), lambda request: None, prefix="/api/v1/points", messages=pb)
        self.routes: dict[str, dict[str, Any]] = {}

    def route(self, method: str, path: str, name: str, **declaration: Any) -> None:
        super().route(method, path, name, **declaration)
        self.routes[name] = {"method": method, "path": path, **declaration}


def test_names_follow_the_aip_words() -> None:
    assert snake("ExchangePoint") == "exchange_point" and camel("approve_award") == "ApproveAward"
    assert plural("Activity") == "Activities" and plural("Award") == "Awards" and plural("Day") == "Days"


def test_standard_methods_of_a_child_resource() -> None:
    api = Declared()
    points = Resource(api, "/exchange-points", pb.ExchangePoint, ("exchange_point_id", Id), view=Item)
    items = Resource(api, "/items", pb.Item, ("item_id", Id), view=Item, page=ItemPage, parent=points)
    items.list("List", params={"include_inactive": Param(bool, False)})
    items.create("Create", body=NewItem)
    items.get("Get")
    items.update("Update", body=ItemPatch)
    items.delete("Delete")

    routes = api.routes
    assert {name: (r["method"], r["path"], r["rpc"]) for name, r in routes.items()} == {
        "list_items": ("GET", "/exchange-points/{exchange_point_id}/items", "ListItems"),
        "create_item": ("POST", "/exchange-points/{exchange_point_id}/items", "CreateItem"),
        "get_item": ("GET", "/exchange-points/{exchange_point_id}/items/{item_id}", "GetItem"),
        "update_item": ("PATCH", "/exchange-points/{exchange_point_id}/items/{item_id}", "UpdateItem"),
        "delete_item": ("DELETE", "/exchange-points/{exchange_point_id}/items/{item_id}", "DeleteItem"),
    }
    assert list(routes["list_items"]["params"]) == [
        "exchange_point_id",
        "include_inactive",
        "page_size",
        "page_token",
    ]
    assert routes["create_item"]["status_code"] == 201 and routes["delete_item"]["status_code"] == 204

    listed = routes["list_items"]["message"](
        exchange_point_id="p", include_inactive=True, page_size=5, page_token="t"
    )
    assert listed == pb.ListItemsRequest(
        parent="exchangePoints/p", include_inactive=True, page_size=5, page_token="t"
    )
    body = NewItem(display_name="洗衣液", kind="goods", price=30, stock=2)
    created = routes["create_item"]["message"](exchange_point_id="p", body=body)
    assert created.parent == "exchangePoints/p" and created.item.display_name == "洗衣液"
    assert created.item.price == 30 and created.item.kind == pb.ITEM_KIND_GOODS
    location = routes["create_item"]["location"](
        Item.of(pb.Item(name="exchangePoints/p/items/i9")), {"exchange_point_id": "p"}
    )
    assert location == "/exchange-points/p/items/i9"
    got = routes["get_item"]["message"](exchange_point_id="p", item_id="i")
    assert got == pb.GetItemRequest(name="exchangePoints/p/items/i")
    patch = ItemPatch.model_validate({"price": 40, "stock": 3})
    updated = routes["update_item"]["message"](exchange_point_id="p", item_id="i", body=patch)
    assert updated.item.name == "exchangePoints/p/items/i" and updated.item.price == 40
    assert sorted(updated.update_mask.paths) == ["price", "stock"]


def test_custom_methods_carry_the_name_the_body_and_the_request_id() -> None:
    api = Declared()
    awards = Resource(api, "/awards", pb.Award, ("award_id", Id), view=Item)
    awards.action("POST", "/reject", "reject_award", "Reject", body=Decision)
    route = api.routes["reject_award"]
    assert (route["path"], route["rpc"]) == ("/awards/{award_id}/reject", "RejectAward")
    rejected = route["message"](award_id="a1", body=Decision(note="不符合"))
    assert rejected == pb.RejectAwardRequest(name="awards/a1", note="不符合")

    entries = Resource(api, "/entries", pb.Entry, ("entry_id", Id), view=Item)
    entries.action("POST", "/reversal", "reverse_entry", "Reverse", body=Reversal, idempotent=True)
    reverse = api.routes["reverse_entry"]["message"]
    message = reverse(entry_id="e1", body=Reversal(reason="录入错误"), idempotency_key="k-1")
    assert message == pb.ReverseEntryRequest(name="entries/e1", reason="录入错误", request_id="k-1")
    fresh = reverse(entry_id="e1", body=Reversal(reason="录入错误"), idempotency_key=None)
    assert len(fresh.request_id) == 32  # without a key the gateway makes one


def test_a_route_with_a_body_that_cannot_fill_its_request_is_refused_when_declared() -> None:
    api = Declared()
    awards = Resource(api, "/awards", pb.Award, ("award_id", Id), view=Item)

    class NotABody:
        __name__ = "NotABody"

    with pytest.raises(TypeError):
        awards.action("POST", "/x", "x_award", "X", body=NotABody)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        api.post("/y", "y", rpc="GetAward", view=Item, summary="Y", body=Decision)


def test_fill_writes_params_into_their_fields() -> None:
    request = pb.ListRedemptionsRequest()
    params = {
        "exchange_point": Param(
            Annotated[str, Query()], "", encode=lambda p: f"exchangePoints/{p}" if p else ""
        ),
        "state": Param(RedemptionStateName | None, None),
        "size": Param(int, 50, field="page_size"),
    }
    fill(request, {"exchange_point": "e", "state": RedemptionStateName("reserved"), "size": 7}, params)
    assert request == pb.ListRedemptionsRequest(
        exchange_point="exchangePoints/e", state=pb.REDEMPTION_STATE_RESERVED, page_size=7
    )
    unset = pb.ListRedemptionsRequest()
    fill(unset, {"exchange_point": "", "state": None, "size": 50}, params)
    assert unset.state == 0 and unset.page_size == 50

    when = dt.datetime(2025, 5, 1, 8, 0)  # naive: UTC
    tickets = tpb.ListTicketsRequest()
    fill(tickets, {"start_time": when}, {"start_time": Param(dt.datetime | None, None)})
    assert tickets.start_time.ToDatetime(tzinfo=dt.UTC) == when.replace(tzinfo=dt.UTC)


def test_patch_of_keeps_the_create_bodys_types_and_limits() -> None:
    assert issubclass(ItemPatch, Body)
    assert set(ItemPatch.model_fields) == set(NewItem.model_fields) | {"active"}
    assert all(not f.is_required() for f in ItemPatch.model_fields.values())
    with pytest.raises(ValueError):
        ItemPatch.model_validate({"price": 0})  # Points: at least 1, as when created

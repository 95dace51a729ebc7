"""Query and header parameters every list or create endpoint shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query

PageSize = Annotated[int, Query(ge=1, le=200, description="Default 50")]
PageToken = Annotated[str, Query(max_length=500, description="`next_page_token` of the previous page")]
IdempotencyKey = Annotated[
    str | None, Header(max_length=100, description="A retry with the same key returns the first result")
]

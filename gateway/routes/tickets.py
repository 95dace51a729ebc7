"""Tickets: categories, units, tickets, transitions, timeline, statistics (work in progress)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["tickets"])

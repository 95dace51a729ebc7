"""Where a delivery goes, looked up when it is sent: robots and e-mail from this service's endpoints,
phone numbers from identity (never kept here)."""

from __future__ import annotations

from sqlalchemy import select

from govkit.db import Database
from services.notifications.channels import Address
from services.notifications.directory import Directory
from services.notifications.models import Endpoint


class NoAddress(Exception):
    """The recipient cannot be reached on the channel (no robot, no e-mail, no phone)."""


class AddressBook:
    def __init__(self, db: Database, directory: Directory) -> None:
        self.db = db
        self.directory = directory

    async def find(self, channel: str, recipient: str) -> Address:
        if channel == "sms":
            phone = await self.directory.phone(recipient)
            if not phone:
                raise NoAddress("no phone number")
            return Address(phone)
        async with self.db.sessions() as session:
            endpoint = await session.scalar(
                select(Endpoint)
                .where(Endpoint.owner == recipient, Endpoint.channel == channel)
                .order_by(Endpoint.create_time, Endpoint.id)
                .limit(1)
            )
        if endpoint is None:
            raise NoAddress(f"no {channel} endpoint")
        return Address(endpoint.address, endpoint.secret)

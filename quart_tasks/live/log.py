"""The event log as streams send it: each event framed once for every subscriber."""

from __future__ import annotations

from dataclasses import dataclass

from quart_tasks.tasks.event_log import LoggedEvent


@dataclass(frozen=True, slots=True)
class Event:
    """A logged event at its position, framed once for every subscriber that receives it."""

    position: int
    type: str
    owner_id: int
    payload: str
    sse: bytes
    ws: str

    @classmethod
    def of(cls, logged: LoggedEvent) -> Event:
        position, kind, payload = logged.position, logged.type, logged.payload
        return cls(
            position=position,
            type=kind,
            owner_id=logged.owner_id,
            payload=payload,
            sse=f"id: {position}\nevent: {kind}\ndata: {payload}\n\n".encode(),
            ws=f'{{"id":{position},"event":"{kind}","data":{payload}}}',
        )

"""What every route reaches through `request.app.state.web`: the station, the HTTP
settings, the live feed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.station.config import HttpSettings
from controller.station.web.feed import Feed

if TYPE_CHECKING:
    from controller.station.runtime import Station


@dataclass
class WebContext:
    station: Station
    settings: HttpSettings
    feed: Feed

    def wrote(self) -> None:
        """An action wrote events: publish and show them now."""
        self.feed.wake()
        self.station.wake_outbox()

"""What every route reaches through `request.app.state.web`: the station, the HTTP
settings, the live feed."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller.station.config import HttpSettings
from controller.station.web.feed import Feed

if TYPE_CHECKING:
    from controller.station.runtime import Station


@dataclass
class WebContext:
    station: Station
    settings: HttpSettings
    feed: Feed
    # fragments rendered per (batch, view, role), shared by the pages that show them
    # each tile's HTML per role, kept while the monitor keeps the same Tile object
    tiles_html: dict[tuple[str, frozenset[str]], tuple[Any, str]] = field(default_factory=dict)
    renders: OrderedDict[Any, tuple[Any, asyncio.Future[list[tuple[str, str]]]]] = field(
        default_factory=OrderedDict
    )

    def wrote(self) -> None:
        """An action wrote events: publish and show them now."""
        self.feed.wake()
        self.station.wake_outbox()

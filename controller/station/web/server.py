"""Serve the station's HTTP application with uvicorn, in the station's own event loop, until
the station stops. The station owns SIGTERM/SIGINT (uvicorn's own handlers stay off)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import structlog
import uvicorn

from controller.station.config import HttpSettings
from controller.station.web.app import create_app
from controller.station.web.context import WebContext
from controller.station.web.feed import Feed
from drivers.errors import ParameterError

if TYPE_CHECKING:
    from controller.station.runtime import Station

log = structlog.get_logger("fabline.station")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the station stops the server


def build(station: Station, settings: HttpSettings) -> tuple[WebContext, uvicorn.Server]:
    feed = Feed(station.db)
    station.monitor.listeners.append(feed.tile_changed)
    ctx = WebContext(station, settings, feed)
    config = uvicorn.Config(
        create_app(ctx),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.cert) if settings.cert else None,
        ssl_keyfile=str(settings.key) if settings.key else None,
        proxy_headers=True,
        forwarded_allow_ips=list(settings.proxies),
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    return ctx, _Server(config)


async def serve_http(
    station: Station, settings: HttpSettings, stop: asyncio.Event, ready: Callable[[], None]
) -> None:
    ctx, server = build(station, settings)
    feed_task = asyncio.create_task(ctx.feed.run(stop))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises what went wrong
                raise ParameterError(f"HTTP server on {settings.url} did not start")
            await asyncio.sleep(0.02)
        sockets = [s for srv in server.servers for s in (srv.sockets or ())]
        port = sockets[0].getsockname()[1] if sockets else settings.port
        station.http_url = settings.url.rsplit(":", 1)[0] + f":{port}"
        log.info("station.http", url=station.http_url)
        ready()
        await stop.wait()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise ParameterError(f"cannot listen on {settings.host}:{settings.port}") from None
    finally:
        server.should_exit = True
        await asyncio.gather(serving, feed_task, return_exceptions=True)

"""systemd's notify protocol, without a dependency: READY=1 once the station serves,
WATCHDOG=1 every half watchdog interval from the event loop (a stuck loop stops the pings
and systemd restarts the station), STOPPING=1 on the way out. Nothing happens when the
station is not run by systemd ($NOTIFY_SOCKET unset)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket


def notify(message: str) -> bool:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # abstract namespace
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(address)
        s.sendall(message.encode())
        return True
    return False


def watchdog_interval() -> float | None:
    """Seconds between pings systemd asks for (half its WatchdogSec), if it asks."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def keep_watchdog(stop: asyncio.Event) -> None:
    every = watchdog_interval()
    if every is None:
        return
    while not stop.is_set():
        notify("WATCHDOG=1")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)

"""Who drives a lot: the controller process that owns it (`host:pid`), while it lives.

A runner takes a lot by writing its owner and gives it back when it stops. A lot owned by
a live process is driven: hold, pause and abort go to it as requests. An owner on another
host is trusted while its station's registration is fresh (controller/station/registry.py);
a dead owner's lot may be taken by the next controller, which re-attaches to its job.
"""

from __future__ import annotations

import os
import socket

from controller.genealogy.models import Lot

ME = f"{socket.gethostname()}:{os.getpid()}"


def alive(owner: str) -> bool:
    """Whether the process `host:pid` runs (a process on another host: assumed so)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def driven(lot: Lot) -> bool:
    """A live controller (this process's runner included) drives the lot."""
    return bool(lot.owner) and (lot.owner == ME or alive(lot.owner or ""))


def driven_elsewhere(lot: Lot) -> bool:
    """A live controller other than this process drives the lot."""
    return bool(lot.owner) and lot.owner != ME and alive(lot.owner or "")

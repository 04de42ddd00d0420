"""Who drives a lot: an owner `host:pid` is alive while its process runs (on another host:
trusted), and a lot is driven — elsewhere, unless the owner is this process.

A dead process is pid 2**22 + 1: Linux hands out pids below `pid_max`, which is at most
2**22 (PID_MAX_LIMIT on 64-bit kernels), so that pid never names a process — no child needs
to be started and reaped to find one (the unit layer starts no subprocess)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from controller.genealogy.models import Lot
from controller.lots.lease import ME, alive, driven, driven_elsewhere

HOST = socket.gethostname()
NEVER = 2**22 + 1
DEAD = f"{HOST}:{NEVER}"
OTHER_LIVE = f"{HOST}:{os.getppid()}"  # pytest's parent process: alive, and not this one
REMOTE = "another-host.example:1234"


def test_the_dead_pid_is_beyond_what_this_kernel_hands_out() -> None:
    assert int(Path("/proc/sys/kernel/pid_max").read_text()) < NEVER


def test_this_process_is_the_owner_it_writes() -> None:
    assert f"{HOST}:{os.getpid()}" == ME


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        (ME, True),
        (OTHER_LIVE, True),
        (f"{HOST}:1", True),  # init: alive, though not ours to signal (EPERM) unless root
        (DEAD, False),
        (f"{HOST}:not-a-pid", False),
        (f"{HOST}:", False),
        (REMOTE, True),  # trusted while its station's registration is fresh (registry.py)
    ],
    ids=["me", "other-live", "init", "dead", "garbled-pid", "no-pid", "other-host"],
)
def test_alive(owner: str, expected: bool) -> None:
    assert alive(owner) is expected


def _lot(owner: str | None) -> Lot:
    return Lot(id="L1", recipe_id="r", recipe_version=1, recipe_hash="h", state="running",
               owner=owner)  # fmt: skip


@pytest.mark.parametrize(
    ("owner", "is_driven", "elsewhere"),
    [
        (None, False, False),
        ("", False, False),
        (ME, True, False),
        (OTHER_LIVE, True, True),
        (REMOTE, True, True),
        (DEAD, False, False),
    ],
    ids=["nobody", "empty", "me", "other-live", "other-host", "dead"],
)
def test_driven_and_driven_elsewhere(owner: str | None, is_driven: bool, elsewhere: bool) -> None:
    lot = _lot(owner)
    assert driven(lot) is is_driven
    assert driven_elsewhere(lot) is elsewhere

"""Real services for tests: a fresh PostgreSQL database, the Mosquitto broker.

A test that needs a service skips with a reason when it is absent, and fails instead when
FABLINE_REQUIRE_SERVICES=1 (CI sets it)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("FABLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("FABLINE_REQUIRE_SERVICES") == "1"


def _unavailable(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"{what} is required (FABLINE_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} not reachable")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for the duration; its URL."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError:
        _unavailable("PostgreSQL at 127.0.0.1:5432")
        raise
    name = f"fabline_test_{secrets.token_hex(4)}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def require_broker(host: str = "127.0.0.1", port: int = 1883) -> None:
    if not port_open(host, port):
        _unavailable(f"MQTT broker at {host}:{port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mosquitto:
    """A private broker on a free port, with persistence, started and stopped by pid — for
    tests that take a broker down."""

    def __init__(self, directory: Path, settings: str | None = None) -> None:
        """`settings`: mosquitto.conf lines to use instead of an open broker with
        persistence (the listener, persistence location and log lines are added)."""
        import shutil

        if shutil.which("mosquitto") is None:
            _unavailable("the mosquitto binary")
        self.port = free_port()
        self.dir = directory
        self.conf = directory / "mosquitto.conf"
        body = (
            settings
            if settings is not None
            else ("allow_anonymous true\npersistence true\nmax_queued_messages 100000\n")
        )
        # as root, mosquitto drops to user `mosquitto`, who cannot read a test's files
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"{body}\nlistener {self.port} 127.0.0.1\npersistence_location {directory}/\n"
            f"{user}autosave_interval 1\nlog_dest stderr\nlog_type information\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # the broker says when it listens
            if " running" in line:  # logged once every listener is open
                break
        if self.proc.poll() is not None or not port_open("127.0.0.1", self.port):
            raise RuntimeError(f"mosquitto did not start on port {self.port}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        proc = self.proc
        if proc is not None and proc.stderr is not None:
            for _ in proc.stderr:  # keep reading so the broker never blocks on its log
                pass

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

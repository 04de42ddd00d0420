"""Real services for tests: a fresh PostgreSQL database, the Mosquitto broker.

A test that needs a service skips with a reason when it is absent, and fails instead when
FABLINE_REQUIRE_SERVICES=1 (CI sets it)."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

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

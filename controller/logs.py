"""Logging: structlog to stderr, readable on a terminal, JSON in production.

`FABLINE_LOG` sets the level (debug, info, warning, error). Commands default to error:
what went wrong reaches the user as the one `error:` line, and a retried broker connection
is not worth a warning per try. Daemons (`fabline mes serve`) default to info. With
`FABLINE_LOG_JSON=1` the log is JSON lines. Stdlib loggers (pymodbus, aiomqtt) go through
the same renderer.
"""

from __future__ import annotations

import logging
import sys

import structlog

from controller.settings import settings


def configure_logging(
    level: str | None = None, *, json: bool | None = None, default: str = "error"
) -> None:
    env = settings()
    name = (level or env.log or default).upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.WARNING
    as_json = json if json is not None else env.log_json
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Libraries that report, often as hex dumps, what fabline already raises as typed errors.
    quiet = numeric if numeric <= logging.DEBUG else logging.CRITICAL
    for noisy in ("pymodbus", "mqtt", "aiomqtt"):
        logging.getLogger(noisy).setLevel(quiet)

"""The one error of the SPC library."""

from __future__ import annotations

from drivers.errors import FablineError


class SpcError(FablineError):
    """A chart definition, baseline, sample or spec the SPC library refuses. The message names
    the chart (or the argument) and the reason, in one line."""

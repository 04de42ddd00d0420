"""Process capability against the recipe's spec limits: Cp, Cpk (short-term), Pp, Ppk
(long-term).

    Cp  = (USL − LSL) / 6σ_within        Cpk = min(USL − x̄, x̄ − LSL) / 3σ_within
    Pp  = (USL − LSL) / 6σ_overall       Ppk = min(USL − x̄, x̄ − LSL) / 3σ_overall

σ_within is the short-term sigma: MR̄/d2 from the moving ranges of individual values, or
R̄/d2(n) from subgroups of n; σ_overall is the sample standard deviation of every value (n − 1).
A one-sided spec (only a min or only a max, as most recipe specs are) has no Cp or Pp, and
Cpk / Ppk are taken from the side it gives (CPU or CPL).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from controller.spc.charts import CONSTANTS
from drivers.errors import SpcError


@dataclass(frozen=True, slots=True)
class SpecLimits:
    """A recipe's spec on one result: `PlannedStep.spec[result]` is `(lsl, usl)`."""

    lsl: float | None = None
    usl: float | None = None

    def __post_init__(self) -> None:
        if self.lsl is None and self.usl is None:
            raise SpcError("a spec needs a lower or an upper limit")
        for name, v in (("lower", self.lsl), ("upper", self.usl)):
            if v is not None and not math.isfinite(v):
                raise SpcError(f"spec {name} limit {v!r} is not a finite number")
        if self.lsl is not None and self.usl is not None and not self.lsl < self.usl:
            raise SpcError(f"spec lower limit {self.lsl:g} must be below the upper {self.usl:g}")

    def contains(self, value: float) -> bool:
        return (self.lsl is None or value >= self.lsl) and (self.usl is None or value <= self.usl)

    @property
    def two_sided(self) -> bool:
        return self.lsl is not None and self.usl is not None


@dataclass(frozen=True, slots=True)
class Capability:
    n: int  # individual values
    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float | None  # None for a one-sided spec
    cpk: float
    pp: float | None
    ppk: float


def _index(spec: SpecLimits, mean: float, sigma: float) -> tuple[float | None, float]:
    """(Cp-like, Cpk-like) for one sigma."""
    sides = []
    if spec.usl is not None:
        sides.append((spec.usl - mean) / (3.0 * sigma))
    if spec.lsl is not None:
        sides.append((mean - spec.lsl) / (3.0 * sigma))
    potential = None
    if spec.usl is not None and spec.lsl is not None:
        potential = (spec.usl - spec.lsl) / (6.0 * sigma)
    return potential, min(sides)


def within_sigma(samples: Sequence[Sequence[float]]) -> float:
    """Short-term sigma: MR̄/d2(2) for single values, R̄/d2(n) for subgroups of n."""
    sizes = {len(s) for s in samples}
    if len(sizes) != 1:
        raise SpcError(f"capability needs samples of one size, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if n == 1:
        xs = [s[0] for s in samples]
        if len(xs) < 2:
            raise SpcError("capability needs at least 2 values")
        mr = math.fsum(abs(b - a) for a, b in itertools.pairwise(xs)) / (len(xs) - 1)
        return mr / CONSTANTS[2].d2
    if n not in CONSTANTS:
        raise SpcError(f"capability: subgroup size {n} outside 2–{max(CONSTANTS)}")
    return math.fsum(max(s) - min(s) for s in samples) / len(samples) / CONSTANTS[n].d2


def capability(samples: Sequence[Sequence[float]], spec: SpecLimits) -> Capability:
    """Cp, Cpk, Pp, Ppk of the samples (one value or one subgroup per piece)."""
    if not samples:
        raise SpcError("capability needs at least 2 values, got none")
    values = [v for s in samples for v in s]
    if not all(math.isfinite(v) for v in values):
        raise SpcError("capability: the data has a non-finite value")
    sw = within_sigma(samples)
    so = statistics.stdev(values)
    if not (sw > 0 and so > 0):
        raise SpcError("capability: the data has no variation (sigma 0)")
    mean = math.fsum(values) / len(values)
    cp, cpk = _index(spec, mean, sw)
    pp, ppk = _index(spec, mean, so)
    return Capability(len(values), mean, sw, so, cp, cpk, pp, ppk)

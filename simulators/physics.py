"""Small numeric helpers shared by the process models."""

from __future__ import annotations

import math
import random

R_GAS = 8.314  # J/(mol·K)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: Knuth's method for small means, normal approximation above 30."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def arrhenius(rate_ref: float, ea_j_mol: float, temp_c: float, ref_c: float) -> float:
    """rate at temp_c given rate_ref at ref_c and activation energy Ea."""
    t, t_ref = temp_c + 273.15, ref_c + 273.15
    return rate_ref * math.exp(-ea_j_mol / R_GAS * (1.0 / t - 1.0 / t_ref))


_D2 = (0.0, 0.0, 1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078)


def expected_range(n: int) -> float:
    """Expected range of n standard-normal samples, in σ (the d2 constant; asymptotic form of
    the expected maximum beyond the table), for coplanarity-style results without drawing
    every sample."""
    if n < len(_D2):
        return _D2[max(n, 0)]
    return _D2[-1] + _asymptotic_range(n) - _asymptotic_range(len(_D2) - 1)


def _asymptotic_range(n: int) -> float:
    s = math.sqrt(2.0 * math.log(n))
    return 2.0 * (s - (math.log(math.log(n)) + math.log(4 * math.pi)) / (2.0 * s))


def bilayer_curvature(e1: float, t1: float, e2: float, t2: float, strain: float) -> float:
    """κ (1/m) of a bilayer: layer 1 substrate, layer 2 cap; + when the cap shrinks more.
    κ = 6E₁E₂t₁t₂(t₁+t₂)Δε / (E₁²t₁⁴ + 4E₁E₂t₁³t₂ + 6E₁E₂t₁²t₂² + 4E₁E₂t₁t₂³ + E₂²t₂⁴)."""
    num = 6.0 * e1 * e2 * t1 * t2 * (t1 + t2) * strain
    den = (
        e1**2 * t1**4
        + 4 * e1 * e2 * t1**3 * t2
        + 6 * e1 * e2 * t1**2 * t2**2
        + 4 * e1 * e2 * t1 * t2**3
        + e2**2 * t2**4
    )
    return num / den

"""What each claim requires of a recipe, checked on every expansion.

A recipe names the claims it implements; steps carry a `role` from the vocabulary below.
For every claim in force (see `expand.active_claims`), the rule here must hold, or the
recipe is refused with the claim it violates — e.g. a heat radiation layer of gold violates
000:14 (copper, aluminium or an alloy), a resin sealing layer after dicing violates 000:16.

Roles: insulating_layer, bond, device_fab, through_holes, seed, through_electrode_rewiring,
thin, heat_radiation_layer, resin_seal, singulate (000); thermal_layer, attach_wafer,
underfill, balls, heat_spreader, stiffener (001); pad_metal, bosses, conductive_bodies,
trace_metal, dielectric_layer, partition_walls, trace_holes, dielectric_strips,
encapsulant_fill, grind_to_trace, expose_bodies, protective_layer, bump_holes, pad_holes,
attach_leads, attach_film, circuit_film, join_traces, hole_wall_plating, solder_bumps (002); bumps,
first_encapsulant, polish, chip_mount, heat_sink, second_encapsulant, expose_chip_back (003).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from controller.recipes.expand import Expansion, PlannedStep, Problem, ToolStepPlan
from controller.recipes.yaml_lines import Path

Found = tuple[Path, str] | None


@dataclass(frozen=True)
class ClaimRule:
    requires: str  # what the claim requires, in an engineer's words
    check: Callable[[Expansion], Found]


# -- building blocks ----------------------------------------------------------------------


def steps(exp: Expansion, role: str) -> list[PlannedStep]:
    return [s for s in exp.steps if s.role == role]


def tool_steps(exp: Expansion, role: str) -> list[ToolStepPlan]:
    return [s for s in exp.tool_steps if s.role == role]


def present(*roles: str) -> Callable[[Expansion], Found]:
    def check(exp: Expansion) -> Found:
        for role in roles:
            if not steps(exp, role):
                return ("steps",), f"no step has role {role!r}"
        return None

    return check


def in_order(*roles: str) -> Callable[[Expansion], Found]:
    """Each role is present and every step of one comes before every step of the next."""

    def check(exp: Expansion) -> Found:
        found = present(*roles)(exp)
        if found:
            return found
        for a, b in itertools.pairwise(roles):
            last_a, first_b = steps(exp, a)[-1], steps(exp, b)[0]
            if last_a.index > first_b.index:
                return first_b.path, f"step {first_b.id} ({b}) comes before {last_a.id} ({a})"
        return None

    return check


def values(role: str, param: str, allowed: Iterable[str]) -> Callable[[Expansion], Found]:
    """Every step of `role` that sets `param` sets it to one of `allowed`."""
    ok = set(allowed)

    def check(exp: Expansion) -> Found:
        for s in tool_steps(exp, role):
            if param in s.values and str(s.values[param]) not in ok:
                return (*s.path, "params", param), (
                    f"step {s.id} has {param} {s.values[param]}, not {' or '.join(sorted(ok))}"
                )
        return None

    return check


def uses(role: str, tool: str, *operations: str) -> Callable[[Expansion], Found]:
    """Some step of `role` runs on `tool` (one of `operations`, if given)."""

    def check(exp: Expansion) -> Found:
        for s in tool_steps(exp, role):
            if s.tool == tool and (not operations or s.operation in operations):
                return None
        what = f"{tool} {'/'.join(operations)}".strip()
        return ("steps",), f"no {role} step runs on {what}"

    return check


def sets(role: str, param: str) -> Callable[[Expansion], Found]:
    """Some step of `role` sets `param`."""

    def check(exp: Expansion) -> Found:
        if any(param in s.values for s in tool_steps(exp, role)):
            return None
        return ("steps",), f"no {role} step sets {param}"

    return check


def absent(role: str) -> Callable[[Expansion], Found]:
    def check(exp: Expansion) -> Found:
        found = steps(exp, role)
        return (found[0].path, f"step {found[0].id} ({role}) is not allowed") if found else None

    return check


def attribute(role: str, key: str, want: str) -> Callable[[Expansion], Found]:
    def check(exp: Expansion) -> Found:
        for s in steps(exp, role):
            if str(s.attributes.get(key)) != want:
                return (*s.path, "attributes"), f"step {s.id} needs attribute {key}: {want}"
        return None

    return check


def single(role: str) -> Callable[[Expansion], Found]:
    def check(exp: Expansion) -> Found:
        found = steps(exp, role)
        if len(found) != 1:
            return ("steps",), f"expected exactly one {role} step, found {len(found)}"
        return None

    return check


def no_tool_before(tool: str, role: str) -> Callable[[Expansion], Found]:
    def check(exp: Expansion) -> Found:
        anchor = steps(exp, role)
        if not anchor:
            return None
        for s in exp.tool_steps:
            if s.index < anchor[0].index and s.tool == tool:
                return s.path, f"step {s.id} runs the {tool} before {anchor[0].id} ({role})"
        return None

    return check


def all_of(*checks: Callable[[Expansion], Found]) -> Callable[[Expansion], Found]:
    def check(exp: Expansion) -> Found:
        for c in checks:
            found = c(exp)
            if found:
                return found
        return None

    return check


def ni_then_au(role: str) -> Callable[[Expansion], Found]:
    """A Ni/Au metal layer: a nickel sub-layer plated before the gold sub-layer."""
    nickel = {"NI_SULFAMATE", "EN_NI"}
    gold = {"AU_ELECTROLYTIC", "IMM_AU"}

    def check(exp: Expansion) -> Found:
        layer = [s for s in tool_steps(exp, role) if s.tool == "plating"]
        ni = [s for s in layer if str(s.values.get("chemistry")) in nickel]
        au = [s for s in layer if str(s.values.get("chemistry")) in gold]
        if not au:
            return ("steps",), f"no {role} step plates the gold sub-layer"
        if not ni:
            return au[0].path, f"gold sub-layer {au[0].id} has no nickel sub-layer beneath it"
        if ni[0].index > au[0].index:
            return au[0].path, f"gold {au[0].id} is plated before nickel {ni[0].id}"
        return None

    return check


def underfill_between_chip_and_unit(exp: Expansion) -> Found:
    """001:20: an underfill between each chip and its substrate unit. At wafer level it can
    only be pre-applied: a non-conductive film laminated on the bumped wafer before the attach
    and bonded through (wafer_to_panel underfill NCF); per unit, a dispense after singulation."""
    if not steps(exp, "underfill"):
        return ("steps",), "no step has role 'underfill'"
    found = tool_steps(exp, "underfill")
    attach, cut = tool_steps(exp, "attach_wafer"), steps(exp, "singulate")
    for s in found:
        pre_applied = (
            s.tool == "bonder"
            and s.operation == "laminate"
            and bool(attach)
            and s.index < attach[0].index
            and str(attach[0].values.get("underfill")) == "NCF"
        )
        per_unit = (
            s.tool == "coater"
            and s.operation == "dispense"
            and bool(cut)
            and s.index > cut[0].index
        )
        if not (pre_applied or per_unit):
            return s.path, (
                f"step {s.id} is neither a film laminated before the attach and bonded through"
                " (underfill NCF) nor a dispense after singulation"
            )
    return None


# -- the claims ---------------------------------------------------------------------------

PI_OR_EPOXY = ("POLYIMIDE", "LOW_T_PI", "PSPI", "EPOXY")
HEAT_METALS = ("CU", "AL", "ALCU", "ALSI")

RULES: dict[tuple[str, int], ClaimRule] = {
    # 000: wafer-level stacked package
    ("000", 11): ClaimRule(
        "wafers bonded through an insulating layer, non-device face down, devices made on"
        " each bonded wafer, the finished stack diced",
        all_of(
            in_order("insulating_layer", "singulate"),
            in_order("bond", "singulate"),
            present("device_fab"),
            attribute("bond", "orientation", "non_device_down"),
        ),
    ),
    ("000", 12): ClaimRule(
        "a heat radiation layer on the non-device surface of the lowest wafer, before dicing",
        in_order("heat_radiation_layer", "singulate"),
    ),
    ("000", 13): ClaimRule(
        "the heat radiation layer formed by thin-film technology",
        uses("heat_radiation_layer", "sputter", "deposit"),
    ),
    ("000", 14): ClaimRule(
        "a heat radiation layer of copper, aluminium or an alloy",
        all_of(
            values("heat_radiation_layer", "target", HEAT_METALS),
            values("heat_radiation_layer", "chemistry", ("CU_ACID",)),
        ),
    ),
    ("000", 15): ClaimRule(
        "an insulating layer of polyimide or epoxy resin",
        all_of(
            values("insulating_layer", "material", PI_OR_EPOXY),
            values("bond", "adhesive", ("POLYIMIDE", "EPOXY")),
        ),
    ),
    ("000", 16): ClaimRule(
        "a resin sealing layer on the uppermost wafer, formed before dicing (with claim 8)",
        in_order("resin_seal", "singulate"),
    ),
    ("000", 17): ClaimRule(
        "re-wiring and through-electrode formed simultaneously in one plating step",
        all_of(
            uses("through_electrode_rewiring", "plating", "electroplate"),
            values("through_electrode_rewiring", "feature", ("TSV_RDL",)),
        ),
    ),
    ("000", 18): ClaimRule(
        "re-wiring and through-electrode of copper or its alloy",
        values("through_electrode_rewiring", "chemistry", ("CU_ACID",)),
    ),
    # 001: flip chip with a thermal enhance layer
    ("001", 19): ClaimRule(
        "wafer with bumps and a thermally conductive polymer layer attached face-down to a"
        " substrate, wafer + layer + substrate singulated in one pass, balls on each unit",
        all_of(
            in_order("thermal_layer", "attach_wafer", "singulate", "balls"),
            uses("attach_wafer", "bonder", "wafer_to_panel"),
            single("singulate"),
            no_tool_before("dicing", "attach_wafer"),
        ),
    ),
    ("001", 20): ClaimRule(
        "an underfill between chips and substrate units", underfill_between_chip_and_unit
    ),
    ("001", 21): ClaimRule(
        "the thermally conductive polymer layer is a thermally conductive film",
        values("thermal_layer", "material", ("TC_FILM",)),
    ),
    ("001", 5): ClaimRule(
        "the thermally conductive polymer layer comprises thermally conductive epoxy",
        values("thermal_layer", "material", ("TC_EPOXY",)),
    ),
    ("001", 9): ClaimRule(
        "an adhesive connecting the substrate and the cap-like heat spreader",
        all_of(
            values("heat_spreader", "part", ("CAP_SPREADER",)), sets("heat_spreader", "adhesive")
        ),
    ),
    ("001", 17): ClaimRule(
        "solder balls on the lower surface of the substrate",
        all_of(in_order("attach_wafer", "balls"), uses("balls", "ball")),
    ),
    ("001", 25): ClaimRule(
        "the thermally conductive polymer layer is a thermally conductive epoxy",
        values("thermal_layer", "material", ("TC_EPOXY",)),
    ),
    ("001", 6): ClaimRule(
        "a heat spreader attached on the thermal enhance layer",
        all_of(in_order("singulate", "heat_spreader"), uses("heat_spreader", "bonder", "attach")),
    ),
    ("001", 7): ClaimRule(
        "a flat heat spreader", values("heat_spreader", "part", ("FLAT_SPREADER",))
    ),
    ("001", 8): ClaimRule(
        "a cap-like heat spreader", values("heat_spreader", "part", ("CAP_SPREADER",))
    ),
    ("001", 10): ClaimRule("a copper heat spreader", values("heat_spreader", "material", ("CU",))),
    ("001", 11): ClaimRule(
        "a stiffener ring between substrate and heat spreader",
        all_of(in_order("stiffener", "heat_spreader"), values("stiffener", "part", ("STIFFENER",))),
    ),
    ("001", 13): ClaimRule("a silicon heat spreader", values("heat_spreader", "material", ("SI",))),
    # 002: wafer-level CSP with offset traces
    ("002", 24): ClaimRule(
        "conductive bodies, dielectric layer etched into partition walls, encapsulant between"
        " the walls, protective layer, bump-through-holes, solder bumps",
        in_order(
            "conductive_bodies",
            "dielectric_layer",
            "partition_walls",
            "encapsulant_fill",
            "protective_layer",
            "bump_holes",
            "solder_bumps",
        ),
    ),
    ("002", 25): ClaimRule(
        "metal plating layers on the bonding pads before the conductive bodies",
        all_of(in_order("pad_metal", "conductive_bodies"), uses("pad_metal", "plating")),
    ),
    ("002", 26): ClaimRule(
        "conductive bodies of conductive paste",
        values("conductive_bodies", "material", ("CONDUCTIVE_PASTE",)),
    ),
    ("002", 27): ClaimRule(
        "the encapsulant is epoxy resin", values("encapsulant_fill", "material", ("EPOXY",))
    ),
    ("002", 28): ClaimRule(
        "the encapsulant is polyimide",
        values("encapsulant_fill", "material", ("POLYIMIDE", "LOW_T_PI", "PSPI")),
    ),
    ("002", 29): ClaimRule(
        "the encapsulant is photo-sensitive ink",
        values("encapsulant_fill", "material", ("PHOTO_INK",)),
    ),
    ("002", 30): ClaimRule(
        "the trace part includes a metal layer", uses("trace_metal", "plating", "electroplate")
    ),
    ("002", 31): ClaimRule("a nickel sub-layer and a gold sub-layer", ni_then_au("trace_metal")),
    ("002", 32): ClaimRule(
        "partition walls and encapsulant ground to the trace height before the protective layer",
        in_order("encapsulant_fill", "grind_to_trace", "protective_layer"),
    ),
    ("002", 33): ClaimRule(
        "dielectric bosses on the plated pads before the conductive bodies",
        in_order("pad_metal", "bosses", "conductive_bodies"),
    ),
    ("002", 34): ClaimRule(
        "conductive bodies, dielectric layer ground until the bodies are exposed, protective"
        " layer, bump-through-holes, solder bumps",
        in_order(
            "conductive_bodies",
            "dielectric_layer",
            "expose_bodies",
            "protective_layer",
            "bump_holes",
            "solder_bumps",
        ),
    ),
    ("002", 35): ClaimRule(
        "the trace part includes a metal layer", uses("trace_metal", "plating", "electroplate")
    ),
    ("002", 36): ClaimRule("a nickel sub-layer and a gold sub-layer", ni_then_au("trace_metal")),
    ("002", 37): ClaimRule(
        "pad-through-holes in the protective layer filled with encapsulant",
        in_order("protective_layer", "pad_holes", "encapsulant_fill", "solder_bumps"),
    ),
    ("002", 38): ClaimRule(
        "dielectric layer with trace-through-holes, conductive bodies filling them, protective"
        " layer, bump-through-holes, solder bumps",
        in_order(
            "dielectric_layer",
            "trace_holes",
            "conductive_bodies",
            "protective_layer",
            "bump_holes",
            "solder_bumps",
        ),
    ),
    ("002", 39): ClaimRule(
        "pad-through-holes in the protective layer filled with encapsulant",
        in_order("protective_layer", "pad_holes", "encapsulant_fill", "solder_bumps"),
    ),
    ("002", 40): ClaimRule(
        "the trace part includes a metal layer", uses("trace_metal", "plating", "electroplate")
    ),
    ("002", 41): ClaimRule("a nickel sub-layer and a gold sub-layer", ni_then_au("trace_metal")),
    ("002", 42): ClaimRule(
        "dielectric layer etched into strips, a plating layer on each strip, protective layer,"
        " bump-through-holes, solder bumps",
        in_order(
            "dielectric_layer",
            "dielectric_strips",
            "trace_metal",
            "protective_layer",
            "bump_holes",
            "solder_bumps",
        ),
    ),
    ("002", 43): ClaimRule(
        "the trace part includes a metal layer", uses("trace_metal", "plating", "electroplate")
    ),
    ("002", 44): ClaimRule("a nickel sub-layer and a gold sub-layer", ni_then_au("trace_metal")),
    ("002", 45): ClaimRule(
        "leads attached beside the pads, protective layer with bump- and pad-through-holes,"
        " conductive bodies in the pad holes, encapsulant over them, solder bumps",
        all_of(
            in_order(
                "attach_leads",
                "protective_layer",
                "pad_holes",
                "conductive_bodies",
                "encapsulant_fill",
                "solder_bumps",
            ),
            in_order("protective_layer", "bump_holes", "solder_bumps"),
        ),
    ),
    ("002", 46): ClaimRule(
        "each conductive body is a bonding wire", uses("conductive_bodies", "wirebonder")
    ),
    ("002", 47): ClaimRule(
        "each conductive body is conductive paste",
        values("conductive_bodies", "material", ("CONDUCTIVE_PASTE",)),
    ),
    ("002", 21): ClaimRule(
        "metal plating layers on the bonding pads, under the film's trace ends",
        all_of(in_order("pad_metal", "attach_film"), uses("pad_metal", "plating")),
    ),
    ("002", 22): ClaimRule(
        "the film brings an adhesive on its trace-forming surface",
        all_of(present("circuit_film"), attribute("circuit_film", "adhesive", "trace_side")),
    ),
    ("002", 48): ClaimRule(
        "a printed circuit film with traces and bump-through-holes attached trace side down, its"
        " trace ends joined to the pads, solder bumps in its holes",
        all_of(
            in_order("circuit_film", "attach_film", "join_traces", "solder_bumps"),
            attribute("attach_film", "orientation", "trace_side_down"),
            uses("join_traces", "bonder", "gang_bond"),
        ),
    ),
    ("002", 49): ClaimRule(
        "a printed circuit film with pad-through-holes attached back side down, a conductive"
        " layer plated on each hole wall, solder bumps on the trace extensions",
        all_of(
            in_order("circuit_film", "attach_film", "hole_wall_plating", "solder_bumps"),
            attribute("attach_film", "orientation", "back_side_down"),
            uses("hole_wall_plating", "plating", "electroless", "electroplate"),
        ),
    ),
    # 003: substrate-first flip chip
    ("003", 1): ClaimRule(
        "bumps with flat ends on the substrate, a first encapsulant leaving their ends exposed,"
        " the chip mounted face-down on them, a second encapsulant, balls on the second surface",
        all_of(
            in_order("bumps", "first_encapsulant", "chip_mount", "second_encapsulant", "balls"),
            uses("chip_mount", "bonder", "flip_chip"),
        ),
    ),
    ("003", 2): ClaimRule("the conductive elements are conductive bumps", uses("bumps", "ball")),
    ("003", 3): ClaimRule(
        "bumps of tin, lead or tin/lead alloy", values("bumps", "alloy", ("SN100", "SNPB63"))
    ),
    ("003", 4): ClaimRule(
        "the first encapsulant polished together with the bumps before the chip is mounted",
        all_of(in_order("first_encapsulant", "polish", "chip_mount"), uses("polish", "grinder")),
    ),
    ("003", 5): ClaimRule(
        "bond pads on the chip-mounting area, the conductive elements bonded to them",
        all_of(uses("bumps", "ball", "ball_place"), sets("bumps", "pad_diameter")),
    ),
    ("003", 6): ClaimRule(
        "the chip's back covered by the second encapsulant", absent("expose_chip_back")
    ),
    ("003", 7): ClaimRule(
        "the chip's back exposed from the second encapsulant",
        in_order("second_encapsulant", "expose_chip_back"),
    ),
    ("003", 8): ClaimRule(
        "a heat sink attached after the chip, encapsulated by the second encapsulant",
        in_order("chip_mount", "heat_sink", "second_encapsulant"),
    ),
}


def check_claims(exp: Expansion) -> list[Problem]:
    problems = []
    for seed, number in sorted(exp.active_claims):
        rule = RULES.get((seed, number))
        if rule is None:  # a recipe may only claim what fabline can check
            problems.append(
                Problem(("claims",), f"claim {seed}:{number} has no rule in fabline to check it")
            )
            continue
        found = rule.check(exp)
        if found:
            path, reason = found
            problems.append(
                Problem(path, f"violates claim {seed}:{number} ({rule.requires}): {reason}")
            )
    return problems

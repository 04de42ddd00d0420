"""The recipe format's process control, without a line: feed-forward formulas (parsing, units,
binding to earlier steps, the range they can take), queue-time limits and rework steps, the
warning policy, and the pure run-time functions the engine calls (gate, qtime, classifier)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.recipes import feedforward, find, formula, qtime, tool_warnings
from controller.recipes.catalog import RecipeError, load
from controller.recipes.expand import ToolStepPlan
from controller.recipes.formula import FormulaError, Num, Par, Ref
from controller.recipes.gate import gate
from controller.recipes.history import History
from drivers.interfaces import interface_for

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


# -- formulas --------------------------------------------------------------------------------


def test_formula_grammar_and_evaluation() -> None:
    node = formula.parse("725 µm + sum(bond.blt) + 1.4 * liner.bottom_thickness - stack_x")
    assert formula.refs(node) == [
        Ref("bond", "blt", total=True),
        Ref("liner", "bottom_thickness"),
    ]
    assert formula.params(node) == ["stack_x"]
    values = {Ref("bond", "blt", True): 16.0, Ref("liner", "bottom_thickness"): 0.5,
              Par("stack_x"): 1.0}  # fmt: skip
    assert formula.evaluate(node, values.__getitem__) == pytest.approx(725 + 16 + 0.7 - 1)
    m = formula.parse("min(thickness - bumps-reflow.ball_height, 250 µm - bumps-reflow.bump_width)")
    assert formula.text_of(m) == (
        "min(thickness - bumps-reflow.ball_height, 250 µm - bumps-reflow.bump_width)"
    )
    assert formula.parse("-1675 ppm") == formula.parse("-(1675 ppm)")
    assert isinstance(formula.parse("2 µm"), Num)


@pytest.mark.parametrize(
    ("text", "unit", "why"),
    [
        ("thin.thickness + 30", "µm", "cannot add a plain number"),
        ("30 µm * 2 µm", "µm", "product of two quantities"),
        ("30 kg", "µm", "a mass, expected a length"),
        ("30 furlong", "µm", "unknown unit"),
        ("sum(30 µm)", "µm", "sum() takes one STEP.RESULT"),
        ("(30 µm", "µm", "unexpected end"),
        ("30 µm 40 µm", "µm", "unexpected"),
        ("", "µm", "empty formula"),
        ("25 K", "°C", "write it in °C"),
    ],
)
def test_formula_errors_say_why(text: str, unit: str, why: str) -> None:
    with pytest.raises(FormulaError, match=re.escape(why)):
        node = formula.parse(text)
        formula.check_units(node, unit, lambda r: "µm")


# -- the format, at load and expansion -------------------------------------------------------


def _data(recipe_id: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(find(recipe_id).path.read_text())
    return data


def _problems(tmp_path: Path, data: dict[str, Any], options: dict[str, str] | None = None) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    try:
        load(path).expand(options or {})
    except RecipeError as e:
        return "\n".join(e.problems)
    return ""


def _dice(data: dict[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = next(s for s in data["steps"] if s.get("id") == "dice")
    return step


@pytest.mark.parametrize(
    ("edit", "options", "expect"),
    [
        ({"cut_depth": "stack_thickness + 30"}, {},
         "cannot add a plain number to a quantity in µm"),
        ({"cut_depth": "nosuch.depth + 30 µm"}, {}, "no step with id 'nosuch'"),
        ({"cut_depth": "heat-layer.depth + 30 µm"}, {}, "sputter deposit reports no 'depth'"),
        ({"cut_depth": "dice.kerf_width + 30 µm"}, {}, "no step dice runs before this step"),
        ({"cut_depth": "heat-layer.thickness + 760 µm"}, {"heat_layer": "none"},
         "no step heat-layer runs before this step with options"),
        ({"cut_depth": "sum(seed.rate) + 30 µm"}, {}, "has no spec with min and max on rate"),
        ({"cut_depth": "cut_depth + 30 µm"}, {}, "formulas refer to each other in a circle"),
        ({"blade": "stack_thickness"}, {}, "blade is a choice; only numbers are fed forward"),
        ({"cut_depth": "stack_thickness + 80 µm"}, {}, "does not cut through"),
    ],
)  # fmt: skip
def test_feed_forward_problems_name_file_line_and_path(
    tmp_path: Path, edit: dict[str, str], options: dict[str, str], expect: str
) -> None:
    data = _data("stacked-wlp-000-11")
    _dice(data)["feed_forward"].update(edit)
    lines = _problems(tmp_path, data, options)
    assert expect in lines, lines
    assert "r.yaml:" in lines and "steps.7." in lines


def test_fed_setpoints_are_checked_at_the_edges_of_the_measured_spec(tmp_path: Path) -> None:
    """80 µm past a stack the tool would cut through the tape at every corner; 50 µm past
    it only when the measurements sit at the edges of their specs: both refused, naming the
    measurements."""
    data = _data("stacked-wlp-000-11")
    # planned: stack 775 µm (thin 50 µm), cut 806 µm (bond lines 8 µm): 31 µm into the tape;
    # but a 55 µm thin wafer under two 2 µm bond lines leaves the blade 14 µm short
    _dice(data)["feed_forward"]["stack_thickness"] = "725 µm + sum(thin.thickness)"
    _dice(data)["feed_forward"]["cut_depth"] = "790 µm + 2 * sum(bond.blt)"
    lines = _problems(tmp_path, data, {"heat_layer": "none"})
    assert "fed-forward setpoints fail for measurements at the edge of their spec" in lines
    assert "sum(thin.thickness) = 55 µm" in lines and "does not cut through" in lines


def test_expansion_plans_with_spec_midpoints_and_reports_the_range() -> None:
    exp = find("stacked-wlp-000-11").expand({"layers": "three"})
    dice = exp.step("dice")
    assert dice is not None
    fed = dice.feed_forward["stack_thickness"]
    assert [s.ids for s in fed.sources][:2] == [("bond@layer=2", "bond@layer=3"),
                                                 ("thin@layer=2", "thin@layer=3")]  # fmt: skip
    # W1 + 2 bond lines of 2–14 µm + 2 thinned wafers of 45–55 µm + heat layer
    assert fed.low == pytest.approx(725 + 4 + 90 + 0.085 + 1.8)
    assert fed.high == pytest.approx(725 + 28 + 110 + 0.115 + 2.2)
    assert fed.planned == pytest.approx((fed.low + fed.high) / 2)
    assert dice.values["cut_depth"] == pytest.approx(fed.planned + 30)


def test_queue_times_attach_to_their_steps_and_reworks() -> None:
    exp = find("stacked-wlp-000-11").expand({"layers": "three", "resin_seal": "with"})
    pre = exp.step("pre-coat")
    assert pre is not None and not pre.queue_limits  # layer 2: no Cu before it
    layer3 = next(s for s in exp.steps if s.id == "pre-coat@layer=3")
    (limit,) = layer3.queue_limits
    assert (limit.from_id, limit.max_s, limit.rework_id) == (
        "seed-etch-ti@layer=2",
        12 * 3600,
        "cu-reclean@layer=3",
    )
    rework = next(s for s in exp.steps if s.id == "cu-reclean@layer=3")
    assert rework.rework and rework.reworks == (limit,)
    seal = exp.step("seal-clean")
    assert seal is not None and seal.queue_limits[0].from_id == "seed-etch-ti@layer=3"


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda d: d["queue_times"][0].update({"from": "nosuch"}), "no step with id 'nosuch'"),
        (lambda d: d["queue_times"][0].update(rework="pre-coat"), "not marked `rework: true`"),
        (lambda d: d["queue_times"][0].update(max="12 kg"), "expected a time"),
        (lambda d: d["queue_times"][0].pop("rework"), "or rework route goes to rework"),
        (lambda d: d["warning_policy"]["hold"].append("NOT_A_WARNING"),
         "no tool of this recipe reports warning 'NOT_A_WARNING'"),
        (lambda d: d["steps"][0]["steps"][4]["warnings"].update(hold=["ARCING"]),
         "bonder reports no warning 'ARCING'"),
    ],
)  # fmt: skip
def test_queue_time_and_warning_problems(tmp_path: Path, edit: Any, expect: str) -> None:
    data = _data("stacked-wlp-000-11")
    edit(data)
    assert expect in _problems(tmp_path, data)


def test_warning_policy_is_limited_to_what_the_tool_reports() -> None:
    exp = find("stacked-wlp-000-11").expand()
    bond = exp.step("bond")
    assert bond is not None
    assert bond.warnings_hold == {"VOID_HIGH"}  # UNDERCURED expected there, cured next
    assert bond.warnings_expected == {"UNDERCURED"}
    dice = exp.step("dice")
    assert dice is not None and dice.warnings_hold == frozenset()


def test_external_work_orders_are_resolved() -> None:
    exp = find("stacked-wlp-000-11").expand({"layers": "three"})
    fab = [s.external for s in exp.steps if s.kind == "external"]
    assert fab == [
        "front-end device fabrication on layer 2 (a-IGZO TFT, ≤ 250 °C)",
        "front-end device fabrication on layer 3 (a-IGZO TFT, ≤ 250 °C)",
    ]


# -- run time: history, feed-forward, queue times, warnings, the gate -------------------------


class _Run:
    def __init__(self, index: int, results: dict[str, Any], ended: datetime,
                 state: str = "done") -> None:  # fmt: skip
        self.step_index, self.results, self.ended_at, self.state = index, results, ended, state
        self.id = None


def _history_for(exp: Any, measured: dict[str, dict[str, float]], ended: datetime) -> History:
    runs = []
    for s in exp.steps:
        if s.id in measured:
            runs.append(_Run(s.index, {k: {"value": v, "unit": "µm"}
                                       for k, v in measured[s.id].items()}, ended))  # fmt: skip
    return History.from_records(runs)


def test_resolve_computes_the_setpoints_from_the_measurements() -> None:
    exp = find("stacked-wlp-000-11").expand({"heat_layer": "none"})
    dice = exp.step("dice")
    assert dice is not None
    h = _history_for(exp, {"bond@layer=2": {"blt": 9.0}, "thin@layer=2": {"thickness": 51.0}},
                     NOW)  # fmt: skip
    resolved = feedforward.resolve(dice, h)
    assert resolved.values["stack_thickness"] == pytest.approx(785.0)
    assert resolved.values["cut_depth"] == pytest.approx(815.0)
    assert resolved.params["cut_depth"] == "815 µm"
    sp = feedforward.setpoints(resolved)
    assert sp["stack_thickness"]["inputs"] == {"bond@layer=2.blt": 9.0,
                                               "thin@layer=2.thickness": 51.0}  # fmt: skip
    assert sp["cut_depth"]["formula"] == "stack_thickness + 30 µm"
    with pytest.raises(feedforward.FeedForwardError, match=r"no measured thin@layer=2\.thickness"):
        feedforward.resolve(dice, _history_for(exp, {"bond@layer=2": {"blt": 9.0}}, NOW))


def test_each_piece_runs_on_its_own_measurements_and_a_refusal_names_it() -> None:
    """A step run per wafer feeds each wafer's own measurement forward (the lot's mean is
    what a batch job and the record of the step use); one wafer the tool would refuse
    refuses the step, naming the wafer, before any job starts."""
    exp = find("stacked-wlp-000-11").expand({"heat_layer": "none"})
    via = next(s for s in exp.steps if s.id == "via-expose@layer=2")
    resist = next(s for s in exp.steps if s.id == "via-resist@layer=2")
    h = History()

    def coated(**thickness: float) -> None:
        pieces = {f"L-{w}": {"thickness": t} for w, t in thickness.items()}
        mean = sum(thickness.values()) / len(thickness)
        h.record(resist.index, {"thickness": mean}, NOW, pieces)

    coated(W01=20.0, W02=24.0)
    resolved = feedforward.resolve(via, h)
    assert isinstance(resolved, ToolStepPlan)
    assert resolved.values["resist_thickness"] == pytest.approx(22.0)
    w2 = feedforward.for_job(resolved, ["L-W02"])
    assert w2.values["resist_thickness"] == pytest.approx(24.0)
    assert feedforward.setpoints(w2)["resist_thickness"]["inputs"] == {
        "via-resist@layer=2.thickness": 24.0
    }
    assert feedforward.for_job(resolved, ["L-W01", "L-W02"]) is resolved  # a batch: the mean
    assert feedforward.for_job(resolved, ["L-W09"]) is resolved  # not measured on its own
    coated(W01=20.0, W02=60.0)  # the mean (40 µm) passes
    with pytest.raises(feedforward.FeedForwardError, match=r"piece L-W02: .*60 µm outside"):
        feedforward.resolve(via, h)


def test_resolve_refuses_a_setpoint_the_tool_would_refuse() -> None:
    exp = find("stacked-wlp-000-11").expand({"heat_layer": "none"})
    via = next(s for s in exp.steps if s.id == "via-expose@layer=2")
    h = _history_for(exp, {"via-resist@layer=2": {"thickness": 150.0}}, NOW)
    with pytest.raises(feedforward.FeedForwardError, match="resist_thickness = 150 µm"):
        feedforward.resolve(via, h)


def test_queue_time_expiry_rework_and_waiver() -> None:
    exp = find("stacked-wlp-000-11").expand({"layers": "three"})
    to = next(s for s in exp.steps if s.id == "pre-coat@layer=3")
    rework = next(s for s in exp.steps if s.id == "cu-reclean@layer=3")
    etched = next(s for s in exp.steps if s.id == "seed-etch-ti@layer=2")
    h = History.from_records([_Run(etched.index, {}, NOW - timedelta(hours=13))])
    assert [e.waited_s for e in qtime.expired(to, h, NOW)] == [13 * 3600]
    assert len(qtime.rework_due(rework, h, NOW)) == 1
    assert not qtime.expired(to, h, NOW - timedelta(hours=2))  # 11 h: in time
    # the rework ran: the clock restarts at its end
    h.record(rework.index, {}, NOW - timedelta(minutes=10))
    assert not qtime.expired(to, h, NOW)
    # a hold already raised for this limit, then released, waives it
    waived = History.from_records(
        [_Run(etched.index, {}, NOW - timedelta(hours=13))],
        [{"type": "qtime_expired", "data": {"action": "hold", "step_index": to.index,
                                             "from_index": etched.index}}],
    )  # fmt: skip
    assert not qtime.expired(to, waived, NOW)


def test_gate_skips_runs_or_holds() -> None:
    exp = find("stacked-wlp-000-11").expand({"layers": "three"})
    to = next(s for s in exp.steps if s.id == "pre-coat@layer=3")
    rework = next(s for s in exp.steps if s.id == "cu-reclean@layer=3")
    etched = next(s for s in exp.steps if s.id == "seed-etch-ti@layer=2")
    fresh = History.from_records([_Run(etched.index, {}, NOW - timedelta(hours=1))])
    assert gate(exp, rework, fresh, NOW).skip is not None
    assert gate(exp, to, fresh, NOW).clear
    old = History.from_records([_Run(etched.index, {}, NOW - timedelta(hours=20))])
    g = gate(exp, rework, old, NOW)
    assert g.hold is None and g.skip is None
    assert [(e.type, e.data.action) for e in g.events] == [("qtime_expired", "rework")]
    g = gate(exp, to, old, NOW)  # the rework did not run: hold
    assert g.hold is not None and g.hold[0] == "qtime"
    assert "queue time 20 h since seed-etch-ti@layer=2" in g.hold[1]


def test_warnings_are_classified_by_the_recipe() -> None:
    exp = find("stacked-wlp-000-11").expand()
    bond = exp.step("bond")
    assert bond is not None
    bonder = interface_for("bonder")
    verdicts = tool_warnings.classify(bond, [bonder.alarm(381), bonder.alarm(380)])
    assert [(v.alarm.name, v.hold, v.expected) for v in verdicts] == [
        ("UNDERCURED", False, True),
        ("VOID_HIGH", True, False),
    ]
    assert tool_warnings.hold_reason(bond, verdicts) == (
        "tool warning at step bond@layer=2: 380 VOID_HIGH (void area above 5 %)"
    )
    assert tool_warnings.hold_reason(bond, verdicts[:1]) is None
    assert verdicts[0].data()["action"] == "record"


def test_simulated_partner_returns_spec_midpoints_with_units() -> None:
    exp = find("wlcsp-002-49").expand()
    film = exp.step("film")
    assert film is not None
    data = feedforward.simulated_returns(film, "L1")
    assert data["artwork_scale"] == "-1675 ppm"
    assert data["film_lot"] == "SIM-L1-film-film_lot"

"""Every published tool interface is self-consistent, fits the wire maps, and its sheet in
docs/tools is up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.interface import ToolInterface
from drivers.interface_doc import render
from drivers.interfaces import KINDS, interface_for
from drivers.protocols import modbus_map as mm

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tools"


@pytest.fixture(params=KINDS)
def iface(request: pytest.FixtureRequest) -> ToolInterface:
    return interface_for(request.param)


def test_defaults_lie_within_their_own_ranges(iface: ToolInterface) -> None:
    for op in iface.operations:
        for p in op.params:
            if p.default is not None:
                assert (
                    p.coerce(p.default if p.is_choice else f"{p.default} {p.unit}") == p.default
                ), f"{iface.kind}.{op.name}.{p.name}"


def test_fits_the_wire_maps(iface: ToolInterface) -> None:
    codes = [op.code for op in iface.operations]
    assert len(set(codes)) == len(codes) and all(c > 0 for c in codes)
    for op in iface.operations:
        assert len(op.params) <= mm.PARAM_SLOTS, op.name
        assert len(op.results) <= mm.RESULT_SLOTS, op.name
        assert len({p.name for p in op.params}) == len(op.params), op.name
    assert len(iface.consumables) <= mm.CONSUMABLE_SLOTS
    assert len(iface.setup) <= mm.SETUP_SLOTS
    if iface.protocol == "modbus":  # a setup field is a u16 bitmask register
        assert all(len(f.choices) <= 16 for f in iface.setup)
    alarm_codes = [a.code for a in iface.alarms]
    assert len(set(alarm_codes)) == len(alarm_codes)
    for field, installed in iface.default_setup.items():
        assert set(installed) <= set(iface.setup_field(field).choices)


def test_setup_params_name_a_setup_field(iface: ToolInterface) -> None:
    for op in iface.operations:
        for p in op.params:
            if p.setup:
                assert set(p.choices) <= set(iface.setup_field(p.setup).choices)


def test_interface_sheet_is_current(iface: ToolInterface) -> None:
    sheet = DOCS / f"{iface.kind}.md"
    assert sheet.exists(), "run: python -m drivers.interface_doc docs/tools"
    assert sheet.read_text() == render(iface), "run: python -m drivers.interface_doc docs/tools"


def test_gem_sheet_is_up_to_date() -> None:
    from drivers.gem_doc import generated_part, render

    sheet = Path(__file__).parents[2] / "docs" / "tools" / "gem.md"
    assert generated_part(sheet.read_text()) == render(), (
        "run: python -m drivers.gem_doc docs/tools/gem.md"
    )


# -- one record per kind: everything the rest of fabline needs is derived from it -------------


def test_the_kinds_table_is_current() -> None:
    from drivers.interface_doc import kinds_table

    assert kinds_table() in (DOCS / "README.md").read_text(), (
        "run: python -m drivers.interface_doc docs/tools"
    )


def test_every_kind_has_a_simulator_serving_its_interface(iface: ToolInterface) -> None:
    from simulators.kinds import sim_class

    assert sim_class(iface.kind).interface is iface


def test_every_kind_has_a_qualification_job_that_validates(iface: ToolInterface) -> None:
    q = iface.qualification
    iface.operation(q.operation).validate(q.job(iface.default_setup))
    iface.operation(q.operation).validate(q.job(None))


def test_tool_id_prefixes_are_unique_and_fit_a_tool_id() -> None:
    prefixes = [interface_for(k).id_prefix for k in KINDS]
    assert len(set(prefixes)) == len(prefixes)
    assert all(p.isupper() and p.isalnum() and len(p) <= 8 for p in prefixes)


def test_every_consumable_raises_an_alarm_and_a_warning(iface: ToolInterface) -> None:
    assert set(iface.consumable_alarms) == {c.name for c in iface.consumables}


def test_defect_results_are_counts(iface: ToolInterface) -> None:
    for op in iface.operations:
        for r in op.results:
            if r.defect:
                assert r.unit == "count", f"{iface.kind}.{op.name}.{r.name}"

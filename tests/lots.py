"""Lots for system tests that drive an engine on an in-process simulated line."""

from __future__ import annotations

from controller.engine import Engine, Outcome
from controller.lots import LotRequest, LotService
from controller.recipes import LoadedRecipe
from tests.helpers import new_job_id


def service(engine: Engine, **options: object) -> LotService:
    """The lot service a station would give this engine's lots."""
    return LotService(
        engine.db,
        station=engine.settings.station,
        expansions=engine.expansions,
        wake=engine.wake,
        **options,  # type: ignore[arg-type]
    )


async def create(
    engine: Engine,
    recipe: LoadedRecipe,
    lot_id: str | None = None,
    options: dict[str, str] | None = None,
    **inputs: int | list[str],
) -> str:
    lot_id = lot_id or new_job_id("LOT")
    request = LotRequest(
        lot_id=lot_id, recipe=recipe.recipe.id, options=options or {}, inputs=dict(inputs)
    )
    await service(engine, allow_draft=True).create(request, recipe=recipe)
    return lot_id


async def run(
    engine: Engine,
    recipe: LoadedRecipe,
    options: dict[str, str] | None = None,
    **inputs: int | list[str],
) -> Outcome:
    lot_id = await create(engine, recipe, None, options, **inputs)
    return await engine.run_lot(lot_id)


async def fresh_consumables(engine: Engine) -> None:
    """Every consumable of every tool replaced, as maintenance would between runs: lots run
    per piece draw a whole lot's worth (a fcbga lot balls 28 boats of packages)."""
    for d in engine.pool.drivers.values():
        for c in d.interface.consumables:
            await d.replace_consumable(c.name)

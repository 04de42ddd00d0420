"""Expanded recipes kept by content hash and options: every lot of one recipe version with
the same options runs the same steps, so they are parsed, checked and expanded once per
process (parsing the stored YAML and expanding it with its claim and interlock checks costs
0.4-4 ms a recipe on this class of machine; a lot's runner needs it at every start)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from controller.recipes.catalog import LoadedRecipe, load_text
from controller.recipes.expand import Expansion


def _key(recipe_hash: str, options: Mapping[str, object]) -> tuple[str, str]:
    return recipe_hash, json.dumps({k: str(v) for k, v in options.items()}, sort_keys=True)


class Expansions:
    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], tuple[LoadedRecipe, Expansion]] = {}

    def put(self, loaded: LoadedRecipe, expansion: Expansion) -> None:
        self._by_key[_key(loaded.hash, expansion.options)] = (loaded, expansion)

    def get(
        self, recipe_hash: str, text: str, name: str, options: Mapping[str, object]
    ) -> tuple[LoadedRecipe, Expansion]:
        """The recipe stored with a lot (`text`), expanded for the lot's options."""
        key = _key(recipe_hash, options)
        found = self._by_key.get(key)
        if found is None:
            loaded = load_text(text, Path(name))
            expansion = loaded.expand({k: str(v) for k, v in options.items()})
            found = self._by_key[key] = (loaded, expansion)
        return found

"""Training recipes, one per readout: `--readout NAME` -> the recipe that loads, collates, tests and exports it.

A *readout* is how a score is read out of the backbone: the discriminative one (the pooled hidden state through the
regression head: `modeling_omni_regressor`, its pooler table and `OmniRegressionHead`) or the generative one (the
Thinker writes the number). A *recipe* is how `omni-regressor train` trains, tests and exports one readout. A new
recipe is one module here with a `Recipe` subclass (see `base.py`) and one entry in `RECIPES`.
"""

from .base import Recipe, RunContext, TestResult
from .discriminative import DiscriminativeRecipe
from .generative import GenerativeRecipe

RECIPES: dict[str, type[Recipe]] = {recipe.name: recipe for recipe in (DiscriminativeRecipe, GenerativeRecipe)}


def get_recipe(name: str) -> Recipe:
    """The recipe of the readout `name` (the `--readout` value)."""
    if name not in RECIPES:
        raise ValueError(f"unknown readout {name!r}; choose one of {', '.join(RECIPES)}.")
    return RECIPES[name]()


__all__ = ["RECIPES", "Recipe", "RunContext", "TestResult", "get_recipe"]

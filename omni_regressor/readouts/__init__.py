"""The former name of `omni_regressor.recipes` (the training recipes of the readouts), kept so that code written
against it still imports: `omni_regressor.readouts.{base,discriminative,generative}` are the recipe modules, and
`READOUTS` / `Readout` / `get_readout` / `DiscriminativeReadout` / `GenerativeReadout` their former names."""

import sys

from ..recipes import RECIPES as READOUTS
from ..recipes import Recipe as Readout
from ..recipes import RunContext, TestResult, base, discriminative, generative
from ..recipes import get_recipe as get_readout
from ..recipes.discriminative import DiscriminativeRecipe as DiscriminativeReadout
from ..recipes.generative import GenerativeRecipe as GenerativeReadout

for _module in (base, discriminative, generative):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module

__all__ = ["READOUTS", "DiscriminativeReadout", "GenerativeReadout", "Readout", "RunContext", "TestResult", "get_readout"]

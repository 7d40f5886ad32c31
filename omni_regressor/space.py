"""`omni-regressor space`: a Gradio Space folder for a trained model, ready to upload as a Hub Space.

    S/README.md         Space card: `sdk: gradio`, `sdk_version`, `app_file: app.py`, `models:`
    S/app.py            the web page (`omni_regressor/space_app.py`), `SPACE_MODEL` set to the model it serves
    S/requirements.txt  what app.py and the model folder's code import, with this package's version ranges
    S/model/            a copy of the model folder, only without --model_id (the Space then needs no Hub model)

The Space runs without the omni-regressor package: the page scores through the model folder's own pipeline
(`trust_remote_code`). Its `/score` endpoint takes `(clip, transcript, subtitles)`, the last two optional.
"""

import importlib.metadata
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import SpaceCard, SpaceCardData

from .arguments import OmniArgumentParser, UsageError
from .requirements import space_requirements, write_requirements

APP_SOURCE = Path(__file__).with_name("space_app.py")
BUNDLED_MODEL = "model"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

SPACE_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

Upload a video clip (and its transcript, or subtitles for a long video) and see its sentiment score, Acc-7 class and
polarity, how much each modality moved the score, and for long clips the score over time. The model:
{{ model_note }}.

The scoring function is this page's API endpoint `/score`:

```python
from gradio_client import Client, handle_file

client = Client("{{ space_id }}")
score, bucket, polarity, attribution, timeline, message = client.predict(
    handle_file("clip.mp4"), "I really liked this movie.", api_name="/score")
```
"""


@dataclass
class SpaceArguments:
    model: str = field(metadata={"help": "The model to serve: an exported regressor folder (<run>/model) or its Hub id."})
    output_dir: str = field(metadata={"help": "Where the Space folder is written (README.md, app.py, requirements.txt)."})
    model_id: str | None = field(default=None, metadata={"help": (
        "The Hub id the Space loads the model from (USER/NAME). Default: --model when it is a Hub id, else a copy of "
        "the folder is bundled into the Space as model/.")})
    space_id: str | None = field(default=None, metadata={"help": "The Space's own Hub id, for the card's client example."})
    title: str | None = field(default=None, metadata={"help": "The Space's title (default: from the model's name)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace the files of an existing Space folder."})

    def validate(self):
        if self.model_id is not None and not HUB_ID.match(self.model_id):
            raise ValueError(f"--model_id {self.model_id!r} is not a Hub id (USER/NAME).")


def _model_config(model: str) -> dict:
    config_path = Path(model) / "config.json"
    if config_path.is_file():
        return json.loads(config_path.read_text(encoding="utf-8"))
    from transformers import PretrainedConfig

    return PretrainedConfig.get_config_dict(model)[0]


def write_space(model: str, output_dir, model_id: str | None = None, space_id: str | None = None,
                title: str | None = None, overwrite: bool = False) -> Path:
    """Writes the Space folder; returns it."""
    from .model_loading import check_model_folder

    check_model_folder(model)
    local = Path(model).is_dir()
    model_id = model_id or (None if local else model)
    output_dir = Path(output_dir)
    if output_dir.is_file():
        raise UsageError(f"--output_dir {output_dir} is a file.")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise UsageError(f"--output_dir {output_dir} is not empty; pass --overwrite to replace its Space files.")
    try:
        gradio_version = importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        raise UsageError('a Space needs gradio to pin its sdk_version: pip install "omni-regressor[demo]".') from None
    config = _model_config(model)
    denoise = (config.get("processing") or {}).get("denoise", "none") != "none"
    output_dir.mkdir(parents=True, exist_ok=True)

    served = model_id or BUNDLED_MODEL
    app = APP_SOURCE.read_text(encoding="utf-8")
    app, replaced = re.subn(r"^SPACE_MODEL = None$", f"SPACE_MODEL = {served!r}", app, count=1, flags=re.MULTILINE)
    assert replaced == 1, "space_app.py must define `SPACE_MODEL = None` at top level"
    (output_dir / "app.py").write_text(app, encoding="utf-8")
    write_requirements(output_dir / "requirements.txt", space_requirements(denoise))
    bundled = output_dir / BUNDLED_MODEL
    if bundled.exists():
        shutil.rmtree(bundled)
    if model_id is None:
        shutil.copytree(model, bundled)

    name = model_id.split("/")[-1] if model_id else Path(model).resolve().name
    base_model = config.get("base_model_name_or_path")
    models = [model_id] if model_id else ([base_model] if base_model and HUB_ID.match(base_model) else [])
    card_data = SpaceCardData(
        title=title or f"{name} sentiment",
        sdk="gradio",
        sdk_version=gradio_version,
        app_file="app.py",
        models=models,
        license=_model_license(model),
        tags=["omni-regressor", "sentiment-analysis", "video", "audio"],
        short_description="Sentiment score of a video clip (text, audio, video)",
    )
    card = SpaceCard.from_template(
        card_data, template_str=SPACE_TEMPLATE, title=card_data.title, space_id=space_id or "USER/SPACE",
        model_note=f"[`{model_id}`](https://huggingface.co/{model_id}), loaded from the Hub" if model_id
        else f"a copy of the model folder in `{BUNDLED_MODEL}/`",
    )
    card.save(output_dir / "README.md")
    return output_dir


def _model_license(model: str) -> str | None:
    card_path = Path(model) / "README.md"
    if not card_path.is_file():
        return None
    from huggingface_hub import ModelCard

    return ModelCard.load(card_path).data.to_dict().get("license")


def space_command(argv) -> int:
    (args,) = OmniArgumentParser(SpaceArguments, prog="omni-regressor space").parse(argv)
    folder = write_space(args.model, args.output_dir, args.model_id, args.space_id, args.title, args.overwrite)
    print(json.dumps({"space_dir": str(folder), "files": sorted(path.name for path in folder.iterdir())}))
    return 0

"""Model cards of exported folders: `huggingface_hub.ModelCard` with the run's own settings and test metrics.

Card metadata follows the Hub's conventions: a title (`model_name`), `base_model` only when it is a Hub id,
`datasets` and `model-index` only when the user named the dataset (`--dataset_name`), metric types from the standard
set (`mae`, `pearsonr`, `accuracy`, `f1`) with MMSA's names as display names, a `license` always (`--license`, the
base model's, or `other` with a sentence). The results are the exported folder's own, evaluated after export (the
path of `omni-regressor evaluate`), not the 4-bit model's during training. Latency and memory are hardware facts,
labelled with what they include: they go into the text, not into `model-index`. No path of the training machine is
written: the usage snippets name the Hub id (`--hub_model_id`) or `path/to/model`. No `pipeline_tag`: no Hub task fits a
multimodal regressor, and the text-classification widget would show a meaningless label, so the widget is off.
"""

import json
import os
import re
from pathlib import Path

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .export import LOCAL_BASE_PREFIX, adapter_repo_id, public_base_name
from .model_setup import LORA_DEFAULTS
from .requirements import adapter_requirements, folder_requirements, install_line

# MMSA metric name -> (Hub metric type, display name).
HUB_METRICS = {
    "MAE": ("mae", "MAE"),
    "Corr": ("pearsonr", "Corr"),
    "Has0_acc_2": ("accuracy", "Acc-2 (has-0, Has0_acc_2)"),
    "Has0_F1_score": ("f1", "F1 (has-0, Has0_F1_score)"),
    "Non0_acc_2": ("accuracy", "Acc-2 (non-0, Non0_acc_2)"),
    "Non0_F1_score": ("f1", "F1 (non-0, Non0_F1_score)"),
    "Mult_acc_5": ("accuracy", "Acc-5 (Mult_acc_5)"),
    "Mult_acc_7": ("accuracy", "Acc-7 (Mult_acc_7)"),
    "Mult_acc_2": ("accuracy", "Acc-2 (Mult_acc_2)"),
    "Mult_acc_3": ("accuracy", "Acc-3 (Mult_acc_3)"),
    "F1_score": ("f1", "F1 (F1_score)"),
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
LOCAL_FOLDER = "path/to/model"  # the snippets' model when there is no Hub id (no path of the training machine)
LOCAL_ADAPTER = "path/to/adapter"
UNKNOWN_LICENSE_NAME = "base-model-license"
TAGS = ["omni-regressor", "multimodal", "sentiment-analysis", "regression", "video", "audio", "custom_code"]

MERGED_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A sentiment regressor on the **Thinker of {{ backbone_title }}**: the final-layer hidden state of the last
non-padding token goes through a small MLP head and gives a continuous score in [{{ score_low }}, {{ score_high }}]
in one forward pass, without decoding text. It reads {{ modalities }}. Trained with {{ method }} and the HF Trainer by
[omni-regressor](https://github.com/omni-regressor/omni-regressor){{ base_note }}.

## How to use

```bash
{{ install_line }}
```

```python
from transformers import pipeline

sentiment = pipeline("omni-sentiment-regression", model="{{ repo_or_path }}", trust_remote_code=True)
print(sentiment("clip.mp4", transcript="I really liked this movie.")["score"])
```

The folder carries the code that decodes the clip (PyAV), builds the prompt and batches clips exactly as in
training (`processing_omni_regressor.py`, settings in `config.processing`), so nothing else needs installing. A list
of clips is scored in batches: `sentiment([{"path": "a.mp4", "transcript": "..."}, "b.mp4"], batch_size=8)`.
The weights alone: `AutoModel.from_pretrained("{{ repo_or_path }}", trust_remote_code=True)`; the inputs for
your own loop: `AutoProcessor.from_pretrained("{{ repo_or_path }}", trust_remote_code=True)` turns `(clip path or
decoded clip, transcript)` into the model's batch with these settings (`model(**processor("clip.mp4", "...")).logits`
is the score). `requirements.txt` lists the same packages as the line above.{{ path_note }}

## What the model sees

| setting | value |
|---|---|
{% for name, value in inputs %}| {{ name }} | {{ value }} |
{% endfor %}

## Results

Test split of {{ dataset_title }} ({{ num_test_clips }} clips){{ dataset_note }}, scored by this folder as exported
({{ results_source }}):

| metric | value |
|---|---|
{% for name, value in metrics %}| {{ name }} | {{ value }} |
{% endfor %}
Predicting the training mean gives a test MAE of {{ mean_predictor_mae }}.

## Training

| setting | value |
|---|---|
{% for name, value in hyperparameters %}| {{ name }} | {{ value }} |
{% endfor %}
Trainable parameters: {{ trainable_params }} of {{ total_params }} ({{ trainable_percent }} %).

## Cost (measured on the training machine: {{ device }})

{{ latency }} Peak memory during training: {{ peak_memory_mb }} MB ({{ memory_kind }}). These depend on the
hardware; they are not evaluation results.

## Limitations

- Scores follow the label scale and annotation style of the training data; other domains, languages or recording
  conditions shift them.
- Clips longer than {{ max_audio_seconds }} s are cut to their first {{ max_audio_seconds }} s; at most
  {{ max_frames }} frames are seen per clip.
- A model trained with text expects a transcript; without one it runs on the modalities it has, which it was not
  trained for.

## Licence

{{ license_note }}
"""

ADAPTER_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }} (LoRA adapter)

The LoRA adapter and regression head of an omni-regressor sentiment model on the **Thinker of {{ backbone_title }}**
(see the merged model's card for results). This folder is its own base: its `config.json` is the regressor without
weights, which loads the base checkpoint it names (`{{ base_model_name }}`) with this head's settings.{{ base_note }}

## How to use

```bash
{{ install_line }}
```

```python
from peft import AutoPeftModelForSequenceClassification

model = AutoPeftModelForSequenceClassification.from_pretrained("{{ repo_or_path }}", trust_remote_code=True)
```

{{ auto_peft_note }} Step by step (also for a copy of this folder anywhere):

```python
from peft import PeftModel
from transformers import AutoModel

base = AutoModel.from_pretrained("{{ repo_or_path }}", trust_remote_code=True)  # base weights, this config
model = PeftModel.from_pretrained(base, "{{ repo_or_path }}")  # LoRA + trained head
```

`model.merge_and_unload()` gives the merged regressor. Scoring clips: the `omni-sentiment-regression` pipeline of
the merged folder, or `pipeline_omni_regressor.py` in this folder.

## Adapter

| setting | value |
|---|---|
{% for name, value in hyperparameters %}| {{ name }} | {{ value }} |
{% endfor %}

## Licence

{{ license_note }}
"""


def _is_hub_id(value) -> bool:
    return isinstance(value, str) and bool(HUB_ID.match(value)) and not os.path.exists(value)


def base_model_license(base_model: str | None) -> str | None:
    """The `license` of the base model's card: a local folder's README.md, or the Hub's (through the local cache)."""
    if not base_model:
        return None
    card_path = Path(base_model) / "README.md"
    try:
        if not card_path.is_file():
            if not _is_hub_id(base_model):
                return None
            from huggingface_hub import hf_hub_download

            card_path = Path(hf_hub_download(base_model, "README.md"))
        return ModelCard.load(card_path).data.to_dict().get("license")
    except Exception:  # noqa: BLE001 - offline, or no card: the licence is then unknown
        return None


def _number(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "nan"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _settings_rows(settings: dict) -> list[tuple[str, str]]:
    factor = settings.get("image_factor") or 28
    return [
        ("modalities", ", ".join(settings["modalities"])),
        ("frames", f"{settings['fps']:g} per second, {settings['min_frames']} to {settings['max_frames']} per clip"),
        ("frame size", f"{settings['min_pixels'] // factor**2} to {settings['max_pixels'] // factor**2} tokens "
                       f"({settings['min_pixels']} to {settings['max_pixels']} pixels, sides multiples of {factor})"),
        ("audio", f"16 kHz mono, up to {settings['max_audio_seconds']:g} s, denoising: {settings['denoise']}"),
    ]


def _hyperparameters(context) -> list[tuple[str, str]]:
    model_args, training_args = context.model_args, context.training_args
    lora = model_args.lora_overrides()
    rows = [
        ("backbone", f"{context.backbone.name} (`{_base_name(context)}`)"),
        ("readout", model_args.readout),
        ("quantization", "NF4 4-bit, double quantisation, bf16 compute" if model_args.quantization == "4bit" else "none"),
    ]
    if model_args.lora_preset != "none":
        targets = lora["target_modules"] or context.backbone.lora_target_modules(model_args.lora_preset)
        rows += [
            ("LoRA preset", model_args.lora_preset),
            ("LoRA r / alpha / dropout", " / ".join(
                f"{lora[key] if lora[key] is not None else LORA_DEFAULTS[key]}" for key in ("r", "alpha", "dropout"))),
            ("LoRA targets", ", ".join(targets) if isinstance(targets, list) else f"`{targets}`"),
        ]
    else:
        rows.append(("fine-tuning", "full"))
    rows += [
        ("learning rate (LoRA / head)", f"{training_args.learning_rate:g} / {model_args.head_learning_rate:g}"),
        ("epochs (best)", f"{training_args.num_train_epochs:g} ({_epoch(context.summary.get('best_epoch'))})"),
        ("batch size per device", str(training_args.per_device_train_batch_size)),
        ("loss", f"{model_args.loss_type} on normalised labels (mean {context.label_mean:.4f}, std {context.label_std:.4f})"),
        ("head", f"Linear(H, {model_args.head_hidden_size}) -> LayerNorm -> ReLU -> Dropout({model_args.head_dropout:g}) -> Linear(1)"),
        ("readout", f"{getattr(model_args, 'pooling', 'last')} pooling of layer {getattr(model_args, 'readout_layer', -1)} "
                    "(-1: the final layer)"),
        ("seed", str(training_args.seed)),
    ]
    return rows


def _base_name(context) -> str:
    return public_base_name(context.model_args.model_name_or_path, getattr(context.model_args, "base_model_id", None))


def _epoch(value) -> str:
    """An epoch as the Trainer counts it: `5`, or `2.5` mid-epoch; `n/a` without a valid split."""
    return "n/a" if value is None else f"{float(value):g}"


def exported_test_metrics(context) -> dict:
    """The test metrics the card shows: the exported folder's (evaluated after export) when the run has them."""
    return context.summary.get("exported_test_metrics") or context.summary.get("test_metrics") or {}


def _card_data(context, model_name: str, with_results: bool) -> tuple[ModelCardData, str, str]:
    base_model = _base_name(context)
    base_is_hub = _is_hub_id(base_model)
    license_id = context.model_args.license or base_model_license(context.model_args.model_name_or_path)
    dataset_name = context.data_args.dataset_name
    eval_results = None
    if with_results and dataset_name:  # `model-index` needs a dataset the Hub can name
        eval_results = [
            EvalResult(
                task_type="multimodal-sentiment-regression",
                task_name="Multimodal sentiment regression",
                dataset_type=dataset_name,
                dataset_name=dataset_name,
                dataset_split="test",
                metric_type=HUB_METRICS[name][0],
                metric_name=HUB_METRICS[name][1],
                metric_value=float(value),
            )
            for name, value in exported_test_metrics(context).items()
            if name in HUB_METRICS and isinstance(value, (int, float)) and value == value
        ] or None
    data = ModelCardData(
        model_name=model_name,
        base_model=base_model if base_is_hub else None,
        datasets=[dataset_name] if dataset_name else None,
        library_name="transformers",
        license=license_id or "other",
        license_name=None if license_id else UNKNOWN_LICENSE_NAME,
        tags=TAGS + [context.backbone.name],
        eval_results=eval_results,
        inference=False,
    )
    if base_is_hub:
        base_note = ""
    elif base_model.startswith(LOCAL_BASE_PREFIX):
        base_note = (
            f" (base: a local checkpoint, not on the Hub, named `{base_model}` here: no path of the training machine "
            "is written; the merged folder needs no base, an adapter loads with "
            "`AutoModel.from_pretrained(folder, trust_remote_code=True, base_model_name_or_path=<the base's folder>)`; "
            "train with `--base_model_id` to name the Hub id it stands for)"
        )
    else:
        base_note = f" (base: `{base_model}`)"
    license_note = (
        f"`{license_id}`." if context.model_args.license
        else f"`{license_id}`, the licence of the base model." if license_id
        else "`other`: the base model's licence could not be read, so none is claimed here. Check the base model's "
             "licence before using or sharing this model, and give it with `--license` when training."
    )
    return data, base_note, license_note


def _model_name(context) -> str:
    hub_id = getattr(context.training_args, "hub_model_id", None)
    if hub_id:
        return hub_id.split("/")[-1]
    dataset = context.data_args.dataset_name or Path(context.data_args.dataset_dir).name
    return f"omni-regressor-{context.backbone.name}-{Path(str(dataset)).name}"


def _latency(context, exported: bool) -> str:
    metrics = context.summary
    if exported and context.summary.get("exported_test_metrics"):
        exported_metrics = context.summary["exported_test_metrics"]
        return (f"End to end from the file (decode, prompt, forward; `omni-regressor evaluate` of this folder, batch "
                f"{context.summary.get('exported_eval_batch_size')}): {_number(exported_metrics.get('ms_per_clip'))} ms per clip.")
    model_ms = (metrics.get("test_metrics") or {}).get("ms_per_clip")
    return (f"Model only (the training run's test pass on already decoded media, batch "
            f"{context.training_args.per_device_eval_batch_size}): {_number(model_ms)} ms per clip.")


def write_model_card(output_dir, context) -> ModelCard:
    """README.md of a merged (or fully fine-tuned) regressor folder."""
    summary, settings = context.summary, context.summary.get("processing") or context.settings.to_dict()
    model_name = _model_name(context)
    card_data, base_note, license_note = _card_data(context, model_name, with_results=True)
    metrics = exported_test_metrics(context)
    parameters = summary["parameters"]
    hub_id = getattr(context.training_args, "hub_model_id", None)
    card = ModelCard.from_template(
        card_data,
        template_str=MERGED_TEMPLATE,
        model_name=model_name,
        backbone_title=context.backbone.display_title,
        score_low=f"{context.score_range[0]:g}",
        score_high=f"{context.score_range[1]:g}",
        modalities=", ".join(settings["modalities"]),
        method="QLoRA" if context.model_args.quantization == "4bit" else (
            "LoRA" if context.model_args.lora_preset != "none" else "full fine-tuning"),
        base_note=base_note,
        repo_or_path=hub_id or LOCAL_FOLDER,
        path_note="" if hub_id else f" (`{LOCAL_FOLDER}`: this folder, wherever it is; or its Hub id once uploaded.)",
        install_line=install_line(folder_requirements(settings["denoise"] != "none")),
        inputs=_settings_rows(settings),
        dataset_title=f"`{context.data_args.dataset_name}`" if context.data_args.dataset_name else "the local dataset",
        dataset_note="" if context.data_args.dataset_name else " (not on the Hub: no `--dataset_name`)",
        num_test_clips=summary.get("exported_test_clips") or len(summary.get("test_predictions") or []),
        results_source=("evaluated after export, as `omni-regressor evaluate` scores it" if summary.get("exported_test_metrics")
                        else "the trained model's test pass"),
        metrics=[(HUB_METRICS.get(name, (None, name))[1], _number(value)) for name, value in metrics.items()
                 if name in HUB_METRICS],
        mean_predictor_mae=_number(summary.get("mean_predictor_test_MAE")),
        hyperparameters=_hyperparameters(context),
        trainable_params=f"{parameters['trainable_params']:,}",
        total_params=f"{parameters['total_params']:,}",
        trainable_percent=parameters["trainable_percent"],
        device=torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU",
        latency=_latency(context, exported=True),
        peak_memory_mb=summary.get("peak_memory_mb"),
        memory_kind="CUDA max allocated" if torch.cuda.is_available() else "process peak RSS",
        max_audio_seconds=f"{settings['max_audio_seconds']:g}",
        max_frames=settings["max_frames"],
        license_note=license_note,
    )
    card.save(Path(output_dir) / "README.md")
    return card


def write_adapter_card(adapter_dir, context) -> ModelCard:
    """README.md of an adapter folder (replaces peft's placeholder card)."""
    model_name = _model_name(context)
    card_data, base_note, license_note = _card_data(context, model_name, with_results=False)
    card_data.library_name = "peft"
    settings = context.summary.get("processing") or context.settings.to_dict()
    repo_id = adapter_repo_id(getattr(context.training_args, "hub_model_id", None))
    card = ModelCard.from_template(
        card_data,
        template_str=ADAPTER_TEMPLATE,
        model_name=model_name,
        backbone_title=context.backbone.display_title,
        base_model_name=_base_name(context),
        base_note="" if _is_hub_id(_base_name(context)) else (
            " The base was a local checkpoint, not on the Hub: no path of the training machine is written, so pass "
            "its folder to the first step, `AutoModel.from_pretrained(..., base_model_name_or_path=<the base's "
            "folder>)` (or train with `--base_model_id`)."),
        install_line=install_line(adapter_requirements(settings["denoise"] != "none")),
        repo_or_path=repo_id or LOCAL_ADAPTER,
        auto_peft_note=(
            f"`{repo_id}` is this adapter's Hub repository, which `adapter_config.json` names as its own base (peft "
            "loads the base through it)." if repo_id else
            f"`{LOCAL_ADAPTER}`: peft's `AutoPeftModel...` loads the base that `adapter_config.json` names, which is "
            "this adapter's Hub repository once uploaded (`--hub_model_id`); for a local copy use the steps below."
        ),
        hyperparameters=_hyperparameters(context),
        license_note=license_note,
    )
    card.save(Path(adapter_dir) / "README.md")
    return card


def card_problems(card: ModelCard) -> list[str]:
    """Offline checks of what the Hub's card validation requires of our metadata (the Hub endpoint needs network):
    a title, known metric types, a Hub-id `base_model`, parseable `model-index`."""
    data = card.data.to_dict()
    problems = []
    if not data.get("model_name") and not data.get("model-index"):
        problems.append("no model name")
    if data.get("base_model") and not _is_hub_id(data["base_model"]):
        problems.append(f"base_model {data['base_model']!r} is not a Hub id")
    for result in card.data.eval_results or []:
        if result.metric_type not in {"mae", "pearsonr", "accuracy", "f1"}:
            problems.append(f"non-standard metric type {result.metric_type!r}")
    if "pipeline_tag" in data:
        problems.append(f"pipeline_tag {data['pipeline_tag']!r} set")
    try:
        json.dumps(data)
    except TypeError as error:
        problems.append(f"metadata is not JSON-serialisable: {error}")
    return problems

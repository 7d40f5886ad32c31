"""The exported folder's README.md: a `huggingface_hub.ModelCard` with the test metrics in `model-index`."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A discriminative sentiment readout on the **Thinker of Qwen2.5-Omni** (`{{ base_model }}`): the final-layer hidden
state of the last non-padding token goes through a small MLP head and gives a continuous score in
[{{ score_low }}, {{ score_high }}] in one forward pass, without decoding text. Trained with QLoRA and the HF Trainer
by [omni-regressor](https://github.com/omni-regressor/omni-regressor).

## How to use

```python
from transformers import AutoModel, AutoProcessor

model = AutoModel.from_pretrained("{{ repo_or_path }}", trust_remote_code=True)  # the regressor, weights merged
processor = AutoProcessor.from_pretrained("{{ repo_or_path }}", trust_remote_code=True)
```

To score clips, the `omni-regressor` package (`pip install omni-regressor`) builds the inputs exactly as in
training (modalities {{ modalities }}, fps, frames, pixel limits and prompt are read from `config.processing`):

```python
from omni_regressor import SentimentScorer

scorer = SentimentScorer.from_pretrained("{{ repo_or_path }}")
print(scorer.score(["clip.mp4"], transcripts=["I really liked this movie."]))  # one float per clip
```

The same path as a transformers pipeline (its code ships in this folder; it needs the package installed):

```python
from transformers import pipeline

sentiment = pipeline("omni-sentiment-regression", model="{{ repo_or_path }}", trust_remote_code=True)
print(sentiment("clip.mp4", transcript="I really liked this movie.")["score"])
```

From the shell: `omni-regressor predict --model {{ repo_or_path }} clip.mp4 --transcript "..."`.

## Results (test split of `{{ dataset_name }}`)

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
Trainable parameters: {{ trainable_params }} of {{ total_params }} ({{ trainable_percent }} %). Peak memory:
{{ peak_memory_mb }} MB ({{ memory_kind }}).

## Limitations

- Scores are calibrated to the label scale and annotation style of the training data ({{ dataset_name }}); other
  domains, languages or recording conditions shift them.
- Clips longer than `max_audio_seconds` ({{ max_audio_seconds }} s) are cut to that window; at most
  {{ max_frames }} frames are seen per clip.
- A model trained with text expects a transcript; without one it runs on the modalities it has, which it was not
  trained for.
"""

METRIC_NAMES = {"MAE": "mae", "Corr": "pearsonr", "Has0_acc_2": "accuracy", "Non0_acc_2": "accuracy", "Mult_acc_7": "accuracy"}


def write_model_card(output_dir, base_model, dataset_name, summary, training_args, model_args) -> ModelCard:
    import torch

    test_metrics = {
        key: value
        for key, value in (summary.get("test_metrics") or {}).items()
        if isinstance(value, (int, float)) and key not in ("loss", "runtime", "samples_per_second", "steps_per_second")
    }
    eval_results = [
        EvalResult(
            task_type="text-classification",
            task_name="Multimodal sentiment regression",
            dataset_type=dataset_name,
            dataset_name=dataset_name,
            dataset_split="test",
            metric_type=METRIC_NAMES.get(name, name.lower()),
            metric_name=name,
            metric_value=float(value),
        )
        for name, value in test_metrics.items()
    ]
    card_data = ModelCardData(
        base_model=base_model,
        datasets=[dataset_name],
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["qwen2.5-omni", "multimodal", "sentiment-analysis", "regression", "qlora", "peft", "custom_code"],
        model_name=f"omni-regressor-{dataset_name}",
        eval_results=eval_results or None,
        license="apache-2.0",
    )
    hyperparameters = [
        ("readout", model_args.readout),
        ("quantization", model_args.quantization),
        ("LoRA preset", model_args.lora_preset),
        ("LoRA r / alpha / dropout", f"{model_args.lora_r or 32} / {model_args.lora_alpha or 32} / {model_args.lora_dropout if model_args.lora_dropout is not None else 0.1}"),
        ("learning rate (LoRA / head)", f"{training_args.learning_rate} / {model_args.head_learning_rate}"),
        ("epochs", training_args.num_train_epochs),
        ("batch size per device", training_args.per_device_train_batch_size),
        ("loss", f"{model_args.loss_type} on normalised labels (mean {summary['label_mean']:.4f}, std {summary['label_std']:.4f})"),
        ("head", f"Linear(H, {model_args.head_hidden_size}) -> LayerNorm -> ReLU -> Dropout({model_args.head_dropout}) -> Linear(1)"),
        ("modalities", ", ".join(summary["modalities"])),
        ("seed", training_args.seed),
    ]
    parameters = summary["parameters"]
    card = ModelCard.from_template(
        card_data,
        template_str=CARD_TEMPLATE,
        base_model=base_model,
        repo_or_path=getattr(training_args, "hub_model_id", None) or str(Path(output_dir).resolve()),
        dataset_name=dataset_name,
        score_low=summary["score_range"][0],
        score_high=summary["score_range"][1],
        modalities=", ".join(summary["modalities"]),
        metrics=[(name, f"{value:.4f}") for name, value in test_metrics.items()],
        mean_predictor_mae=f"{summary.get('mean_predictor_test_MAE', float('nan')):.4f}",
        hyperparameters=hyperparameters,
        trainable_params=f"{parameters['trainable_params']:,}",
        total_params=f"{parameters['total_params']:,}",
        trainable_percent=parameters["trainable_percent"],
        peak_memory_mb=summary["peak_memory_mb"],
        memory_kind="CUDA max allocated" if torch.cuda.is_available() else "process peak RSS, CPU",
        max_audio_seconds=summary.get("max_audio_seconds", 30.0),
        max_frames=summary.get("max_frames", 16),
    )
    card.save(Path(output_dir) / "README.md")
    return card

"""The recipe of the discriminative readout: the final hidden state of the last non-padding token -> MLP head -> score."""

from pathlib import Path

import numpy as np

from omni_regressor.eval.metrics import make_compute_metrics

from ..export import (merged_export, name_base_in_config, public_base_name, publish_adapter, register_processor,
                      save_adapter_export, save_full_model)
from ..metering import BatchTimer
from ..model_card import write_adapter_card, write_model_card
from ..model_setup import load_kwargs_for, lora_config_for, prepare_for_training, quiet_head_warning
from .base import Recipe, RunContext, TestResult


def load_regressor_for_training(model_name_or_path, backbone, quantization="4bit", lora_preset="paper",
                                lora_overrides=None, gradient_checkpointing=True, upcast_frozen_weights=False,
                                **readout_kwargs):
    """Regressor (original checkpoint or saved regressor) -> 4-bit/full -> LoRA, the head trained in full (fp32).

    `readout_kwargs` are regressor config values (`head_hidden_size`, `label_mean`, `processing`, ...).
    """
    with quiet_head_warning():  # a base checkpoint's new head is what training trains
        model = backbone.regressor_class.from_pretrained(
            model_name_or_path, **load_kwargs_for(quantization, backbone.regressor_skip_modules()), **readout_kwargs
        )
    lora_config = lora_config_for(backbone, lora_preset, **(lora_overrides or {}), modules_to_save=["head"])
    return prepare_for_training(
        model,
        quantized=quantization != "none",
        lora_config=lora_config,
        gradient_checkpointing=gradient_checkpointing,
        upcast_frozen_weights=upcast_frozen_weights,
        fp32_modules=["head"],
    )


class DiscriminativeRecipe(Recipe):
    name = "discriminative"
    metric_for_best_model = "MAE"

    def load_model(self, context: RunContext):
        model_args = context.model_args
        return load_regressor_for_training(
            model_args.model_name_or_path,
            context.backbone,
            quantization=model_args.quantization,
            lora_preset=model_args.lora_preset,
            lora_overrides=model_args.lora_overrides(),
            gradient_checkpointing=context.training_args.activation_checkpointing,
            upcast_frozen_weights=model_args.upcast_frozen_weights,
            head_hidden_size=model_args.head_hidden_size,
            head_dropout=model_args.head_dropout,
            pooling=model_args.pooling,
            readout_layer=model_args.readout_layer,
            loss_type=model_args.loss_type,
            label_mean=context.label_mean,
            label_std=context.label_std,
            score_range=context.score_range,
            processing=context.settings.to_dict(),
        )

    def collator(self, encoder):
        return encoder

    def compute_metrics(self, context: RunContext):
        return make_compute_metrics(context.metrics_dataset)

    def head_learning_rate(self, context: RunContext) -> float:
        return context.model_args.head_learning_rate

    def test_pass(self, trainer, encoder, test_rows, context: RunContext) -> TestResult:
        timer = BatchTimer()
        trainer.add_callback(timer)
        prediction = trainer.predict(test_rows, metric_key_prefix="test")
        trainer.remove_callback(timer)
        metrics = {key.removeprefix("test_"): value for key, value in prediction.metrics.items()}
        metrics["ms_per_clip"] = timer.ms_per_clip(len(test_rows))
        return TestResult(metrics, np.asarray(prediction.predictions).reshape(-1).tolist())

    def export(self, trainer, encoder, context: RunContext) -> Path:
        """adapter/ and model/ (merged), their cards; no path of the training machine left in them; the card's results
        are model/'s own on the test split, evaluated after export."""
        model_args = context.model_args
        export_dir, adapter_dir = context.output_dir / "model", context.output_dir / "adapter"
        base_name = public_base_name(model_args.model_name_or_path, model_args.base_model_id)
        if model_args.lora_preset == "none":
            save_full_model(trainer, encoder, export_dir)
            name_base_in_config(export_dir, base_name)
            evaluate_export(export_dir, encoder, context)
            write_model_card(export_dir, context)
            return export_dir
        save_adapter_export(trainer, encoder, adapter_dir)
        if not model_args.save_adapter_only:
            merged_export(adapter_dir, export_dir)  # loads the base from the path the adapter names until published
            encoder.save_pretrained(export_dir)
            register_processor(export_dir)
            name_base_in_config(export_dir, base_name)
        publish_adapter(adapter_dir, base_name, getattr(context.training_args, "hub_model_id", None))
        write_adapter_card(adapter_dir, context)
        if model_args.save_adapter_only:
            return adapter_dir
        evaluate_export(export_dir, encoder, context)
        write_model_card(export_dir, context)
        return export_dir


def evaluate_export(export_dir, encoder, context: RunContext) -> dict | None:
    """`omni-regressor evaluate` of the exported folder on the test split (outputs in `<output_dir>/export_eval`): the
    results its card shows. Skipped without a test split, and in multi-process runs (the export runs on rank 0 only;
    the card then says its results are the training run's test pass)."""
    from omni_regressor.arguments import ProcessingArguments
    from omni_regressor.eval.evaluation import evaluate_model
    from omni_regressor.streaming import world

    if "test_metrics" not in context.summary or world()[1] > 1:
        return None
    cache_dir = getattr(encoder.media_cache, "cache_dir", None)
    report = evaluate_model(
        export_dir, context.data_args.dataset_dir, split="test", output_dir=context.output_dir / "export_eval",
        dataset_format=context.data_args.dataset_format, labels_csv=context.data_args.labels_csv,
        batch_size=context.training_args.per_device_eval_batch_size,
        processing=ProcessingArguments(media_cache_dir=str(cache_dir) if cache_dir is not None else None),
        skip_bad_clips=context.data_args.skip_bad_clips, metrics_dataset=context.metrics_dataset,
        num_workers=context.training_args.dataloader_num_workers, progress=not context.training_args.disable_tqdm,
    )
    context.summary["exported_test_metrics"] = {key: value for key, value in report.items()
                                                if isinstance(value, (int, float)) and not isinstance(value, bool)}
    context.summary["exported_test_clips"] = report["num_clips"]
    context.summary["exported_eval_batch_size"] = context.training_args.per_device_eval_batch_size
    return report

"""The recipe of the generative readout on the same backbone: the Thinker writes the score as text, which is parsed.

It is the baseline the discriminative readout is compared with, so it shares everything else: the processing path
and prompt (`ClipEncoder`), the 4-bit quantisation and the LoRA presets. Zero-shot: the base Thinker answers the
prompt with `generate` (greedy, until its end-of-turn token). Fine-tuned: the causal-LM loss on the answer tokens only
(the score written with one decimal, then the end-of-turn token).
"""

import json
from pathlib import Path

import numpy as np
import torch
from transformers import BatchFeature

from omni_regressor.eval.metrics import msa_regression_metrics
from omni_regressor.eval.score_parsing import parse_scores
from processing_omni_regressor import ClipEncoder, model_inputs

from ..metering import BatchTimer
from ..export import public_base_name
from ..model_setup import disable_cpu_bf16_repacking, export_dtype, load_kwargs_for, lora_config_for, prepare_for_training
from .base import Recipe, RunContext, TestResult

# Long enough for any plausible answer: Qwen writes numbers digit by digit ("-1.5" is 4 tokens), and a sentence such
# as "The sentiment of this clip is -1.5." is 11. Generation stops at the end-of-turn token before that.
DEFAULT_MAX_NEW_TOKENS = 32


def format_score(label: float) -> str:
    """The answer the fine-tuned generative readout learns to write: one decimal, sign only when negative."""
    return f"{float(label):.1f}" if round(float(label), 1) != 0 else "0.0"


def load_thinker(model_name_or_path: str, backbone, quantization: str = "4bit"):
    """The Thinker with its LM head (from an original or Thinker-only checkpoint), for generation."""
    load_kwargs = load_kwargs_for(quantization, backbone.generative_skip_modules())
    model = backbone.generative_class.from_pretrained(model_name_or_path, **load_kwargs)
    if quantization != "none" and not torch.cuda.is_available():
        disable_cpu_bf16_repacking(model)
    return model


class GenerativeCollator:
    """Trainer collator: the prompt plus the written score; the loss sees only the answer tokens."""

    def __init__(self, encoder: ClipEncoder):
        self.encoder = encoder

    def __call__(self, features: list[dict]) -> BatchFeature:
        tokenizer = self.encoder.processor.tokenizer
        encoded, answer_lengths = [], []
        for feature in features:
            clip = self.encoder.decode(feature["media_path"]) if self.encoder.needs_media else None
            answer = format_score(feature["label"])
            encoded.append(self.encoder.encode(feature["text"], clip, answer=answer))
            answer_lengths.append(len(tokenizer(answer + tokenizer.eos_token, add_special_tokens=False).input_ids))
        batch = self.encoder.collate(encoded)
        labels = torch.full_like(batch["input_ids"], -100)  # (batch, seq); left padding: the answer ends each row
        for row, length in enumerate(answer_lengths):
            labels[row, -length:] = batch["input_ids"][row, -length:]
        batch["labels"] = labels
        return batch


@torch.no_grad()
def generate_answers(model, encoder: ClipEncoder, transcripts, clips, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                     **generate_kwargs):
    """Greedy answers of the Thinker to the scoring prompt for one batch of decoded clips -> (answers, truncated)."""
    encoded = [encoder.encode(text, clip) for text, clip in zip(transcripts, clips)]
    return generate_from_encoded(model, encoder, encoded, max_new_tokens, **generate_kwargs)


@torch.no_grad()
def generate_from_encoded(model, encoder: ClipEncoder, encoded: list[dict], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                          **generate_kwargs):
    """Greedy answers for one batch of encoded clips -> (answers, truncated flags).

    An answer is truncated when generation hit `max_new_tokens` before the end-of-turn token. `generate_kwargs` go to
    `model.generate` (e.g. a `logits_processor`).
    """
    batch = encoder.collate(encoded)
    device = next(model.parameters()).device
    inputs = model_inputs(batch, device)
    eos_token_id = encoder.processor.tokenizer.eos_token_id
    output_ids = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=encoder.pad_token_id,
        eos_token_id=eos_token_id,
        **generate_kwargs,
    )
    new_tokens = output_ids[:, inputs["input_ids"].shape[1] :]  # (batch, new)
    truncated = [bool(eos_token_id not in row.tolist()) for row in new_tokens]
    answers = encoder.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return answers, truncated


def evaluate_generative(model, encoder: ClipEncoder, rows, metrics_dataset="mosi", batch_size=8,
                        max_new_tokens=DEFAULT_MAX_NEW_TOKENS, fallback=0.0, num_workers: int = 0) -> TestResult:
    """Generates an answer per clip, parses it and scores it with the MMSA metrics.

    Clips stream through the same pipeline as prediction (decode + encode in `num_workers` worker processes, chunks
    batched by modality set and length), so memory does not grow with the number of rows. The metrics also carry
    `unparsable_rate`, `truncated_rate`, `out_of_range_rate`, `fallback` (the score given to failed answers) and
    `ms_per_clip`, so that a table shows how often the readout failed, not only how well it did.
    """
    from pipeline_omni_regressor import ClipScore

    from ..streaming import InputItem, stream_scores

    model.eval()
    rows = list(rows)
    timer = BatchTimer()

    def generate_chunk(clips):
        ordered = sorted(range(len(clips)), key=lambda position: (clips[position].modalities, clips[position].length))
        results = [None] * len(clips)
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            groups = {}
            for position in batch:  # one generate call per modality set within the batch
                groups.setdefault(clips[position].modalities, []).append(position)
            for positions in groups.values():
                answers, truncated = generate_from_encoded(model, encoder, [clips[p].encoded for p in positions], max_new_tokens)
                for position, answer, cut in zip(positions, answers, truncated):
                    clip = clips[position]
                    results[position] = ClipScore(clip.path, None, clip.modalities, extras={"answer": answer, "truncated": cut})
            timer.batch_done(len(batch))
        return results

    items = [InputItem(index, row["media_path"], row["text"]) for index, row in enumerate(rows)]
    answers, truncated = [], []
    for item, result in stream_scores(model, encoder, items, batch_size, num_workers, allow_missing_modalities=False,
                                      score_chunk=generate_chunk):
        if result.error is not None:  # the data check vouched for every clip; one that still fails is named
            raise ValueError(f"{item.path}: {result.error}")
        answers.append(result.extras["answer"])
        truncated.append(result.extras["truncated"])
    parsed = parse_scores(answers, score_range=encoder.score_range, fallback=fallback, truncated=truncated)
    labels = np.asarray([row["label"] for row in rows], dtype=np.float64)
    metrics = msa_regression_metrics(np.asarray(parsed["scores"]), labels, metrics_dataset)
    metrics.update(
        unparsable_rate=parsed["unparsable_rate"],
        truncated_rate=parsed["truncated_rate"],
        out_of_range_rate=parsed["out_of_range_rate"],
        fallback=parsed["fallback"],
        ms_per_clip=timer.ms_per_clip(len(rows)),
    )
    return TestResult(metrics, parsed["scores"], {"answers": answers, "truncated": truncated})


def merged_thinker_export(base_model_name_or_path: str, backbone, adapter_dir, output_dir, encoder: ClipEncoder):
    """The fine-tuned generative readout as a plain Thinker folder: base in bf16 (CUDA) or fp32 (CPU) + merged LoRA,
    the processor, and `processing_settings.json` (the prompt and media settings it was trained with)."""
    from peft import PeftModel

    base = backbone.generative_class.from_pretrained(base_model_name_or_path, dtype=export_dtype())
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(output_dir)
    encoder.save_pretrained(output_dir)
    settings = {**encoder.settings.to_dict(), "score_range": list(encoder.score_range)}
    (Path(output_dir) / "processing_settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return merged


class GenerativeRecipe(Recipe):
    name = "generative"
    metric_for_best_model = "loss"  # the answer-token loss on the valid split; scores are parsed on the test split

    def load_model(self, context: RunContext):
        """Thinker with LM head -> 4-bit -> the same LoRA preset as the discriminative run (no head)."""
        model_args, backbone = context.model_args, context.backbone
        model = load_thinker(model_args.model_name_or_path, backbone, model_args.quantization)
        lora_config = lora_config_for(backbone, model_args.lora_preset, **model_args.lora_overrides())
        return prepare_for_training(
            model,
            quantized=model_args.quantization != "none",
            lora_config=lora_config,
            gradient_checkpointing=context.training_args.activation_checkpointing,
            upcast_frozen_weights=model_args.upcast_frozen_weights,
        )

    def collator(self, encoder):
        return GenerativeCollator(encoder)

    def test_pass(self, trainer, encoder, test_rows, context: RunContext) -> TestResult:
        return evaluate_generative(
            trainer.model, encoder, test_rows, context.metrics_dataset,
            batch_size=context.training_args.per_device_eval_batch_size, max_new_tokens=context.model_args.max_new_tokens,
            num_workers=context.training_args.dataloader_num_workers,
        )

    def export(self, trainer, encoder, context: RunContext) -> Path:
        export_dir, adapter_dir = context.output_dir / "model", context.output_dir / "adapter"
        if context.model_args.lora_preset == "none":
            trainer.save_model(export_dir)
            encoder.save_pretrained(export_dir)
            return export_dir
        trainer.save_model(adapter_dir)
        encoder.save_pretrained(adapter_dir)
        (adapter_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle nobody needs to load
        if not context.model_args.save_adapter_only:
            merged_thinker_export(context.model_args.model_name_or_path, context.backbone, adapter_dir, export_dir, encoder)
        # The base as the user named it (no path of the training machine), once the merge no longer needs the path.
        adapter_config_path = adapter_dir / "adapter_config.json"
        adapter_config = json.loads(adapter_config_path.read_text(encoding="utf-8"))
        adapter_config["base_model_name_or_path"] = public_base_name(context.model_args.model_name_or_path,
                                                                     context.model_args.base_model_id)
        adapter_config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return adapter_dir if context.model_args.save_adapter_only else export_dir

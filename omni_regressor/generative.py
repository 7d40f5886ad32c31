"""The generative readout on the same backbone: the Thinker writes the score as text.

It is the baseline the discriminative readout is compared with, so it shares everything else: the processing path
and prompt (`ClipEncoder`), the 4-bit quantisation and the LoRA presets. Zero-shot: the base Thinker answers the
prompt with `generate` (greedy). Fine-tuned: `train_with_trainer.py --readout generative` trains the causal-LM loss
on the answer tokens only (the score written with one decimal, then the end-of-turn token).
"""

import torch
from transformers import BatchFeature, Qwen2_5OmniThinkerForConditionalGeneration

from .processing import ClipEncoder, model_inputs
from .training import disable_cpu_bf16_repacking, load_kwargs_for, prepare_for_training

THINKER_SKIP_MODULES = ["model.audio_tower", "model.visual", "lm_head"]


def format_score(label: float) -> str:
    """The answer the fine-tuned generative readout learns to write: one decimal, sign only when negative."""
    return f"{float(label):.1f}"


def load_thinker(model_name_or_path: str, quantization: str = "4bit"):
    """The Thinker with its LM head (from an original Qwen2.5-Omni or Thinker-only checkpoint), for generation."""
    load_kwargs = load_kwargs_for(quantization, skip_modules=THINKER_SKIP_MODULES)
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(model_name_or_path, **load_kwargs)
    if quantization != "none" and not torch.cuda.is_available():
        disable_cpu_bf16_repacking(model)
    return model


def load_thinker_for_training(
    model_name_or_path: str,
    quantization: str = "4bit",
    lora_preset: str = "paper",
    lora_overrides: dict | None = None,
    gradient_checkpointing: bool = True,
):
    """Thinker -> 4-bit -> the same LoRA preset as the discriminative run (no head: the LM head writes the score)."""
    model = load_thinker(model_name_or_path, quantization)
    return prepare_for_training(
        model, quantization != "none", lora_preset, lora_overrides, gradient_checkpointing, modules_to_save=None
    )


class GenerativeCollator:
    """Trainer collator: the prompt plus the written score; the loss sees only the answer tokens."""

    def __init__(self, encoder: ClipEncoder):
        self.encoder = encoder

    def __call__(self, features: list[dict]) -> BatchFeature:
        modalities = self.encoder.settings.modalities
        needs_media = ("audio" in modalities) or ("video" in modalities)
        encoded, answer_lengths = [], []
        for feature in features:
            clip = self.encoder.decode(feature["media_path"]) if needs_media else None
            answer = format_score(feature["label"])
            encoded.append(self.encoder.encode(feature["text"], clip, modalities, answer=answer))
            eos = self.encoder.processor.tokenizer.eos_token
            answer_lengths.append(len(self.encoder.processor.tokenizer(answer + eos, add_special_tokens=False).input_ids))
        batch = self.encoder.collate(encoded)
        labels = torch.full_like(batch["input_ids"], -100)  # (batch, seq); left padding: the answer ends each row
        for row, length in enumerate(answer_lengths):
            labels[row, -length:] = batch["input_ids"][row, -length:]
        batch["labels"] = labels
        return batch


@torch.no_grad()
def generate_answers(model, encoder: ClipEncoder, transcripts, clips, max_new_tokens: int = 8) -> list[str]:
    """Greedy answers of the Thinker to the scoring prompt, for one batch of clips."""
    encoded = [encoder.encode(text, clip) for text, clip in zip(transcripts, clips)]
    batch = encoder.collate(encoded)
    device = next(model.parameters()).device
    inputs = model_inputs(batch, device)
    output_ids = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=encoder.pad_token_id,
        eos_token_id=encoder.processor.tokenizer.eos_token_id,
    )
    new_tokens = output_ids[:, inputs["input_ids"].shape[1] :]  # (batch, new)
    return encoder.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def generate_for_rows(model, encoder: ClipEncoder, rows, batch_size: int = 8, max_new_tokens: int = 8,
                      timer=None) -> list[str]:
    """Answers for dataset rows (`text`, `media_path`), in order, batch by batch (each batch reported to `timer`)."""
    model.eval()
    needs_media = bool({"audio", "video"} & set(encoder.settings.modalities))
    answers = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        clips = [encoder.decode(row["media_path"]) if needs_media else None for row in chunk]
        answers.extend(generate_answers(model, encoder, [row["text"] for row in chunk], clips, max_new_tokens))
        if timer is not None:
            timer.batch_done(len(chunk))
    return answers


def merged_thinker_export(base_model_name_or_path: str, adapter_dir, output_dir, encoder: ClipEncoder):
    """The fine-tuned generative readout as a plain Thinker folder: base in bf16 (CUDA) or fp32 (CPU) + merged LoRA."""
    import json
    from pathlib import Path

    from peft import PeftModel

    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    base = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(base_model_name_or_path, dtype=dtype)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(output_dir)
    encoder.save_pretrained(output_dir)
    settings = {**encoder.settings.to_dict(), "score_range": list(encoder.score_range)}
    (Path(output_dir) / "processing_settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return merged


TRANSCRIBE_PROMPT = "Transcribe the speech in this clip. Answer with the words only."


@torch.no_grad()
def transcribe_clips(model, processor, clips, sampling_rate: int = 16000, max_new_tokens: int = 64) -> list[str]:
    """What the Thinker hears in each clip's audio track (clips without audio get an empty transcript)."""
    model.eval()
    device = next(model.parameters()).device
    transcripts = []
    for clip in clips:
        if clip is None or clip.audio is None:
            transcripts.append("")
            continue
        conversation = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": TRANSCRIBE_PROMPT}]}]
        prompt = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[prompt], audio=[clip.audio], audio_kwargs={"sampling_rate": sampling_rate}, return_tensors="pt")
        inputs = model_inputs(inputs, device)
        output_ids = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=processor.tokenizer.pad_token_id,
            eos_token_id=processor.tokenizer.eos_token_id,
        )
        new_tokens = output_ids[:, inputs["input_ids"].shape[1] :]
        transcripts.append(processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)[0].strip())
    return transcripts

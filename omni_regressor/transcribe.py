"""Transcripts for clips that come without one: the original Thinker of the backbone writes what it hears.

Used by `omni-regressor predict --transcribe` (and the web page) before scoring; the Thinker is loaded once, used,
and freed before the regressor scores.
"""

import gc

import torch

from processing_omni_regressor import DecodedClip, model_inputs

from .backbones import backbone_of
from .recipes.generative import load_thinker

TRANSCRIBE_PROMPT = "Transcribe the speech in this clip. Answer with the words only."


@torch.no_grad()
def transcribe_clips(model, processor, clips: list[DecodedClip | None], sampling_rate: int = 16000,
                     max_new_tokens: int = 64) -> list[str]:
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
            **inputs, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=processor.tokenizer.pad_token_id, eos_token_id=processor.tokenizer.eos_token_id,
        )
        new_tokens = output_ids[:, inputs["input_ids"].shape[1] :]
        transcripts.append(processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)[0].strip())
    return transcripts


def transcribe_items(source: str, encoder, items, quantization: str | None = None, progress: bool = True) -> list[str]:
    """Transcripts of input items (their window of the file when they have one), decoded through `encoder` so that
    scoring reuses the decodes; "" for unreadable files, which scoring then reports."""
    from tqdm.auto import tqdm

    from processing_omni_regressor import MediaError

    if not items:
        return []
    quantization = quantization or ("4bit" if torch.cuda.is_available() else "none")
    thinker = load_thinker(source, backbone_of(source), quantization=quantization)
    transcripts = []
    for item in tqdm(items, desc="transcribing", disable=not progress):
        try:
            clip = encoder.decode(item.path, item.start, item.end)
        except (MediaError, OSError, ValueError):
            transcripts.append("")
            continue
        (text,) = transcribe_clips(thinker, encoder.processor, [clip], sampling_rate=encoder.settings.audio_sampling_rate)
        transcripts.append(text)
    del thinker
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return transcripts

"""The small commands: each parses its flags (one dataclass), calls the library and prints one result.

    omni-regressor params          parameter counts (and weight memory) of a preset shape, on the meta device
    omni-regressor tiny-backbone   a tiny random released-layout checkpoint + processor
    omni-regressor demo-data       a generated MMSA-layout dataset
    omni-regressor check-data      every problem of a dataset, by clip id
    omni-regressor inspect-inputs  what the model will see of one clip (tokens, frames, sizes, audio)
    omni-regressor denoise         one file's audio track as the model hears it with --denoise deepfilternet
"""

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from processing_omni_regressor import DENOISERS

from .arguments import DatasetArguments, OmniArgumentParser, ProcessingArguments, UsageError, parse_score_range
from .settings import resolve_settings as resolved_settings
from .backbones import ARCHITECTURES, BACKBONES, DEFAULT_BACKBONE, LORA_PRESETS
from .outputs import unwritable_reason


def refuse_to_overwrite(output_dir, overwrite: bool, what: str):
    """Nothing is overwritten without --overwrite: a non-empty folder (or a file) is refused, and so is a folder that
    cannot be written."""
    path = Path(output_dir)
    if path.is_file():
        raise UsageError(f"--output_dir {path} is a file.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UsageError(f"--output_dir {path} is not empty; pass --overwrite to write the {what} into it anyway.")
    reason = unwritable_reason(path)
    if reason is not None:
        raise UsageError(f"--output_dir {path}: {reason}")


@dataclass
class ParamsArguments:
    _argument_group_name = "params"
    arch: str = field(default="7b", metadata={"help": "Preset shape (built on the meta device).", "choices": list(ARCHITECTURES)})
    lora_preset: str = field(default="paper", metadata={"help": "LoRA preset.", "choices": list(LORA_PRESETS)})
    head_hidden_size: int = field(default=256, metadata={"help": "Hidden width of the regression head."})
    memory: bool = field(default=False, metadata={"help": "Add the weight bytes by part after the QLoRA preparation."})
    quantization: str = field(default="4bit", metadata={"help": "With --memory: 4bit or none.", "choices": ["4bit", "none"]})
    upcast_frozen_weights: bool = field(default=False, metadata={"help": "With --memory: the fp32 frozen weights of peft's k-bit preparation."})


def params_command(argv) -> int:
    """Prints one JSON line: total, trainable, LoRA and head parameters (and with --memory, weight bytes by part)."""
    from .parameters import params_report

    (args,) = OmniArgumentParser(ParamsArguments, prog="omni-regressor params").parse(argv)
    print(json.dumps(params_report(args.arch, args.lora_preset, args.head_hidden_size, args.memory, args.quantization,
                                   args.upcast_frozen_weights)))
    return 0


@dataclass
class TinyBackboneArguments:
    _argument_group_name = "tiny-backbone"
    output_dir: str = field(metadata={"help": "Folder for the tiny released-layout checkpoint + processor."})
    backbone: str = field(default=DEFAULT_BACKBONE, metadata={"help": "Backbone family.", "choices": list(BACKBONES)})
    tokenizer: str = field(default="small", metadata={
        "help": "small (a 1k-token BPE, fast) or qwen (the released Qwen vocabulary; needs `pip install dashscope`).",
        "choices": ["small", "qwen"]})
    seed: int = field(default=0, metadata={"help": "Weight seed."})
    overwrite: bool = field(default=False, metadata={"help": "Write into a non-empty --output_dir."})


def tiny_backbone_command(argv) -> int:
    """Writes a tiny random released-layout checkpoint (Qwen2.5-Omni or Qwen3-Omni) with its processor."""
    from .tiny_backbone import write_tiny_backbone

    (args,) = OmniArgumentParser(TinyBackboneArguments, prog="omni-regressor tiny-backbone").parse(argv)
    refuse_to_overwrite(args.output_dir, args.overwrite, "checkpoint")
    print(write_tiny_backbone(args.output_dir, seed=args.seed, backbone=args.backbone, tokenizer=args.tokenizer))
    return 0


@dataclass
class DemoDataArguments:
    _argument_group_name = "demo-data"
    output_dir: str = field(metadata={"help": "Folder for the generated MMSA-layout dataset."})
    num_clips: int = field(default=48, metadata={"help": "Number of clips."})
    seed: int = field(default=0, metadata={"help": "Seed of labels, wording, tones and frames."})
    overwrite: bool = field(default=False, metadata={"help": "Write into a non-empty --output_dir."})

    def validate(self):
        if self.num_clips < 3:
            raise ValueError(f"--num_clips must be at least 3 (train, valid and test), got {self.num_clips}.")


def demo_data_command(argv) -> int:
    """Writes a small MMSA-layout dataset of generated H.264 + AAC clips (labels learnable from each modality)."""
    from .data import write_demo_dataset

    (args,) = OmniArgumentParser(DemoDataArguments, prog="omni-regressor demo-data").parse(argv)
    refuse_to_overwrite(args.output_dir, args.overwrite, "dataset")
    print(write_demo_dataset(args.output_dir, num_clips=args.num_clips, seed=args.seed))
    return 0


@dataclass
class CheckDataArguments(DatasetArguments):
    _argument_group_name = "check-data"
    score_range: str | None = field(default=None, metadata={"help": "Label scale 'low,high' (default: inferred)."})
    model_name_or_path: str | None = field(default=None, metadata={
        "help": "A checkpoint or saved regressor whose processor (and saved settings) decide the decoding; default: "
        "the Qwen2.5-Omni processor's official settings."})
    full_decode: bool = field(default=True, metadata={
        "help": "Decode every clip completely, through the media cache (catches files cut after their header; a later "
        "run then finds the clips decoded). --full_decode false reads headers only."})
    num_workers: int = field(default=0, metadata={"help": "Worker processes that decode clips."})

    def validate(self):
        super().validate()
        parse_score_range(self.score_range)


def check_data_command(argv) -> int:
    """Scans the labels and every media file; prints each problem by clip id and a summary. Exit 1 on any problem."""
    from .data import check_dataset, format_problems

    parser = OmniArgumentParser((CheckDataArguments, ProcessingArguments), prog="omni-regressor check-data")
    args, processing_args = parser.parse(argv, positional="dataset_dir")
    settings, _ = resolved_settings(processing_args, args.model_name_or_path)
    records, problems = check_dataset(
        args.dataset_dir,
        dataset_format=args.dataset_format,
        **args.dataset_options(),
        media_settings=settings.media_settings(),
        modalities=settings.modalities,
        score_range=parse_score_range(args.score_range),
        media_cache=processing_args.media_cache() if args.full_decode else None,
        full_decode=args.full_decode,
        num_workers=args.num_workers,
    )
    if problems:
        print(format_problems(problems))
    print(f"{len(records)} clips read, {len(problems)} problems.")
    return 1 if problems else 0


@dataclass
class InspectArguments:
    _argument_group_name = "inspect-inputs"
    model: str = field(metadata={"help": "A base checkpoint (folder or Hub id) with its processor, or a saved regressor "
                                         "(its saved settings apply; flags override them)."})
    transcript: str | None = field(default=None, metadata={"help": "The clip's transcript (text modality)."})


def inspect_inputs_command(argv) -> int:
    """Prints one JSON object: what the model will see of one clip (tokens by kind, frames and their size, audio).

    usage: omni-regressor inspect-inputs --model PATH CLIP [--transcript TEXT] [--modalities ...] [processing flags]
    """
    from processing_omni_regressor import ClipEncoder

    parser = OmniArgumentParser((InspectArguments, ProcessingArguments), prog="omni-regressor inspect-inputs",
                                description="CLIP: the media file to inspect (one bare argument).")
    args, processing_args, remaining = parser.parse(argv, allow_remaining=True)
    unknown = [token for token in remaining if token.startswith("-")]
    if unknown or len(remaining) != 1:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}" if unknown else "give exactly one CLIP")
    clip_path = remaining[0]
    if not Path(clip_path).is_file():
        raise UsageError(f"{clip_path}: no such file.")
    settings, processor = resolved_settings(processing_args, args.model)
    encoder = ClipEncoder(processor, settings)
    clip = encoder.decode(clip_path) if encoder.needs_media else None
    modalities = encoder.available_modalities(clip, args.transcript)
    if not modalities:
        raise UsageError(f"{clip_path}: no usable modality among {'+'.join(settings.modalities)}.")
    encoded = encoder.encode(args.transcript, clip, modalities)
    ids = encoded["input_ids"][0].tolist()
    tokenizer = processor.tokenizer
    audio_tokens = ids.count(tokenizer.convert_tokens_to_ids(tokenizer.audio_token))
    video_tokens = ids.count(tokenizer.convert_tokens_to_ids(tokenizer.video_token))
    has_video = "video" in modalities
    report = {
        "clip": clip_path,
        "modalities": list(modalities),
        "total_tokens": len(ids),
        "text_tokens": len(ids) - audio_tokens - video_tokens,
        "audio_tokens": audio_tokens,
        "video_tokens": video_tokens,
        "frames": int(clip.frames.shape[0]) if has_video else 0,
        "frame_height": int(clip.frames.shape[1]) if has_video else None,
        "frame_width": int(clip.frames.shape[2]) if has_video else None,
        "fps": round(clip.fps, 4) if has_video else None,
        "audio_seconds": round(len(clip.audio) / settings.audio_sampling_rate, 3) if "audio" in modalities else 0.0,
        "audio_feature_frames": int(encoded["feature_attention_mask"].sum()) if "input_features" in encoded else 0,
        "truncated": bool(clip.truncated) if clip is not None else False,
        "denoise": settings.denoise,
        "settings": {key: settings.to_dict()[key] for key in
                     ("fps", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels", "max_audio_seconds")},
    }
    print(json.dumps(report))
    return 0


@dataclass
class DenoiseArguments:
    _argument_group_name = "denoise"
    input: str = field(metadata={"help": "A video or audio file (also accepted as the first bare argument)."})
    output: str = field(metadata={"help": "The WAV file to write: 16 kHz mono, 16-bit PCM."})
    denoise: str = field(default="deepfilternet", metadata={
        "help": "deepfilternet: what a model trained with --denoise deepfilternet hears; none: the same track without "
        "denoising, to compare.", "choices": list(DENOISERS)})
    max_audio_seconds: float | None = field(default=None, metadata={
        "help": "Only the first N seconds, as a model's decoding cuts them (default: the released extractor's limit, "
                "300 s)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output."})

    def validate(self):
        ProcessingArguments(max_audio_seconds=self.max_audio_seconds).validate()
        if Path(self.output).suffix.lower() != ".wav":
            raise ValueError(f"--output {self.output}: give a .wav file name.")


def write_wav(path, audio, sampling_rate: int) -> int:
    """Mono 16-bit PCM WAV (standard library `wave`), written to a temporary file and renamed; -> clipped samples."""
    import tempfile
    import wave

    import numpy as np

    scaled = np.round(np.asarray(audio, dtype=np.float64) * 32767.0)
    clipped = int(np.count_nonzero(np.abs(scaled) > 32767))
    pcm = np.clip(scaled, -32768, 32767).astype("<i2")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file, wave.open(file, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(int(sampling_rate))
            writer.writeframes(pcm.tobytes())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return clipped


def denoise_command(argv) -> int:
    """Writes one file's audio track as a model hears it (decode_clip: 16 kHz mono, DeepFilterNet3 unless
    --denoise none) to a WAV file for listening; prints one JSON line.

    usage: omni-regressor denoise INPUT --output OUT.wav [--denoise none] [--max_audio_seconds S] [--overwrite]
    """
    import time

    import numpy as np

    from processing_omni_regressor import decode_clip

    (args,) = OmniArgumentParser(DenoiseArguments, prog="omni-regressor denoise").parse(argv, positional="input")
    source, output = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UsageError(f"{source}: no such file.")
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; give a .wav file name.")
    if output.exists() and not args.overwrite:
        raise UsageError(f"--output {output} exists; pass --overwrite to replace it.")
    if args.denoise != "none":
        from .denoise import require_runtime

        try:
            require_runtime()
        except ImportError as error:
            raise UsageError(str(error)) from None
    # The decoding of every model (`decode_clip`); two small frames keep its video side cheap, the audio is the same.
    settings, _ = resolved_settings({"min_frames": 2, "max_frames": 2, "max_audio_seconds": args.max_audio_seconds,
                                     "denoise": args.denoise})
    factor = settings.image_factor
    settings = replace(settings, min_pixels=factor * factor, max_pixels=4 * factor * factor).media_settings()
    started = time.perf_counter()
    clip = decode_clip(source, settings)
    if clip.audio is None or len(clip.audio) == 0:
        raise UsageError(f"{source} has no audio track: nothing to write.")
    clipped = write_wav(output, clip.audio, settings.audio_sampling_rate)
    print(json.dumps({
        "input": str(source),
        "output": str(output),
        "denoise": args.denoise,
        "audio_seconds": round(len(clip.audio) / settings.audio_sampling_rate, 3),
        "sampling_rate": settings.audio_sampling_rate,
        "truncated": bool(clip.truncated),
        "peak": round(float(np.max(np.abs(clip.audio))), 4),
        "clipped_samples": clipped,
        "seconds": round(time.perf_counter() - started, 2),
    }))
    return 0


@dataclass
class ServeArguments:
    _argument_group_name = "serve"
    model: str = field(metadata={"help": "An exported regressor folder (or Hub id) to serve."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to listen on (0.0.0.0 for every interface)."})
    port: int = field(default=7860, metadata={"help": "Port to listen on."})

    def validate(self):
        if not 0 < self.port < 65536:
            raise ValueError(f"--port must be in 1..65535, got {self.port}.")


def serve_command(argv) -> int:
    """Serves the web page of a model (the Gradio app `omni-regressor space` writes as a Space's app.py) until
    interrupted."""
    from .model_loading import check_model_folder

    (args,) = OmniArgumentParser(ServeArguments, prog="omni-regressor serve").parse(argv)
    check_model_folder(args.model)
    try:
        from .space_app import build_app
    except ImportError as error:
        raise UsageError(f'the web page needs gradio: pip install "omni-regressor[demo]" ({error}).') from None
    from pipeline_omni_regressor import OmniSentimentRegressionPipeline

    from .model_loading import load_regressor

    # The package's classes, complete weights: no code from the folder runs (its app.py does that in a Space).
    sentiment = OmniSentimentRegressionPipeline(model=load_regressor(args.model))
    print(f"serving {args.model} on http://{args.host}:{args.port}/", flush=True)
    build_app(args.model, sentiment).launch(server_name=args.host, server_port=args.port, show_error=False, quiet=True)
    return 0

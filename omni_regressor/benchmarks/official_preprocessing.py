"""The package's preprocessing against the path the Qwen-Omni model cards show, and against decoding alone.

    python -m omni_regressor.benchmarks.official_preprocessing [--seconds 4 8 30] [--sizes 640x360 1280x720]

For each generated clip (H.264 + AAC at 25 fps, a moving pattern and a tone), measured in one process with the arms
interleaved (a burst of load from other processes hits every arm alike):

- `package`: `ClipEncoder.decode` + `ClipEncoder.encode` (no cache), the settings a model is trained with (the
  paper's 16-frame cap);
- `package_official_frames`: the same with `--max_frames 768`, qwen-omni-utils' cap (equal video tokens on long clips);
- `official`: qwen-omni-utils 0.0.9 `process_mm_info(conversation, use_audio_in_video=True)` (torchcodec video
  reader, audioread + librosa audio) and the transformers processor, as the model card calls it;
- `decode_only`: PyAV decoding every video and audio frame of the file (threaded, no conversion): the floor;
- `package_decode`: `decode_clip` alone (decoding + the one colour conversion/resize of the kept frames).

Prints one JSON line per clip (milliseconds, ratios, video/audio tokens and audio samples of each arm) and a summary
line with the load average before and after. On a shared machine, small torch ops with two intra-op threads wait for
a descheduled thread: `--torch_threads 1` (what a DataLoader worker runs with) gives steadier numbers for both paths.

Needs `torchcodec` and FFmpeg (`pip install "omni-regressor[bench]"`;
torchcodec loads FFmpeg's shared libraries, and qwen-omni-utils' audio reader runs the `ffmpeg` program, e.g.
`apt-get install ffmpeg`). The package itself needs neither.
"""

import importlib.util
import os
import shutil
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from .common import base_parser, interleaved_medians, print_report, workspace

SOURCE_FPS = 25.0
TRANSCRIPT = "i really loved this movie it was wonderful"


def write_test_clip(path: Path, seconds: float, size: tuple[int, int], fps: float = SOURCE_FPS) -> Path:
    """An H.264 (yuv420p) + AAC mp4: a gradient with a square moving across it, a 220 Hz tone. Frames are made one at
    a time (a 30-s 720p clip would be 2 GB as one array)."""
    import av

    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    background = np.empty((height, width, 3), dtype=np.uint8)  # (H, W, 3)
    background[...] = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    side = height // 3
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}  # B-frames and references like a typical upload
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for index in range(int(round(seconds * fps))):
            image = background.copy()
            left = (index * 7) % (width - side)
            image[side : 2 * side, left : left + side] = (255, 80, 0)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        time_axis = np.arange(int(round(seconds * 16000))) / 16000
        waveform = (0.2 * np.sin(2 * np.pi * 220 * time_axis)).astype(np.float32)
        for start in range(0, len(waveform), 1024):
            frame = av.AudioFrame.from_ndarray(waveform[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def missing_requirements() -> list[str]:
    """What the official path needs and this environment lacks, each with how to get it."""
    missing = []
    if importlib.util.find_spec("qwen_omni_utils") is None:
        missing.append("qwen-omni-utils (pip install qwen-omni-utils==0.0.9)")
    if importlib.util.find_spec("torchcodec") is None:
        missing.append('torchcodec (pip install "omni-regressor[bench]")')
    else:
        try:
            import torchcodec.decoders  # noqa: F401  loads FFmpeg's shared libraries
        except Exception as error:  # torchcodec raises RuntimeError/OSError variants when FFmpeg is absent
            missing.append(f"FFmpeg libraries for torchcodec (apt-get install ffmpeg): {str(error).splitlines()[0]}")
    if shutil.which("ffmpeg") is None:
        missing.append("the ffmpeg program for qwen-omni-utils' audio reader (apt-get install ffmpeg)")
    return missing


def official_inputs(processor, path: str, transcript: str):
    """The model card's recipe: process_mm_info + the processor (audio taken from the video)."""
    from qwen_omni_utils import process_mm_info

    conversation = [{"role": "user", "content": [{"type": "video", "video": path}, {"type": "text", "text": transcript}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    audios, images, videos = process_mm_info(conversation, use_audio_in_video=True)
    # transformers 5 replaced `use_audio_in_video=True` by these two arguments (the old one now fails).
    inputs = processor(text=text, audio=audios, images=images, videos=videos, return_tensors="pt", padding=True,
                       load_audio_from_video=True, audio_from_video_indices=[0])
    return inputs, len(audios[0])


def decode_everything(path: str) -> None:
    """Every video and audio frame of the file, decoded and dropped: the floor under any preprocessing."""
    import av

    with av.open(path) as container:
        for stream in container.streams.video:
            stream.thread_type = "AUTO"
        for _ in container.decode(*container.streams.video, *container.streams.audio):
            pass


def token_counts(inputs, tokenizer) -> dict:
    ids = inputs["input_ids"][0]
    return {
        "video": int((ids == tokenizer.convert_tokens_to_ids(tokenizer.video_token)).sum()),
        "audio": int((ids == tokenizer.convert_tokens_to_ids(tokenizer.audio_token)).sum()),
    }


def measure_clip(path: Path, processor, rounds: int) -> dict:
    from processing_omni_regressor import ClipEncoder, ProcessingSettings, decode_clip

    package = ClipEncoder(processor, ProcessingSettings())
    official_frames = ClipEncoder(processor, ProcessingSettings(max_frames=768))
    path = str(path)

    def run_package(encoder):
        clip = encoder.decode(path)
        return encoder.encode(TRANSCRIPT, clip), len(clip.audio), int(clip.frames.shape[0])

    package_inputs, package_samples, package_frames = run_package(package)
    full_inputs, _, full_frames = run_package(official_frames)
    official, official_samples = official_inputs(processor, path, TRANSCRIPT)
    milliseconds = {
        name: 1000 * seconds
        for name, seconds in interleaved_medians(
            {
                "package": lambda: run_package(package),
                "package_official_frames": lambda: run_package(official_frames),
                "official": lambda: official_inputs(processor, path, TRANSCRIPT),
                "decode_only": lambda: decode_everything(path),
                "package_decode": lambda: decode_clip(path, package.media_settings),
            },
            rounds,
        ).items()
    }
    tokenizer = processor.tokenizer
    official_tokens = token_counts(official, tokenizer)
    full_tokens = token_counts(full_inputs, tokenizer)
    return {
        "ms": {name: round(value, 1) for name, value in milliseconds.items()},
        "official_over_package": round(milliseconds["official"] / milliseconds["package"], 2),
        # Equal video tokens on every clip length: the package with qwen-omni-utils' frame cap.
        "official_over_package_at_official_frames": round(milliseconds["official"] / milliseconds["package_official_frames"], 2),
        "package_over_decode_only": round(milliseconds["package"] / milliseconds["decode_only"], 2),
        "package_decode_over_decode_only": round(milliseconds["package_decode"] / milliseconds["decode_only"], 2),
        "frames": {"package": package_frames, "package_official_frames": full_frames,
                   "official": int(official["video_grid_thw"][0, 0]) * 2},
        "tokens": {"package": token_counts(package_inputs, tokenizer), "package_official_frames": full_tokens,
                   "official": official_tokens},
        "equal_video_tokens_at_official_frames": full_tokens["video"] == official_tokens["video"],
        "audio_samples": {"package": package_samples, "official": official_samples},
    }


def main(argv=None) -> int:
    parser = base_parser(__doc__.splitlines()[0], model=False)
    parser.add_argument("--seconds", type=float, nargs="+", default=[4.0, 8.0, 30.0], help="clip lengths")
    parser.add_argument("--sizes", nargs="+", default=["640x360", "1280x720"], help="WIDTHxHEIGHT of the clips")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (the median is reported)")
    parser.add_argument("--torch_threads", type=int, default=None,
                        help="torch intra-op threads for every arm (default: torch's; DataLoader workers use 1)")
    args = parser.parse_args(argv)
    missing = missing_requirements()
    if missing:
        raise SystemExit("official_preprocessing: the official path cannot run here; missing: " + "; ".join(missing))
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "torchcodec")  # read when qwen_omni_utils is imported
    warnings.filterwarnings("ignore", category=FutureWarning)  # librosa's audioread deprecation, once per clip
    from ..tiny_backbone import build_processor

    processor = build_processor("qwen2.5-omni", "small")  # the released preprocessor settings; token counts only
    load_before = os.getloadavg()
    results = []
    with workspace(args.workdir) as workdir:
        for size in args.sizes:
            width, height = (int(part) for part in size.lower().split("x"))
            for seconds in args.seconds:
                path = write_test_clip(workdir / f"{width}x{height}-{seconds:g}s.mp4", seconds, (width, height))
                report = {"benchmark": "official_preprocessing", "clip": f"{seconds:g}s {width}x{height} @{SOURCE_FPS:g}fps",
                          **measure_clip(path, processor, args.rounds)}
                results.append(report)
                print_report(report)
    print_report({
        "benchmark": "official_preprocessing_summary",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "official_over_package": {result["clip"]: result["official_over_package"] for result in results},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

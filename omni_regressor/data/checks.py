"""Media and transcript checks of a dataset's records, for the modalities a run uses.

Train and evaluate decode every clip here, through the media cache, before any model loads: a clip the model would
trip on (missing, unreadable, cut after its header, unsupported geometry, too short for the chosen modalities, empty
transcript) is a named problem, and the decoded clips are in the cache for the run. `check-data` runs the same check.
"""

import os

import torch
from tqdm.auto import tqdm

from processing_omni_regressor import (
    MIN_AUDIO_SECONDS,
    MODALITIES,
    MediaError,
    MediaSettings,
    TranscriptCleaner,
    audio_seconds,
    missing_file_detail,
    parse_modalities,
)

from ..media import MediaCache, probe_media
from .records import ClipProblem, ClipRecord

# Without a tokenizer, the Qwen-style special-token strings (`<|...|>`) are what a transcript cannot carry.
_clean_transcript = TranscriptCleaner(None)


def transcript_problem(record: ClipRecord) -> ClipProblem | None:
    if _clean_transcript(record.text):
        return None
    detail = "the transcript is empty." if not record.text.strip() else "the transcript holds only special tokens."
    return ClipProblem(record.clip_id, "empty_transcript", detail)


def media_problems(record: ClipRecord, modalities, media_settings: MediaSettings, media_cache, full_decode=True):
    """The problems of one clip's media file for `modalities` (decoded through `media_cache` when `full_decode`)."""
    path = record.media_path
    if not os.path.exists(path):
        return [ClipProblem(record.clip_id, "missing_file", f"{path}: {missing_file_detail(path)}")]
    if not os.path.isfile(path):
        return [ClipProblem(record.clip_id, "unreadable_file", f"{path} is a folder, not a media file.")]
    try:
        if full_decode:
            clip = media_cache.load(path, media_settings)
            has_video, has_audio = clip.frames is not None, clip.audio is not None
            seconds_of_audio = audio_seconds(clip, media_settings.audio_sampling_rate)
        else:
            info = probe_media(path)
            has_video, has_audio, seconds_of_audio = info["has_video"], info["has_audio"], info["audio_duration"]
            if has_video and info["aspect_ratio"] is not None and info["aspect_ratio"] > 200:
                return [ClipProblem(record.clip_id, "unsupported_geometry", f"{path}: frames of {info['size']} (aspect ratio over 200).")]
    except MediaError as error:
        return [ClipProblem(record.clip_id, error.reason, str(error))]
    problems = []
    if "video" in modalities and not has_video:
        problems.append(ClipProblem(record.clip_id, "no_video_stream", f"{path} has no video stream."))
    if "audio" in modalities and not has_audio:
        problems.append(ClipProblem(record.clip_id, "no_audio_track", f"{path} has no audio track."))
    elif "audio" in modalities and seconds_of_audio is not None and seconds_of_audio < MIN_AUDIO_SECONDS:
        detail = f"{path}: {seconds_of_audio * 1000:.0f} ms of audio, less than the {MIN_AUDIO_SECONDS * 1000:.0f} ms an audio input needs."
        problems.append(ClipProblem(record.clip_id, "too_short_audio", detail))
    return problems


class _ClipChecks(torch.utils.data.Dataset):
    """One record's problems per item, so that a DataLoader's workers check clips in parallel."""

    def __init__(self, records, modalities, media_settings, media_cache, full_decode):
        self.records, self.modalities = records, modalities
        self.media_settings, self.media_cache, self.full_decode = media_settings, media_cache, full_decode

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        """-> (problems, decodes, cache hits) of one record (counts from this process's copy of the cache)."""
        decodes, hits = self.media_cache.decode_calls, self.media_cache.hits
        problems = media_problems(self.records[index], self.modalities, self.media_settings, self.media_cache, self.full_decode)
        return problems, self.media_cache.decode_calls - decodes, self.media_cache.hits - hits


def scan_problems(
    records: list[ClipRecord],
    media_settings: MediaSettings | None = None,
    modalities=MODALITIES,
    media_cache=None,
    full_decode: bool = True,
    num_workers: int = 0,
    progress: bool = True,
) -> list[ClipProblem]:
    """Transcript and media checks for the chosen modalities -> `ClipProblem`s, in record order.

    `full_decode` decodes every clip (through `media_cache`, default: no cache), which catches files cut or corrupt
    after a valid header; `full_decode=False` reads headers only. A missing audio track matters only with "audio",
    an empty transcript only with "text".
    """
    modalities = parse_modalities(modalities)
    media_settings = media_settings or MediaSettings()
    media_cache = media_cache if media_cache is not None else MediaCache(None)
    problems = []
    if "text" in modalities:
        problems += [problem for record in records if (problem := transcript_problem(record)) is not None]
    if "audio" in modalities or "video" in modalities:
        checks = _ClipChecks(records, modalities, media_settings, media_cache, full_decode)
        loader = torch.utils.data.DataLoader(checks, batch_size=None, num_workers=num_workers, collate_fn=lambda item: item)
        bar = tqdm(loader, total=len(records), desc="checking clips", unit="clip", disable=not progress)
        for clip_problems, decodes, hits in bar:
            problems += clip_problems
            if num_workers:  # the workers counted on their own copies of the cache
                media_cache.decode_calls += decodes
                media_cache.hits += hits
    order = {record.clip_id: index for index, record in enumerate(records)}
    return sorted(problems, key=lambda problem: order.get(problem.clip_id, -1))


__all__ = ["media_problems", "scan_problems", "transcript_problem"]

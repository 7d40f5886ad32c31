"""Datasets: one reader per layout, registered by name, and the checks every run makes before any compute.

Every reader returns `(records, problems)`: a `ClipRecord` per usable row and a `ClipProblem` per row or file that
is not. A new layout is one module with a `read_<layout>(root, score_range=None, **options)` function and one entry
in `DATASET_FORMATS`. Ids are strings everywhere ("007" stays "007"); a record's `clip_id` is "<video_id>/<clip_id>".
"""

from processing_omni_regressor import MODALITIES

from .checks import scan_problems
from .cmu_sdk import read_cmu_sdk
from .demo import write_demo_dataset, write_demo_sdk_layout
from .mmsa import read_mmsa
from .records import (
    PROBLEM_REASONS,
    SPLITS,
    ClipProblem,
    ClipRecord,
    DataProblemsError,
    format_problems,
    infer_score_range,
    records_to_dataset_dict,
    usable_records,
    write_skipped,
)

# name -> reader. "mmsa" also reads CH-SIMS as MMSA distributes it.
DATASET_FORMATS = {"mmsa": read_mmsa, "cmu-sdk": read_cmu_sdk}


def read_dataset(root, dataset_format="mmsa", labels_csv=None, score_range=None, **options):
    """The reader of `dataset_format` ("mmsa" or "cmu-sdk"; the latter needs `labels_csv`), given the layout's options
    (`DatasetArguments.dataset_options()` on the command line)."""
    if dataset_format not in DATASET_FORMATS:
        raise ValueError(f"`dataset_format` must be one of {list(DATASET_FORMATS)}, got {dataset_format!r}.")
    return DATASET_FORMATS[dataset_format](root, score_range=score_range, labels_csv=labels_csv, **options)


def check_dataset(
    root,
    dataset_format="mmsa",
    labels_csv=None,
    media_settings=None,
    modalities=MODALITIES,
    score_range=None,
    media_cache=None,
    full_decode=True,
    num_workers=0,
    progress=True,
    **options,
) -> tuple[list[ClipRecord], list[ClipProblem]]:
    """Reader + `scan_problems`. `records` still holds clips with media problems; filter with `usable_records`."""
    records, problems = read_dataset(root, dataset_format, labels_csv=labels_csv, score_range=score_range, **options)
    media_problems = scan_problems(
        records, media_settings, modalities, media_cache=media_cache, full_decode=full_decode,
        num_workers=num_workers, progress=progress,
    )
    return records, problems + media_problems


__all__ = [
    "DATASET_FORMATS", "PROBLEM_REASONS", "SPLITS", "ClipProblem", "ClipRecord", "DataProblemsError", "check_dataset",
    "format_problems", "infer_score_range", "read_cmu_sdk", "read_dataset", "read_mmsa", "records_to_dataset_dict",
    "scan_problems", "usable_records", "write_demo_dataset", "write_demo_sdk_layout", "write_skipped",
]

"""`--engine ray`: corpus-scale scoring on a Ray cluster (Ray Data), for `omni-regressor predict` and `evaluate`.

    pip install -e ".[ray]"
    omni-regressor predict --engine ray --num_scorers 2 --model M clips/ --output scores.csv       # a local cluster
    ray start --head; omni-regressor predict --engine ray --ray_address auto --model M s3://bucket/manifest.parquet ...

The inputs (the driver's list of `InputItem`s) become a Ray Dataset of small blocks; CPU tasks (`--decode_cpus` each)
decode and encode each clip with the same `prepare_clip` and `ClipEncoder` settings as the local engine; an actor
pool (`--num_scorers` actors, `--scorer_gpus` each, the model loaded once per actor) scores chunks of
`batch_size * chunk_batches` prepared clips in batches of one modality set sorted by length
(`score_in_length_order`, as the local engine). The driver receives only the small results, puts them back in input
order and yields `(item, ClipScore)` like `streaming.stream_scores`: `predict` writes the rows with its own writer.

Execution streams (Ray Data's backpressure bounds what is in flight), so the driver's memory does not grow with the
number of inputs beyond their list. Ray Data's defaults do the recovery: a decode task lost with its worker or
node is retried (`max_retries=-1`), a killed scorer actor is restarted and its batch retried (`max_restarts=-1`,
`max_task_retries=-1`); the driver keeps the first result of each input, so nothing is lost or written twice.
"""

import math
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .arguments import UsageError, at_least

ENGINES = ("local", "ray")
# A named actor that, when one exists, receives each scorer actor's handle as it starts (tests kill one with it).
SCORER_REGISTRY = "omni-regressor-scorers"
MANIFEST_SUFFIXES = (".parquet", ".csv")


@dataclass
class EngineArguments:
    engine: str = field(default="local", metadata={
        "help": "local: this machine (or a torchrun launch); ray: a Ray cluster (Ray Data), see docs/scale.md.",
        "choices": list(ENGINES)})
    ray_address: str | None = field(default=None, metadata={
        "help": "With --engine ray: the cluster to join (`auto`, `ray://host:10001`, host:6379; default: RAY_ADDRESS "
                "if set, else a new local cluster)."})
    num_scorers: int = field(default=1, metadata={"help": "With --engine ray: scorer actors, each loading the model once."})
    scorer_gpus: float | None = field(default=None, metadata={
        "help": "With --engine ray: GPUs per scorer actor (default: 1 if the cluster has GPUs, else 0)."})
    decode_cpus: float = field(default=1.0, metadata={"help": "With --engine ray: CPUs per decode + encode task."})

    def validate(self):
        at_least(self, num_scorers=1, scorer_gpus=0)
        if not self.decode_cpus > 0:
            raise ValueError(f"--decode_cpus must be more than 0, got {self.decode_cpus}.")
        ray_flags = [name for name, default in (("ray_address", None), ("num_scorers", 1), ("scorer_gpus", None),
                                                ("decode_cpus", 1.0)) if getattr(self, name) != default]
        if self.engine != "ray" and ray_flags:
            raise ValueError(f"--{ray_flags[0]} needs --engine ray.")

    @property
    def uses_ray(self) -> bool:
        return self.engine == "ray"


def check_ray_run(transcribe: bool, world_size: int) -> None:
    """What `--engine ray` does not combine with, said before anything loads."""
    if world_size > 1:
        raise UsageError("--engine ray is one driver process: run it without torchrun (Ray spreads the work).")
    if transcribe:
        raise UsageError("--transcribe runs the Thinker on the driver: transcribe with --engine local (or give a "
                         "`path,text` manifest) and score with --engine ray.")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError('--engine ray needs Ray Data: pip install "omni-regressor[ray]" (or "ray[data]").') from None


# --- inputs: local ones as `predict` reads them, plus manifests on any pyarrow file system ---------------------------


def is_manifest(value: str) -> bool:
    return "://" in value or value.lower().endswith(".parquet")


def read_manifest(uri: str) -> list[tuple[str, str | None]]:
    """A Parquet or CSV manifest (local, `s3://`, `gs://`, `file://`, ...) with a `path` column and optionally `text`
    -> (path, transcript) pairs in file order. Relative paths are resolved against the manifest's folder."""
    import pyarrow.csv
    import pyarrow.fs
    import pyarrow.parquet

    try:
        filesystem, location = pyarrow.fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
        if not uri.lower().endswith(MANIFEST_SUFFIXES):
            raise UsageError(f"{uri}: a manifest must be a .parquet or .csv file with a `path` column.")
        if uri.lower().endswith(".parquet"):
            table = pyarrow.parquet.read_table(location, filesystem=filesystem)
        else:
            with filesystem.open_input_stream(location) as stream:
                table = pyarrow.csv.read_csv(stream)
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001 - a missing file, bad credentials, not Parquet: the user's to fix
        raise UsageError(f"{uri}: cannot read the manifest ({type(error).__name__}: {str(error).splitlines()[0]}).") from None
    if "path" not in table.column_names:
        raise UsageError(f"{uri}: a manifest needs a `path` column (and optionally `text`), got {table.column_names}.")
    base = uri.rsplit("/", 1)[0] if "://" in uri else str(Path(uri).resolve().parent)
    paths = table.column("path").to_pylist()
    texts = table.column("text").to_pylist() if "text" in table.column_names else [None] * len(paths)
    pairs = []
    for path, text in zip(paths, texts):
        path = str(path or "").strip()
        if "://" not in path and not Path(path).is_absolute():
            path = f"{base}/{path}" if "://" in base else str(Path(base) / path)
        pairs.append((path, (str(text).strip() or None) if text is not None else None))
    return pairs


def expand_ray_inputs(inputs: list[str], transcript: str | None, expand_local) -> list[tuple[str, str | None]]:
    """INPUT arguments -> (path, transcript) pairs: manifests (`*.parquet`, any `scheme://` URI) read here, the rest by
    `expand_local` (predict's `expand_inputs`: files, folders, `path,text` CSVs)."""
    if transcript is not None or not any(is_manifest(value) for value in inputs):
        return expand_local(inputs, transcript)
    pairs = []
    for value in inputs:
        pairs += read_manifest(value) if is_manifest(value) else expand_local([value], None)
    return pairs


# --- the stages -----------------------------------------------------------------------------------------------------


def _local_media(path: str):
    """(local path to decode, temporary file to remove or None): a `scheme://` media path is copied to a temporary file
    through pyarrow's file systems; local paths (and `file://` URIs) are used in place."""
    if "://" not in path:
        return path, None
    if path.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(path).path), None
    import shutil
    import tempfile

    import pyarrow.fs

    filesystem, location = pyarrow.fs.FileSystem.from_uri(path)
    handle = tempfile.NamedTemporaryFile(suffix=Path(location).suffix, delete=False)
    with handle, filesystem.open_input_stream(location) as stream:
        shutil.copyfileobj(stream, handle)
    return handle.name, handle.name


def prepare_batch(batch: dict, encoder, allow_missing_modalities: bool, modalities, explain: bool) -> dict:
    """Ray Data task: pickled `InputItem`s -> pickled `PreparedClip`s (decoded + encoded; a failure is the clip's error)."""
    import copy
    import os

    from pipeline_omni_regressor import PreparedClip, prepare_clip
    from processing_omni_regressor import DirectDecoder

    uncached = copy.copy(encoder)  # a temporary copy of a remote file: caching it under its temporary name is waste
    uncached.media_cache = DirectDecoder()
    positions, prepared = [], []
    for position, blob in zip(batch["position"], batch["item"]):
        item = pickle.loads(blob)
        if item.error is not None:
            clip = PreparedClip(int(position), item.path, None, (), item.error)
        else:
            temporary = None
            try:
                local, temporary = _local_media(item.path)
                clip = prepare_clip(uncached if temporary else encoder, int(position), local, item.transcript,
                                    allow_missing_modalities, modalities, explain, item.start, item.end)
            except Exception as error:  # noqa: BLE001 - a remote file that cannot be fetched: this clip's error
                clip = PreparedClip(int(position), item.path, None, (), f"{item.path}: {type(error).__name__}: {error}")
            finally:
                if temporary is not None:
                    os.unlink(temporary)
            if clip.path != item.path:  # a remote file decoded from its local copy: rows name the input
                clip.error = clip.error.replace(clip.path, item.path) if clip.error else None
                clip.path = item.path
        positions.append(int(position))
        prepared.append(pickle.dumps(clip, protocol=pickle.HIGHEST_PROTOCOL))
    return {"position": positions, "prepared": prepared}


class ScoreClips:
    """Ray Data actor: loads the regressor once, then scores chunks of prepared clips (batches of one modality set,
    sorted by length); clips that could not be prepared pass through as their error."""

    def __init__(self, model_dir, modalities, media_cache_dir, processing, batch_size: int, use_gpu: bool):
        import ray

        from .inference import SentimentScorer

        self.scorer = SentimentScorer.from_pretrained(model_dir, modalities=modalities, media_cache_dir=media_cache_dir,
                                                      processing=processing, device="cuda" if use_gpu else "cpu")
        self.batch_size = batch_size
        try:
            registry = ray.get_actor(SCORER_REGISTRY)
        except ValueError:  # none: the usual case
            return
        ray.get(registry.add.remote(ray.get_runtime_context().current_actor))

    def __call__(self, batch: dict) -> dict:
        from pipeline_omni_regressor import ClipScore, score_in_length_order

        clips = [pickle.loads(blob) for blob in batch["prepared"]]
        ready = [clip for clip in clips if clip.error is None]
        scored = score_in_length_order(self.scorer.model, self.scorer.encoder, ready, self.batch_size, self.scorer.device)
        results = {id(clip): result for clip, result in zip(ready, scored)}
        return {
            "position": [clip.index for clip in clips],
            "result": [pickle.dumps(results.get(id(clip)) or ClipScore(clip.path, None, clip.modalities, clip.error),
                                    protocol=pickle.HIGHEST_PROTOCOL) for clip in clips],
        }


class ScorerRegistry:
    """Collects the handles of the scorer actors (create it as a named actor, `SCORER_REGISTRY`, before a run)."""

    def __init__(self):
        self.handles = []

    def add(self, handle):
        self.handles.append(handle)

    def scorers(self) -> list:
        return list(self.handles)


# --- the driver -----------------------------------------------------------------------------------------------------


class RayScorer:
    """The driver's side: the `ClipEncoder` of the saved model (for columns, score range and the decode tasks; no
    weights are loaded here) and the cluster the scoring runs on."""

    def __init__(self, model_dir, encoder, engine: EngineArguments, modalities, media_cache_dir, processing):
        self.model_dir, self.encoder, self.engine = str(model_dir), encoder, engine
        self.modalities, self.media_cache_dir, self.processing = modalities, media_cache_dir, processing
        self.device = None

    @classmethod
    def from_pretrained(cls, model_dir, engine: EngineArguments, modalities=None, media_cache_dir=None, processing=None):
        """Joins (or starts) the cluster and builds the encoder as `SentimentScorer.from_model` does; the scorers
        receive the settings resolved here, so the driver and every actor see the same inputs."""
        from processing_omni_regressor import ClipEncoder

        from .media import MediaCache
        from .model_loading import load_config  # the package's classes, no code from the folder
        from .settings import requested_settings, resolve_settings

        connect(engine.ray_address)
        config = load_config(model_dir)
        settings, processor = resolve_settings(requested_settings(processing, modalities), model_dir, config=config)
        encoder = ClipEncoder(processor, settings, config.score_range, MediaCache(media_cache_dir))
        scorer = cls(model_dir, encoder, engine, settings.modalities, media_cache_dir, settings.to_dict())
        scorer.config = config  # what predict's provenance reads (no weights are loaded on the driver)
        return scorer

    def scorer_gpus(self) -> float:
        import ray

        if self.engine.scorer_gpus is not None:
            return self.engine.scorer_gpus
        return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def dataset(self, items, batch_size: int, chunk_batches: int = 4, allow_missing_modalities=True, explain=False, *,
                window_batches: int | None = None):
        """The lazy Ray Dataset of results: rows `position` (in `items`) and `result` (a pickled `ClipScore`).
        `window_batches` is the former name of `chunk_batches`."""
        import logging

        import ray

        chunk_batches = chunk_batches if window_batches is None else window_batches

        # predict draws its own progress bar; Ray Data's bars and periodic status lines would repeat it on stderr
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        rows = [{"position": position, "item": pickle.dumps(item)} for position, item in enumerate(items)]
        # Small blocks (one scoring batch each): decoding spreads over the cluster and streams, block by block.
        blocks = max(1, min(len(rows), math.ceil(len(rows) / batch_size)))
        gpus = self.scorer_gpus()
        chunk = max(1, batch_size * chunk_batches)
        return (
            ray.data.from_items(rows, override_num_blocks=blocks)
            .map_batches(prepare_batch, batch_size=1, num_cpus=self.engine.decode_cpus,
                         fn_kwargs={"encoder": self.encoder, "allow_missing_modalities": allow_missing_modalities,
                                    "modalities": None, "explain": explain})
            .map_batches(ScoreClips, batch_size=chunk, compute=ray.data.ActorPoolStrategy(size=self.engine.num_scorers),
                         num_gpus=gpus,
                         # a CPU scorer reserves no CPU slot: decode tasks always get one (else 2 scorers on a
                         # 2-core cluster would hold every slot and wait forever for decoded clips)
                         num_cpus=1 if gpus else 0,
                         fn_constructor_kwargs={"model_dir": self.model_dir, "modalities": self.modalities,
                                                "media_cache_dir": self.media_cache_dir, "processing": self.processing,
                                                "batch_size": batch_size, "use_gpu": gpus > 0})
        )

    def stream(self, items, batch_size: int = 8, chunk_batches: int = 4, allow_missing_modalities=True, explain=False,
               *, window_batches: int | None = None):
        """Yields `(item, ClipScore)` in the order of `items`, each input exactly once (see `streaming.stream_scores`).
        `window_batches` is the former name of `chunk_batches`."""
        chunk_batches = chunk_batches if window_batches is None else window_batches
        if not items:
            return
        results = self.dataset(items, batch_size, chunk_batches, allow_missing_modalities, explain)
        finished, next_position = {}, 0
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            for position, blob in zip(batch["position"], batch["result"]):
                position = int(position)
                if position >= next_position and position not in finished:  # a retried batch's repeat is dropped
                    finished[position] = pickle.loads(blob)
            while next_position in finished:
                yield items[next_position], finished.pop(next_position)
                next_position += 1
        if next_position < len(items):
            raise RuntimeError(f"the Ray run ended without a result for {items[next_position].path} (and "
                               f"{len(items) - next_position - 1} inputs after it); rerun with --resume.")


def connect(address: str | None) -> None:
    """Joins the cluster at `address` (default: RAY_ADDRESS, else a new local one); an already connected driver (a
    notebook, the tests' session cluster) is used as it is."""
    import ray

    if ray.is_initialized():
        return
    import os

    joining = address or os.environ.get("RAY_ADDRESS")
    print(f"ray: {'joining ' + joining if joining else 'starting a local cluster'}", file=sys.stderr)
    # a local cluster lives as long as this run: no dashboard to start; a running cluster keeps its own settings
    ray.init(address=address, **({} if joining else {"include_dashboard": False}), log_to_driver=False)

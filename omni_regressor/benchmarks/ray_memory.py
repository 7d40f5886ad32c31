"""Peak resident memory of the `predict --engine ray` driver on N and factor*N clips, and what one prepared clip weighs
in Ray's object store.

    python -m omni_regressor.benchmarks.ray_memory [--clips 100] [--factor 4] [--batch_size 8] [--num_scorers 1]

A 2-CPU local Ray cluster is started once in a helper process; each run's driver joins it (`--ray_address`), so the
measured peak RSS is the driver's alone (decode tasks and scorer actors live in the cluster's worker processes).
640x360 2-s clips at the official pixel limits. Also encodes one 8-s 640x360 clip at the official settings and
reports the bytes of its model inputs (what a decode task sends a scorer through the object store). Prints one JSON
line.
"""

import os
import pickle
import shutil
import subprocess
import sys

from .common import (OFFICIAL_PIXEL_FLAGS, base_parser, model_or_tiny, peak_rss_bytes, predict_command, print_report,
                     workspace, write_clip_folder)

# Started in its own process: prints the address, holds the cluster until its stdin closes, then shuts it down.
_CLUSTER = """
import sys, ray
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


def prepared_clip_bytes(model_dir, workdir) -> dict:
    """Model inputs of one 8-s 640x360 clip at the official pixel limits and the model's other saved settings."""
    from pipeline_omni_regressor import prepare_clip

    from ..inference import SentimentScorer

    path = write_clip_folder(workdir / "clip-8s", 1, seconds=8.0, fps=25.0)[0]
    processing = {flag.lstrip("-"): int(value) for flag, value in zip(OFFICIAL_PIXEL_FLAGS[::2], OFFICIAL_PIXEL_FLAGS[1::2])}
    scorer = SentimentScorer.from_pretrained(model_dir, processing=processing, device="cpu")
    clip = prepare_clip(scorer.encoder, 0, path, "a transcript of the clip")
    tensors = {name: (tuple(value.shape), str(value.dtype), value.element_size() * value.nelement())
               for name, value in clip.encoded.items() if hasattr(value, "nelement")}
    return {"tensors": {name: {"shape": shape, "dtype": dtype, "mb": round(size / 2**20, 2)}
                        for name, (shape, dtype, size) in tensors.items()},
            "tensor_mb": round(sum(size for _, _, size in tensors.values()) / 2**20, 2),
            "pickled_mb": round(len(pickle.dumps(clip, protocol=pickle.HIGHEST_PROTOCOL)) / 2**20, 2),
            "decoded_media_mb": round(sum(array.nbytes for array in (scorer.encoder.decode(str(path)).frames,
                                                                     scorer.encoder.decode(str(path)).audio)
                                          if array is not None) / 2**20, 2)}


def main(argv=None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100, help="N")
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_scorers", type=int, default=1)
    parser.add_argument("--num_cpus", type=int, default=2, help="CPUs of the local cluster")
    args = parser.parse_args(argv)
    with workspace(args.workdir) as workdir:
        model = model_or_tiny(args.model, workdir)
        clip_weight = prepared_clip_bytes(model, workdir)
        many = write_clip_folder(workdir / "clips-many", args.clips * args.factor)
        (workdir / "clips-few").mkdir(exist_ok=True)
        for path in many[: args.clips]:
            shutil.copyfile(path, workdir / "clips-few" / path.name)
        cluster = subprocess.Popen([sys.executable, "-c", _CLUSTER, str(args.num_cpus)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        try:
            address = cluster.stdout.readline().strip()
            peaks = {}
            for name in ("few", "many"):
                command = predict_command(model, workdir / f"clips-{name}", "--output", workdir / f"scores-{name}.csv",
                                          "--overwrite", "--media_cache_dir", workdir / f"cache-{name}",
                                          "--batch_size", args.batch_size, *OFFICIAL_PIXEL_FLAGS, "--engine", "ray",
                                          "--ray_address", address, "--num_scorers", args.num_scorers)
                # a cluster started by ray.init uses token authentication; a driver joining it by address must say so
                status, peaks[name] = peak_rss_bytes(command, env={**os.environ, "RAY_AUTH_MODE": "token"})
                if status != 0:
                    raise SystemExit(f"predict --engine ray on {name} clips exited with {status}")
        finally:
            cluster.stdin.close()
            cluster.wait(timeout=120)
    print_report({
        "benchmark": "ray_memory",
        "clips": [args.clips, args.clips * args.factor],
        "batch_size": args.batch_size,
        "num_scorers": args.num_scorers,
        "driver_peak_rss_mb": [round(peaks["few"] / 2**20, 1), round(peaks["many"] / 2**20, 1)],
        "growth_mb": round((peaks["many"] - peaks["few"]) / 2**20, 2),
        "prepared_clip_8s_640x360_official": clip_weight,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

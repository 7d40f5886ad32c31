"""`omni-regressor <command> ...`: a table of commands; each one documents its flags with `--help`.

Exit status: 0 done; 1 some inputs failed (data problems, unscorable clips; each named); 2 usage errors (a bad flag
value, a wrong path, a folder that is not what the command needs), said in one line on stderr.
"""

import importlib
import sys

# name -> ("module:function", summary). Modules are imported only when their command runs (`--help` stays fast).
COMMANDS = {
    "demo": ("omni_regressor.demo:main", "End to end on an embedded tiny backbone: data, QLoRA training, test, export."),
    "train": ("omni_regressor.run:main", "Fine-tunes a readout with QLoRA and the HF Trainer; exports a Hub-ready folder."),
    "evaluate": ("omni_regressor.eval.evaluation:main", "Scores a dataset split: predictions.csv, metrics.json, plots."),
    "predict": ("omni_regressor.predict:main", "Scores video files, folders or a path,text CSV (streamed, resumable)."),
    "inspect-inputs": ("omni_regressor.commands:inspect_inputs_command", "What the model will see of one clip: tokens, frames, audio."),
    "check-data": ("omni_regressor.commands:check_data_command", "Every problem of a dataset by clip id; exit 1 if any."),
    "zero-shot": ("omni_regressor.experiments.zero_shot:main", "The base Thinker writes the score as text; parsed and scored."),
    "compare": ("omni_regressor.experiments.compare:main", "Discriminative vs generative readout (zero-shot, fine-tuned): one table."),
    "sweep": ("omni_regressor.experiments.sweep:main", "Modality ablations x seeds, mean ± std per configuration."),
    "benchmark": ("omni_regressor.experiments.benchmark:main", "Readout latency, batch throughput and peak memory, in one run."),
    "params": ("omni_regressor.commands:params_command", "Parameter counts (and weight memory) of a preset shape, no download."),
    "tiny-backbone": ("omni_regressor.commands:tiny_backbone_command", "A tiny random released-layout checkpoint + processor."),
    "demo-data": ("omni_regressor.commands:demo_data_command", "A generated MMSA-layout dataset of real mp4 clips."),
    "denoise": ("omni_regressor.commands:denoise_command", "One file's audio track as the model hears it (DeepFilterNet3), as a WAV."),
    "serve": ("omni_regressor.commands:serve_command", "The web page (Gradio) of a model: upload a clip, see score, attribution, timeline."),
    "probe": ("omni_regressor.probe:main", "Linear probe per layer and pooling of the frozen Thinker: where sentiment lives."),
    "space": ("omni_regressor.space:space_command", "A Gradio Space folder (README, app.py, requirements) serving a model."),
    "analyze": ("omni_regressor.analyze:main", "Label smoothness of the pooled hidden states (kNN vs permuted), plot, states."),
}


def usage() -> str:
    lines = ["usage: omni-regressor <command> [--help]", "", "commands:"]
    lines += [f"  {name:<16}{summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that are the user's to fix: reported in one line, no traceback."""
    from processing_omni_regressor import MediaError

    from .arguments import RunError, UsageError
    from .model_loading import ModelFolderError
    from .outputs import OutputError

    return (UsageError, ModelFolderError, RunError, MediaError, FileExistsError, OutputError)


MODEL_FLAGS = ("--model", "--model_name_or_path", "--model-name-or-path", "--transcribe_model", "--transcribe-model")


def hub_failure(error: BaseException) -> str | None:
    """Why the Hub could not provide a model (offline, no network, unknown or gated repository), or None when `error`
    is something else. transformers wraps huggingface_hub's errors in an `OSError`: the cause chain tells."""
    from huggingface_hub import errors as hub_errors

    reasons = (
        (hub_errors.GatedRepoError, "a gated repository: log in first (hf auth login) with an account that has access"),
        (hub_errors.RepositoryNotFoundError, "no such repository, or a private one: check the id, or log in"),
        (hub_errors.RevisionNotFoundError, "no such revision"),
        (hub_errors.OfflineModeIsEnabled, "HF_HUB_OFFLINE is set and it is not in the local cache"),
        (hub_errors.LocalEntryNotFoundError, "not in the local cache and the Hub cannot be reached"),
        (hub_errors.HfHubHTTPError, "the Hub answered with an error"),
    )
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for error_type, reason in reasons:
            if isinstance(error, error_type):
                return reason
        error = error.__cause__ or error.__context__
    return None


def hub_failure_message(command: str, argv: list[str], reason: str) -> str:
    named = [argv[index + 1] for index, flag in enumerate(argv[:-1]) if flag in MODEL_FLAGS]
    named += [flag.split("=", 1)[1] for flag in argv if flag.split("=", 1)[0] in MODEL_FLAGS and "=" in flag]
    what = f"{named[0]!r}" if named else "the model"
    return (f"omni-regressor {command}: error: cannot fetch {what} from the Hugging Face Hub ({reason}). Pass a local "
            "folder instead, or run once with network to cache it (then HF_HUB_OFFLINE=1 works).")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(usage(), file=sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"omni-regressor: unknown command {argv[0]!r}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module_name, function_name = COMMANDS[argv[0]][0].split(":")
    command = getattr(importlib.import_module(module_name), function_name)
    from .data import DataProblemsError

    try:
        return int(command(argv[1:]) or 0)
    except DataProblemsError as error:
        print(str(error), file=sys.stderr)
        return 1
    except user_errors() as error:
        print(f"omni-regressor {argv[0]}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"omni-regressor {argv[0]}: interrupted; files written so far are kept.", file=sys.stderr)
        return 130
    except OSError as error:
        reason = hub_failure(error)
        if reason is None:
            raise
        print(hub_failure_message(argv[0], argv[1:], reason), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

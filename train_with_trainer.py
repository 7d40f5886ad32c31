"""Fine-tune a sentiment readout on the Thinker of Qwen2.5-Omni or Qwen3-Omni with QLoRA and the HF Trainer, then export a
Hub-ready folder (the same as `omni-regressor train`).

    python train_with_trainer.py --model_name_or_path Qwen/Qwen2.5-Omni-7B --dataset_dir MOSI --output_dir runs/mosi
    python train_with_trainer.py configs/mosi.yaml --dataset_dir /data/MOSI   # flags from a file, then overrides
    torchrun --nproc_per_node 2 train_with_trainer.py ...                     # DDP, one quantised copy per rank

The arguments (one dataclass per concern) are `omni_regressor.arguments` (`OmniTrainingArguments` in
`omni_regressor.training_arguments`); the run itself is
`omni_regressor.run.run_training`: data check -> model (4-bit + LoRA) -> Trainer -> test metrics -> export + card.
"""

import logging
import sys

from omni_regressor.arguments import DataArguments, ModelArguments, ProcessingArguments  # noqa: F401
from omni_regressor.training_arguments import OmniTrainingArguments, parse_training_arguments  # noqa: F401
from omni_regressor.run import run_training


def main(argv=None, callbacks=()) -> dict:
    """Parses the flags and runs training; `callbacks` are extra `TrainerCallback`s (tests interrupt runs with one)."""
    model_args, data_args, processing_args, training_args = parse_training_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return run_training(model_args, data_args, processing_args, training_args, callbacks=callbacks)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The generative readout (omni_regressor/recipes/generative.py): the collator labels only the written score, scores
are written with one decimal, fine-tuning trains the same LoRA and exports a Thinker, and answers are generated to
their end and parsed (the real Qwen tokenizer)."""

import json
import math

import pytest
import torch
from transformers import AutoProcessor, LogitsProcessor, LogitsProcessorList, Qwen2_5OmniThinkerForConditionalGeneration

import train_with_trainer
from conftest import SMALL_PIXELS, small_run_flags
from omni_regressor.data import read_mmsa
from omni_regressor.eval.score_parsing import parse_scores
from omni_regressor.recipes.generative import GenerativeCollator, format_score
from processing_omni_regressor import ClipEncoder, ProcessingSettings

PARSE_STATISTICS = ("unparsable_rate", "truncated_rate", "out_of_range_rate", "fallback", "ms_per_clip")


def test_generative_collator_labels_only_the_written_score(tiny_processor, demo_dataset_dir):
    records = read_mmsa(demo_dataset_dir)[0][:3]
    encoder = ClipEncoder(tiny_processor, ProcessingSettings(modalities=("text",), **SMALL_PIXELS))
    batch = GenerativeCollator(encoder)([{"text": r.text, "media_path": r.media_path, "label": r.label} for r in records])
    for row, record in enumerate(records):
        answer_ids = batch["input_ids"][row][batch["labels"][row] != -100]
        assert tiny_processor.tokenizer.decode(answer_ids) == format_score(record.label) + "<|im_end|>"


@pytest.mark.parametrize("label, text", [(2.4, "2.4"), (-0.8, "-0.8"), (0.0, "0.0"), (-2.8000000000000003, "-2.8")])
def test_scores_are_written_with_one_decimal(label, text):
    assert format_score(label) == text


def test_fine_tuned_generative_readout_trains_the_same_lora_and_exports_a_thinker(tiny_backbone_dir, demo_dataset_dir, tmp_path):
    summary = train_with_trainer.main(
        small_run_flags(tiny_backbone_dir, demo_dataset_dir, tmp_path / "gen", "--readout", "generative", "--lora_preset", "paper")
    )
    assert summary["readout"] == "generative"
    assert all(key in summary["test_metrics"] for key in PARSE_STATISTICS)
    assert len(summary["test_answers"]) == len(summary["test_predictions"])
    assert summary["parameters"]["head_params"] == 0 and summary["parameters"]["lora_params"] > 0
    adapter_config = json.loads((tmp_path / "gen" / "adapter" / "adapter_config.json").read_text())
    assert set(adapter_config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not adapter_config["modules_to_save"]
    thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tmp_path / "gen" / "model")
    assert thinker.lm_head.weight.shape[1] == 64
    settings = json.loads((tmp_path / "gen" / "model" / "processing_settings.json").read_text())
    assert settings["modalities"] == ["text", "audio", "video"] and settings["score_range"] == [-3.0, 3.0]


class ForceAnswer(LogitsProcessor):
    """Makes greedy decoding write exactly `token_ids` (then nothing it is not told): a fixed answer on a random model."""

    def __init__(self, token_ids: list[int], prompt_length: int):
        self.token_ids, self.prompt_length = token_ids, prompt_length

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_length
        forced = torch.full_like(scores, -math.inf)
        forced[:, self.token_ids[min(step, len(self.token_ids) - 1)]] = 0.0
        return forced


@pytest.mark.parametrize(
    "answer, value", [("-1.5", -1.5), ("The sentiment is \u22122.4.", -2.4), ("**2.0**", 2.0), ("The sentiment of this clip is -1.5.", -1.5)]
)
def test_generative_answers_survive_the_generation_limit_and_parse_right(real_tokenizer_backbone_dir, answer, value):
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    from omni_regressor.recipes.generative import DEFAULT_MAX_NEW_TOKENS, generate_answers

    processor = AutoProcessor.from_pretrained(real_tokenizer_backbone_dir)
    thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(real_tokenizer_backbone_dir).eval()
    encoder = ClipEncoder(processor, ProcessingSettings(modalities=("text",)))
    tokenizer = processor.tokenizer
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    prompt_length = encoder.encode("it was fine", None)["input_ids"].shape[1]
    force = LogitsProcessorList([ForceAnswer(answer_ids, prompt_length)])

    answers, truncated = generate_answers(thinker, encoder, ["it was fine"], [None], logits_processor=force)
    assert len(answer_ids) <= DEFAULT_MAX_NEW_TOKENS and answers == [answer] and truncated == [False]
    assert parse_scores(answers, truncated=truncated)["scores"] == [value]

    # Cut before its end-of-turn token, the same answer counts as truncated, not as a (silently wrong) number.
    cut = len(answer_ids) - 2
    answers, truncated = generate_answers(thinker, encoder, ["it was fine"], [None], max_new_tokens=cut, logits_processor=force)
    parsed = parse_scores(answers, truncated=truncated)
    assert truncated == [True] and parsed["truncated_rate"] == 1.0 and parsed["unparsable_rate"] == 0.0

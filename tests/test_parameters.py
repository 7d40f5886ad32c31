"""`omni-regressor params --memory` (omni_regressor/parameters.py): the weight memory of the 7B QLoRA setup, with the
towers and embeddings kept in bf16, and what upcasting the frozen weights costs."""

import json

from omni_regressor.cli import main as cli_main


def test_weight_memory_of_the_7b_qlora_setup_keeps_towers_and_embeddings_in_bf16(capsys):
    assert cli_main(["params", "--arch", "7b", "--lora_preset", "paper", "--memory"]) == 0
    report = json.loads(capsys.readouterr().out.strip())
    memory = report["memory"]
    assert memory["language_model"]["dtype"] == "bfloat16+nf4"  # NF4 linears, bf16 norms and biases
    assert memory["audio_tower"]["dtype"] == memory["visual"]["dtype"] == memory["embeddings"]["dtype"] == "bfloat16"
    assert memory["lora"]["dtype"] == "float32" and memory["head"]["dtype"] == "float32"
    assert memory["audio_tower"]["bytes"] == 2 * memory["audio_tower"]["params"]
    assert memory["lora"]["params"] == report["lora_params"] and memory["lora"]["bytes"] == 4 * report["lora_params"]
    assert report["weight_bytes_total"] == sum(part["bytes"] for part in memory.values())
    # NF4 with double quantisation: about 0.52 bytes per weight.
    language_linears = memory["language_model"]["params"]
    assert 0.5 * language_linears < memory["language_model"]["bytes"] < 0.56 * language_linears
    assert 7.0e9 < report["weight_bytes_total"] < 8.0e9


def test_upcasting_the_frozen_weights_costs_the_fp32_copies(capsys):
    assert cli_main(["params", "--arch", "tiny", "--memory"]) == 0
    bf16 = json.loads(capsys.readouterr().out.strip())
    assert cli_main(["params", "--arch", "tiny", "--memory", "--upcast_frozen_weights", "true"]) == 0
    fp32 = json.loads(capsys.readouterr().out.strip())
    for part in ("audio_tower", "visual", "embeddings"):
        assert fp32["memory"][part]["dtype"] == "float32" and fp32["memory"][part]["bytes"] == 2 * bf16["memory"][part]["bytes"]

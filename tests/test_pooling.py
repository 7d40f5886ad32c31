"""Pooling (`last`, `mean`, `attention`) and the readout layer as parts of the model: padding-side invariance, the
decoder layers really run, the learned query under `head.`, config validation."""

import pytest
import torch
from transformers import AutoProcessor

from configuration_omni_regressor import OmniRegressorConfig
from conftest import SMALL_PIXELS, TRANSCRIPTS, right_padded
from modeling_omni_regressor import POOLERS, AttentionPooling
from omni_regressor.backbones import backbone_of, thinker_config_for
from omni_regressor.media import MediaCache
from processing_omni_regressor import ClipEncoder, ProcessingSettings

from omni_regressor.backbones import BACKBONES


def regressor_for(backbone_dir, **config):
    torch.manual_seed(0)
    model = backbone_of(backbone_dir).regressor_class.from_pretrained(backbone_dir, head_hidden_size=16, **config).eval()
    if config.get("pooling") == "attention":  # a trained query, not the initial zero one (that is the mean)
        model.head.pooler.query.data.normal_(generator=torch.Generator().manual_seed(1))
    return model


@pytest.fixture(scope="module", params=list(BACKBONES))
def backbone_and_batches(request, clip_paths, tiny_backbone_for):  # noqa: F811
    """(backbone folder, left-padded text+audio+video batch of 3 clips of mixed lengths, each clip alone), for every
    registered backbone."""
    backbone_dir = tiny_backbone_for(request.param)
    encoder = ClipEncoder(AutoProcessor.from_pretrained(backbone_dir), ProcessingSettings(**SMALL_PIXELS), media_cache=MediaCache(None))
    encoded = [encoder.encode(text, encoder.decode(path), ("text", "audio", "video")) for text, path in zip(TRANSCRIPTS, clip_paths)]
    assert len({clip["input_ids"].shape[1] for clip in encoded}) == 3
    return backbone_dir, encoder.collate(encoded), [encoder.collate([clip]) for clip in encoded]


@pytest.mark.parametrize("pooling", list(POOLERS))
def test_each_pooling_scores_the_same_for_left_and_right_padding_and_alone(backbone_and_batches, pooling):
    backbone_dir, left, alone = backbone_and_batches
    model = regressor_for(backbone_dir, pooling=pooling, readout_layer=1)
    with torch.no_grad():
        single = torch.cat([model(**batch).logits for batch in alone])
        left_scores = model(**left).logits
        right_scores = model(**right_padded(left)).logits
    torch.testing.assert_close(left_scores, single, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(right_scores, single, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(single[0], single[1])


def count_decoder_layer_calls(model, batch) -> int:
    calls = []
    layer_class = type(model.thinker.language_model.layers[0])
    hooks = [module.register_forward_hook(lambda *_: calls.append(1)) for module in model.modules() if isinstance(module, layer_class)]
    with torch.no_grad():
        model(**batch)
    for hook in hooks:
        hook.remove()
    return len(calls)


def test_readout_layer_runs_only_the_first_decoder_layers_and_reads_their_state(backbone_and_batches):
    backbone_dir, left, _ = backbone_and_batches
    full = regressor_for(backbone_dir, pooling="mean")
    first_layer_only = regressor_for(backbone_dir, pooling="mean", readout_layer=1)
    num_layers = full.config.thinker_config.text_config.num_hidden_layers
    assert num_layers == 2
    assert count_decoder_layer_calls(full, left) == 2 and count_decoder_layer_calls(first_layer_only, left) == 1
    # The state entering layer 1 of the full model, through the final norm, pooled: what `readout_layer=1` reads.
    language_model = full.thinker.language_model
    entering = []
    hook = language_model.layers[1].register_forward_pre_hook(lambda module, args: entering.append(args[0]))
    with torch.no_grad():
        full(**left)
        read = first_layer_only(**left, output_pooled_hidden_state=True).pooled_hidden_state
    hook.remove()
    expected = POOLERS["mean"]()(language_model.norm(entering[0]), left["attention_mask"])
    torch.testing.assert_close(read, expected, atol=1e-5, rtol=1e-4)


def test_the_embeddings_are_readout_layer_zero(tiny_backbone_dir):
    model = regressor_for(tiny_backbone_dir, readout_layer=0)
    assert len(model.thinker.language_model.layers) == 0
    input_ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        pooled = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), output_pooled_hidden_state=True).pooled_hidden_state
        embedded = model.thinker.language_model.norm(model.get_input_embeddings()(input_ids))[:, -1]
    torch.testing.assert_close(pooled, embedded)


def test_the_attention_query_lives_under_head_and_survives_save_and_load(tiny_backbone_dir, tmp_path):
    model = regressor_for(tiny_backbone_dir, pooling="attention", readout_layer=1)
    assert isinstance(model.head.pooler, AttentionPooling)
    assert "head.pooler.query" in model.state_dict()
    model.save_pretrained(tmp_path / "saved")
    reloaded, info = type(model).from_pretrained(tmp_path / "saved", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    torch.testing.assert_close(reloaded.head.pooler.query, model.head.pooler.query)
    assert len(reloaded.thinker.language_model.layers) == 1


def test_the_initial_attention_query_is_the_masked_mean():
    hidden_states = torch.randn(2, 5, 4)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    torch.testing.assert_close(AttentionPooling(4)(hidden_states, mask), POOLERS["mean"]()(hidden_states, mask))
    torch.testing.assert_close(POOLERS["mean"]()(hidden_states, mask)[0], hidden_states[0, 2:].mean(0))


def test_a_linear_head_is_one_linear_layer(tiny_backbone_dir):
    model = regressor_for(tiny_backbone_dir, head_type="linear")
    assert sorted(name for name in model.state_dict() if name.startswith("head.")) == ["head.out_proj.bias", "head.out_proj.weight"]


@pytest.mark.parametrize("field, value", [("pooling", "max"), ("readout_layer", 3), ("readout_layer", -2), ("head_type", "rnn")])
def test_invalid_pooling_layer_or_head_type_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        OmniRegressorConfig(thinker_config=thinker_config_for("tiny"), **{field: value})


def test_the_probes_layer_taps_read_what_a_regressor_with_that_layer_and_pooling_reads(backbone_and_batches):
    from omni_regressor.probe_features import LayerTaps, load_frozen_model

    backbone_dir, left, _ = backbone_and_batches
    frozen = load_frozen_model(backbone_dir, "none", readout_layer=2)
    taps = LayerTaps(frozen, [0, 1, 2], ["last", "mean"])
    taps.attention_mask = left["attention_mask"]
    with torch.no_grad():
        frozen(**left)
    taps.remove()
    features = taps.features()  # (batch, poolings x layers, hidden), poolings outer
    for layer in (0, 1, 2):
        model = regressor_for(backbone_dir, readout_layer=layer)
        for pooling_index, pooling in enumerate(("last", "mean")):
            model.head.pooler = POOLERS[pooling]()  # what `pooling=...` builds
            with torch.no_grad():
                expected = model(**left, output_pooled_hidden_state=True).pooled_hidden_state
            torch.testing.assert_close(features[:, 3 * pooling_index + layer], expected, atol=1e-5, rtol=1e-4)


def test_the_attention_query_is_trained_with_the_head_under_qlora(tiny_backbone_dir):
    from omni_regressor.backbones import get_backbone
    from omni_regressor.recipes.discriminative import load_regressor_for_training

    model = load_regressor_for_training(tiny_backbone_dir, get_backbone("qwen2.5-omni"), quantization="4bit",
                                        lora_preset="paper", head_hidden_size=16, pooling="attention", readout_layer=1)
    (query_name,) = [name for name, parameter in model.named_parameters() if parameter.requires_grad and "pooler.query" in name]
    assert "modules_to_save" in query_name  # saved with the adapter, merged into the export like the rest of the head
    input_ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
    output = model(input_ids=input_ids, attention_mask=(input_ids != 0).long(), labels=torch.tensor([1.0, -1.0]))
    output.loss.backward()
    assert model.get_parameter(query_name).grad.abs().sum() > 0

"""What the model sees: a model's saved processing settings, with the user's flags on top, resolved for its processor.

Light on purpose (no Trainer, peft or bitsandbytes): every command that reads a model folder imports it.
"""

from processing_omni_regressor import ProcessingSettings

from .backbones import DEFAULT_BACKBONE, get_backbone, read_config_dict


def saved_settings(model_name_or_path) -> ProcessingSettings | None:
    """The processing settings a saved regressor was trained with (None for an original checkpoint)."""
    config = read_config_dict(model_name_or_path)
    if config.get("model_type") == "omni_regressor":
        return ProcessingSettings.from_dict(config.get("processing"))
    return None


def resolve_settings(processing_args, model_name_or_path=None, trust_remote_code: bool = False):
    """-> (settings, processor): `processing_args`' flags over the model's saved settings (the official ones for an
    original checkpoint), resolved for its processor. Without a model: the default backbone's official values, no
    processor."""
    if model_name_or_path is None:
        spec = get_backbone(DEFAULT_BACKBONE)
        return processing_args.settings().resolve_for(image_factor=spec.image_factor,
                                                      extractor_seconds=spec.extractor_seconds), None
    from .model_loading import load_processor  # the package's processor classes, no code from the folder

    processor = load_processor(model_name_or_path, trust_remote_code=trust_remote_code)
    base = saved_settings(model_name_or_path) or ProcessingSettings()
    return processing_args.settings(base).resolve(processor), processor

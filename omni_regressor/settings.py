"""What the model sees: a model's saved processing settings, with the user's flags on top, resolved for its processor.

`resolve_settings` is the one place where processing settings are built from what a user asked for; every entry point
calls it (train, evaluate, predict, zero-shot, analyze, check-data, inspect-inputs, probe, `SentimentScorer`, the Ray
driver). What a user asks for comes as a command's `ProcessingArguments` (its flags, derived from
`ProcessingSettings`' fields) or, from Python, as a dict of `ProcessingSettings` fields.

Light on purpose (no Trainer, peft or bitsandbytes): every command that reads a model folder imports it.
"""

from dataclasses import fields

from processing_omni_regressor import ProcessingSettings

from .backbones import DEFAULT_BACKBONE, get_backbone, read_config_dict

SETTING_NAMES = frozenset(item.name for item in fields(ProcessingSettings))


def saved_settings(model_name_or_path=None, config=None) -> ProcessingSettings | None:
    """The processing settings a saved regressor was trained with (None for an original checkpoint), read from its
    folder's config.json or from a loaded `config`."""
    if config is not None:
        if getattr(config, "model_type", None) != "omni_regressor":
            return None
        return ProcessingSettings.from_dict(dict(config.processing or {}))
    values = read_config_dict(model_name_or_path)
    if values.get("model_type") == "omni_regressor":
        return ProcessingSettings.from_dict(values.get("processing"))
    return None


def requested_settings(processing, modalities=None) -> dict:
    """The settings a user asked for: `ProcessingArguments.overrides()`, or a dict of `ProcessingSettings` fields (an
    unknown name is refused, never dropped), with `modalities` on top when given."""
    if processing is None:
        requested = {}
    elif hasattr(processing, "overrides"):
        requested = processing.overrides()
    else:
        unknown = sorted(set(processing) - SETTING_NAMES)
        if unknown:
            raise ValueError(f"unknown processing setting {unknown[0]!r}; the settings are "
                             f"{', '.join(sorted(SETTING_NAMES))}.")
        requested = dict(processing)
    if modalities is not None:
        requested["modalities"] = modalities
    return requested


def resolve_settings(processing=None, model_name_or_path=None, trust_remote_code: bool = False, *, config=None,
                     processor=None):
    """-> (settings, processor): the settings asked for (`processing`: `ProcessingArguments` or a dict of fields, see
    `requested_settings`) over the model's saved settings (the official ones for an original checkpoint), every unset
    value resolved for the model's processor.

    Args:
        model_name_or_path: a folder or Hub id; None: the default backbone's official values and no processor.
        config: the loaded model's config (read instead of the folder's config.json).
        processor: the model's processor if already loaded (else loaded from `model_name_or_path` with this package's
            classes: no code from the folder unless `trust_remote_code`).
    """
    requested = requested_settings(processing)
    if model_name_or_path is None and config is None:
        spec = get_backbone(DEFAULT_BACKBONE)
        settings = ProcessingSettings.from_dict({**ProcessingSettings().to_dict(), **requested})
        return settings.resolve_for(image_factor=spec.image_factor, extractor_seconds=spec.extractor_seconds), None
    if processor is None:
        from .model_loading import load_processor  # the package's processor classes, no code from the folder

        processor = load_processor(model_name_or_path, trust_remote_code=trust_remote_code)
    base = saved_settings(model_name_or_path, config) or ProcessingSettings()
    return ProcessingSettings.from_dict({**base.to_dict(), **requested}).resolve(processor), processor

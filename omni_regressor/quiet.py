"""Library messages that are false alarms for this package's models, silenced by exact text (and nothing else).

- transformers validates every config's token ids against *that* config's vocabulary. The Qwen2.5-Omni Talker's
  text-token ids (`tts_text_*`, `audio_*`, `vision_*` token ids) index the Thinker's 152k vocabulary, not the Talker's
  8448-entry codec vocabulary, so the released config (and the default one transformers builds whenever it saves a
  config) warns about seven ids on every load and save.
- peft reads `model.is_gradient_checkpointing`, which transformers 5 deprecated with a FutureWarning meant for
  library authors (the regressor classes answer the new name themselves; the generative Thinker does not).
"""

import logging
import warnings

TALKER_TOKEN_ID_FIELDS = (
    "tts_text_start_token_id", "tts_text_end_token_id", "tts_text_pad_token_id", "audio_start_token_id",
    "audio_end_token_id", "vision_start_token_id", "vision_end_token_id",
)
TALKER_VOCABULARY_MESSAGE = "must be `None` or an integer within the vocabulary (between 0 and 8447)"


class TalkerTokenIdFilter(logging.Filter):
    """Drops transformers' warning about the Qwen2.5-Omni Talker's text-token ids, and only that one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if TALKER_VOCABULARY_MESSAGE not in message:
            return True
        return not any(f"{field} {TALKER_VOCABULARY_MESSAGE}" in message for field in TALKER_TOKEN_ID_FIELDS)


def install() -> None:
    config_logger = logging.getLogger("transformers.configuration_utils")
    if not any(isinstance(existing, TalkerTokenIdFilter) for existing in config_logger.filters):
        config_logger.addFilter(TalkerTokenIdFilter())
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

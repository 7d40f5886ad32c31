"""MMSA regression metrics (MOSI / MOSEI / CH-SIMS) as a local `evaluate` module; load it with
`eval.metrics.load_msa_metric()`."""

import datasets
import evaluate
import numpy as np

from omni_regressor.eval.metrics import msa_regression_metrics


_DESCRIPTION = """\
The regression metrics of the MMSA toolkit (thuiar/MMSA, `MetricsTop`) for multimodal sentiment analysis.
MOSI and MOSEI: Has0_acc_2, Has0_F1_score, Non0_acc_2, Non0_F1_score, Mult_acc_5, Mult_acc_7, MAE, Corr
(rounded to 4 decimals). CH-SIMS: Mult_acc_2, Mult_acc_3, Mult_acc_5, F1_score, MAE, Corr on scores clipped
to [-1, 1]. Corr is NaN when predictions or references are constant; Non0_* are NaN when no reference is 0-free.
"""

_CITATION = """\
@inproceedings{mao2022msena,
  title={M-SENA: An Integrated Platform for Multimodal Sentiment Analysis},
  author={Mao, Huisheng and Yuan, Ziqi and Xu, Hua and Yu, Wenmeng and Liu, Yihe and Gao, Kai},
  booktitle={Proceedings of the 60th Annual Meeting of the Association for Computational Linguistics: System Demonstrations},
  pages={204--213},
  year={2022}
}
@inproceedings{yu2020chsims,
  title={CH-SIMS: A Chinese Multimodal Sentiment Analysis Dataset with Fine-grained Annotation of Modality},
  author={Yu, Wenmeng and Xu, Hua and Meng, Fanyang and Zhu, Yilin and Ma, Yixiao and Wu, Jiele and Zou, Jiyun and Yang, Kaicheng},
  booktitle={Proceedings of the 58th Annual Meeting of the Association for Computational Linguistics},
  pages={3718--3727},
  year={2020}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): predicted sentiment scores.
    references (`list` of `float`): gold sentiment scores.
    dataset (`str`, *optional*, defaults to `"mosi"`): `"mosi"`, `"mosei"` or `"sims"` (also `"ch-sims"`).
Returns:
    `dict[str, float]`: the metrics of `eval.metrics.msa_regression_metrics`, computed in float32 as the features
    declare (MMSA itself runs on float32 tensors).
Examples:
    >>> metric = evaluate.load("eval/msa_metric/msa_metric.py")
    >>> metric.compute(predictions=[0.5, -1.0], references=[1.0, -2.0], dataset="mosi")["Has0_acc_2"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MsaMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float32"), "references": datasets.Value("float32")}
            ),
            reference_urls=["https://github.com/thuiar/MMSA/blob/master/src/MMSA/utils/metricsTop.py"],
        )

    def _compute(self, predictions, references, dataset="mosi"):
        return msa_regression_metrics(
            np.asarray(predictions, dtype=np.float32), np.asarray(references, dtype=np.float32), dataset=dataset
        )

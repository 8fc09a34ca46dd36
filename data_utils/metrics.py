"""GLUE metrics, reported as percentages like MT-DNN (accuracy 0.85 -> 85.0)."""
import warnings

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def _acc(predictions, golds):
    return 100.0 * accuracy_score(golds, predictions)


def _f1(predictions, golds):
    return 100.0 * f1_score(golds, predictions, zero_division=0)


def _mcc(predictions, golds):
    return 100.0 * matthews_corrcoef(golds, predictions)


def _correlation(fn):
    def metric(predictions, golds):
        predictions, golds = np.asarray(predictions, float), np.asarray(golds, float)
        if predictions.std() == 0 or golds.std() == 0:
            return 0.0              # undefined for a constant input; report no correlation
        return 100.0 * float(fn(predictions, golds)[0])
    return metric


METRIC_FNS = {
    "ACC": _acc,
    "F1": _f1,
    "MCC": _mcc,
    "Pearson": _correlation(pearsonr),
    "Spearman": _correlation(spearmanr),
}


def calc_metrics(metric_names, predictions, golds) -> dict:
    """{metric name: value in percent} for the task's metrics."""
    with warnings.catch_warnings():     # sklearn warns on single-class batches; the value is still defined
        warnings.simplefilter("ignore")
        return {name: float(METRIC_FNS[name](predictions, golds)) for name in metric_names}

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxsc import metrics


def _labels(seed, n=200, k=5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    noisy = np.where(rng.random(n) < 0.3, rng.integers(0, k + 1, n), (y + 2) % k)  # permuted + noise
    return y, noisy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed):
    y, p = _labels(seed)
    assert np.isclose(metrics.nmi(y, p), skm.normalized_mutual_info_score(y, p))
    assert np.isclose(metrics.ari(y, p), skm.adjusted_rand_score(y, p))
    table = skm.cluster.contingency_matrix(y, p)
    assert np.isclose(metrics.purity(y, p), table.max(0).sum() / len(y))


def test_accuracy_and_precision_after_matching():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    p = np.array([2, 2, 1, 0, 0, 1, 1, 1])  # 2->0, 0->1, 1->2; one error
    assert metrics.accuracy(y, p) == 7 / 8
    mapped = np.array([{2: 0, 0: 1, 1: 2}[v] for v in p])
    assert np.isclose(metrics.precision(y, p), skm.precision_score(y, mapped, average="macro"))
    assert metrics.accuracy(y, y) == 1.0 and metrics.nmi(y, y) == 1.0 and metrics.ari(y, y) == 1.0


def test_accuracy_brute_force():
    from itertools import permutations

    y, p = _labels(4, n=60, k=4)
    p = np.minimum(p, 3)
    best = max(np.mean(np.array(perm)[p] == y) for perm in permutations(range(4)))
    assert np.isclose(metrics.accuracy(y, p), best)


def test_evaluate_and_errors():
    y, p = _labels(5)
    assert set(metrics.evaluate(y, p)) == {"acc", "nmi", "ari", "purity", "precision"}
    with pytest.raises(ValueError, match="differ in length"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        metrics.nmi([], [])
    with pytest.raises(ValueError, match="predicted labels contain 1 NaN"):
        metrics.accuracy([0, 0, 1], [0, 1, np.nan])
    with pytest.raises(ValueError, match="true labels contain 2 NaN"):
        metrics.evaluate([np.nan, np.inf, 1.0], [0, 1, 1])

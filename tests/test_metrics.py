import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from medimbalance.metrics import classification_metrics, softmax

CLASSES = ["a", "b", "c", "d"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 4, size=300)
    probs = softmax(rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[targets] * rng.random((300, 1)))
    m = classification_metrics(targets, probs, CLASSES)
    predicted = probs.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(targets, predicted))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(targets, predicted))
    assert m["macro_f1"] == pytest.approx(f1_score(targets, predicted, average="macro"))
    assert m["auroc"] == pytest.approx(roc_auc_score(targets, probs, multi_class="ovr"))
    assert m["per_class"]["precision"] == pytest.approx(
        precision_score(targets, predicted, average=None).tolist()
    )
    assert m["per_class"]["recall"] == pytest.approx(
        recall_score(targets, predicted, average=None).tolist()
    )
    assert m["confusion_matrix"] == confusion_matrix(targets, predicted).tolist()
    assert m["n"] == 300 and m["classes"] == CLASSES
    assert m["mcc"] == pytest.approx(matthews_corrcoef(targets, predicted))
    from imblearn.metrics import geometric_mean_score

    assert m["g_mean"] == pytest.approx(geometric_mean_score(targets, predicted))
    assert m["per_class"]["auroc"] == pytest.approx(
        [roc_auc_score(targets == c, probs[:, c]) for c in range(4)]
    )


def test_hand_computed_example():
    targets = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
         [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]]
    )  # fmt: skip
    m = classification_metrics(targets, probs, ["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["recall"] == pytest.approx([0.5, 1.0, 0.5])
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class z: positives score 0.7, 0.4; negatives 0.1 x4 -> every positive ranks above: AUROC 1
    assert m["per_class"]["auroc"][2] == pytest.approx(1.0)


def test_absent_class_has_undefined_auroc_and_zero_recall():
    targets = np.array([0, 0, 1, 1])
    probs = softmax(np.array([[2.0, 0, 0], [0, 2, 0], [0, 2, 0], [2, 0, 0]]))
    m = classification_metrics(targets, probs, ["x", "y", "z"])
    assert m["per_class"]["auroc"][2] is None
    assert m["per_class"]["support"] == [2, 2, 0]
    assert m["auroc"] == pytest.approx(np.mean(m["per_class"]["auroc"][:2]))


def test_shape_mismatches_are_errors():
    with pytest.raises(ValueError, match=r"shape \(N, C\) = \(3, 2\)"):
        classification_metrics(np.array([0, 1, 1]), np.full((3, 3), 1 / 3), ["x", "y"])
    with pytest.raises(ValueError, match=r"targets must lie in 0\.\.1"):
        classification_metrics(np.array([0, 2]), np.full((2, 2), 0.5), ["x", "y"])


def test_softmax_rows_sum_to_one_and_are_stable():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    assert p == pytest.approx(np.array([[0.5, 0.5], [0.25, 0.75]]))

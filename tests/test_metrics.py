"""Metrics of every task against scikit-learn and MONAI, and by hand."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.metrics import DiceMetric
from scipy import ndimage
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from medimbalance.metrics import (
    ABSENT_CLASS_POLICY,
    _binary_ap,
    _binary_auroc,
    classification_metrics,
    multilabel_metrics,
    regression_metrics,
    segmentation_metrics,
    shot_groups,
    sigmoid,
    softmax,
    task_metrics,
)

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


@pytest.mark.parametrize("levels", [None, 2, 5, 50])
@pytest.mark.parametrize("n", [2, 7, 300, 5000])
def test_binary_auroc_and_ap_equal_scikit_learn_with_and_without_ties(n, levels):
    # Scores on a few levels make many ties, between positives and negatives alike.
    rng = np.random.default_rng(n * 7 + (levels or 0))
    for _ in range(20):
        positive = rng.random(n) < rng.uniform(0.05, 0.95)
        positive[[0, -1]] = True, False  # both outcomes occur
        scores = rng.random(n) if levels is None else rng.integers(0, levels, n) / levels
        assert _binary_auroc(positive, scores) == pytest.approx(
            roc_auc_score(positive, scores), abs=1e-12
        )
        assert _binary_ap(positive, scores) == pytest.approx(
            average_precision_score(positive, scores), abs=1e-12
        )


def test_binary_auroc_and_ap_by_hand_and_their_bad_inputs():
    # Scores 0.9 (+), 0.5 (+), 0.5 (-), 0.1 (-): of the 4 positive-negative pairs 3 are ordered
    # and 1 tied, AUROC = 3.5/4. Thresholds 0.9 (precision 1, recall 1/2) and 0.5 (precision
    # 2/3, recall 1): AP = 1/2 * 1 + 1/2 * 2/3.
    positive, scores = [True, True, False, False], [0.9, 0.5, 0.5, 0.1]
    assert _binary_auroc(positive, scores) == pytest.approx(3.5 / 4)
    assert _binary_ap(positive, scores) == pytest.approx(0.5 + 1 / 3)
    assert _binary_auroc([True, True], [0.1, 0.2]) is None
    assert _binary_ap([False, False], [0.1, 0.2]) is None
    with pytest.raises(ValueError, match="NaN or infinity"):
        _binary_auroc([True, False], [0.5, np.nan])
    with pytest.raises(ValueError, match="3 scores for 2 outcomes"):
        _binary_ap([True, False], [0.5, 0.2, 0.1])


def test_hand_computed_example():
    targets = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.3, 0.6, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.8, 0.1],
            [0.1, 0.2, 0.7],
            [0.5, 0.1, 0.4],
        ]
    )
    m = classification_metrics(targets, probs, ["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["recall"] == pytest.approx([0.5, 1.0, 0.5])
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class z: positives score 0.7, 0.4; negatives 0.1 x4 -> every positive ranks above: AUROC 1
    assert m["per_class"]["auroc"][2] == pytest.approx(1.0)


def _hot(labels, n=3):  # probabilities that predict ``labels``
    return softmax(4.0 * np.eye(n)[labels])


# Class z never in the targets: predicted once (case 1) or never (case 2); class y present but
# never predicted (case 3).
ABSENT_CASES = {
    "absent, predicted": ([0, 0, 1, 1], [0, 2, 1, 1]),
    "absent, never predicted": ([0, 0, 1, 1], [0, 1, 1, 1]),
    "present, never predicted": ([0, 0, 1, 2], [0, 0, 0, 2]),
}


@pytest.mark.parametrize("case", ABSENT_CASES)
def test_absent_class_policies_match_scikit_learn_and_imbalanced_learn(case):
    from imblearn.metrics import geometric_mean_score

    targets, predicted = map(np.array, ABSENT_CASES[case])
    m = classification_metrics(targets, _hot(predicted), ["x", "y", "z"])
    with warnings.catch_warnings():  # the libraries warn about the ill-defined classes
        warnings.simplefilter("ignore")
        expected = {
            "balanced_accuracy": balanced_accuracy_score(targets, predicted),
            "macro_f1": f1_score(targets, predicted, average="macro"),
            "g_mean": geometric_mean_score(targets, predicted),
        }
    assert {k: m[k] for k in expected} == pytest.approx(expected)


def test_absent_class_cells_are_flagged_and_per_class_values_undefined():
    # z absent from the targets but predicted once: its recall is undefined, its F1 is 0 in
    # macro-F1, the G-mean is 0 (imbalanced-learn gives z recall 0).
    m = classification_metrics(np.array([0, 0, 1, 1]), _hot([0, 2, 1, 1]), ["x", "y", "z"])
    assert m["absent_classes"] == {"targets": ["z"], "predictions": []}
    assert m["flagged"] == {metric: ["z"] for metric in ABSENT_CLASS_POLICY}
    assert m["per_class"]["recall"] == [0.5, 1.0, None]
    assert m["per_class"]["f1"] == pytest.approx([2 / 3, 1.0, 0.0])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.75) and m["g_mean"] == 0.0
    assert m["per_class"]["auroc"][2] is None
    assert m["auroc"] == pytest.approx(np.mean(m["per_class"]["auroc"][:2]))
    # z absent from both: left out of every mean, F1 undefined rather than 0
    both = classification_metrics(np.array([0, 0, 1, 1]), _hot([0, 1, 1, 1]), ["x", "y", "z"])
    assert both["per_class"]["f1"][2] is None
    assert both["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert both["g_mean"] == pytest.approx(math.sqrt(0.5 * 1.0))
    assert both["per_class"]["support"] == [2, 2, 0]
    # y present but never predicted: G-mean 0 is flagged, precision of y undefined
    never = classification_metrics(np.array([0, 0, 1, 2]), _hot([0, 0, 0, 2]), ["x", "y", "z"])
    assert never["flagged"] == {"g_mean": ["y"]} and never["g_mean"] == 0.0
    assert never["absent_classes"] == {"targets": [], "predictions": ["y"]}
    assert never["per_class"]["precision"] == pytest.approx([2 / 3, None, 1.0])
    complete = classification_metrics(np.array([0, 1, 2]), _hot([0, 1, 2]), ["x", "y", "z"])
    assert complete["flagged"] == {}


def test_shot_groups_by_thresholds_and_by_thirds():
    assert shot_groups([240, 113, 53, 25, 12]) == ["many", "many", "medium", "medium", "few"]
    assert shot_groups([100, 20, 19], many=100, few=20) == ["medium", "medium", "few"]
    assert shot_groups([5, 50, 30, 8, 60], rule="thirds") == [
        "few",
        "many",
        "medium",
        "medium",
        "many",
    ]
    assert (
        shot_groups([9, 9, 9, 9, 9, 9, 9], rule="thirds")
        == ["many"] * 3 + ["medium"] * 2 + ["few"] * 2
    )
    with pytest.raises(ValueError, match="few <= many"):
        shot_groups([1], many=10, few=20)
    with pytest.raises(ValueError, match="unknown shot-group rule 'halves'"):
        shot_groups([1], rule="halves")


def test_group_accuracy_on_a_hand_made_confusion():
    # 4 classes with 300, 150, 50 and 10 training images: two many-shot, one medium, one few.
    # Test confusion (rows true): a 8/10 right, b 6/10, c 3/6, d 1/4.
    rows = {0: [8, 2, 0, 0], 1: [3, 6, 1, 0], 2: [1, 1, 3, 1], 3: [0, 2, 1, 1]}
    targets, predicted = [], []
    for true, counts in rows.items():
        for guess, count in enumerate(counts):
            targets += [true] * count
            predicted += [guess] * count
    m = classification_metrics(
        np.array(targets), _hot(np.array(predicted), 4), CLASSES, train_counts=[300, 150, 50, 10]
    )
    assert m["confusion_matrix"] == [rows[c] for c in range(4)]
    assert m["many_shot_accuracy"] == pytest.approx((0.8 + 0.6) / 2)
    assert m["medium_shot_accuracy"] == pytest.approx(0.5)
    assert m["few_shot_accuracy"] == pytest.approx(0.25)
    assert m["per_class"]["shot"] == ["many", "many", "medium", "few"]
    none = classification_metrics(
        np.array(targets), _hot(np.array(predicted), 4), CLASSES, train_counts=[300] * 4
    )
    assert none["medium_shot_accuracy"] is None and none["few_shot_accuracy"] is None
    thirds = classification_metrics(
        np.array(targets),
        _hot(np.array(predicted), 4),
        CLASSES,
        [300, 150, 50, 10],
        {"rule": "thirds"},
    )
    assert thirds["few_shot_accuracy"] == pytest.approx(0.25)  # sizes 2, 1, 1
    assert thirds["medium_shot_accuracy"] == pytest.approx(0.5)


def test_average_precision_and_top5_match_scikit_learn():
    from sklearn.metrics import top_k_accuracy_score

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 7, size=200)
    probs = softmax(rng.normal(size=(200, 7)) + np.eye(7)[targets])
    m = classification_metrics(targets, probs, list("abcdefg"))
    hot = np.eye(7)[targets]
    assert m["per_class"]["average_precision"] == pytest.approx(
        [average_precision_score(hot[:, c], probs[:, c]) for c in range(7)]
    )
    assert m["average_precision"] == pytest.approx(average_precision_score(hot, probs))
    assert m["top5_accuracy"] == pytest.approx(top_k_accuracy_score(targets, probs, k=5))
    assert "top5_accuracy" not in classification_metrics(targets % 5, probs[:, :5], list("abcde"))


def test_shape_mismatches_are_errors():
    with pytest.raises(ValueError, match=r"shape \(N, C\) = \(3, 2\)"):
        classification_metrics(np.array([0, 1, 1]), np.full((3, 3), 1 / 3), ["x", "y"])
    with pytest.raises(ValueError, match=r"targets must lie in 0\.\.1"):
        classification_metrics(np.array([0, 2]), np.full((2, 2), 0.5), ["x", "y"])


def test_softmax_rows_sum_to_one_and_are_stable():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    assert p == pytest.approx(np.array([[0.5, 0.5], [0.25, 0.75]]))


def test_multilabel_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    targets = (rng.random((300, 5)) < [0.5, 0.3, 0.1, 0.05, 0.02]).astype(np.uint8)
    targets[:2, :] = [[1] * 5, [0] * 5]  # every label has both outcomes
    scores = rng.random((300, 5)) + 0.5 * targets
    m = multilabel_metrics(targets, scores, list("abcde"))
    assert m["auroc"] == pytest.approx(roc_auc_score(targets, scores, average="macro"))
    assert m["micro_auroc"] == pytest.approx(roc_auc_score(targets, scores, average="micro"))
    ap = average_precision_score(targets, scores, average="macro")
    assert m["average_precision"] == pytest.approx(ap)
    micro_ap = average_precision_score(targets, scores, average="micro")
    assert m["micro_average_precision"] == pytest.approx(micro_ap)
    assert m["per_class"]["prevalence"] == pytest.approx(targets.mean(0).tolist())


def test_multilabel_label_without_positives_is_undefined_not_zero():
    targets = np.array([[1, 0], [0, 0], [1, 0]])
    m = multilabel_metrics(targets, np.array([[0.9, 0.1], [0.2, 0.3], [0.8, 0.2]]), ["a", "b"])
    assert m["per_class"]["auroc"] == [1.0, None] and m["auroc"] == 1.0
    with pytest.raises(ValueError, match=r"must have the targets' shape \(N, L\) = \(3, 2\)"):
        multilabel_metrics(targets, np.zeros((3, 3)), ["a", "b"])


def test_dice_matches_monai_per_image_and_class():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 3, size=(4, 8, 8))
    predicted = np.where(rng.random((4, 8, 8)) < 0.7, targets, rng.integers(0, 3, size=(4, 8, 8)))
    targets[3][targets[3] == 2] = 0  # class 2 absent from one image's mask ...
    predicted[3][predicted[3] == 2] = 0  # ... and from its prediction: Dice 1 (BraTS)
    m = segmentation_metrics(targets, predicted, ["bg", "a", "b"])
    one_hot = lambda a: F.one_hot(torch.as_tensor(a), 3).movedim(-1, 1)  # noqa: E731
    # MONAI's ignore_empty=False is the BraTS convention: both empty 1, one empty 0.
    monai = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    per_image = monai(one_hot(predicted), one_hot(targets)).numpy()
    assert per_image[3, 2] == 1.0
    assert m["per_class"]["dice"] == pytest.approx(np.nanmean(per_image, axis=0).tolist())
    assert m["dice"] == pytest.approx(np.mean(np.nanmean(per_image, axis=0)[1:]))
    sensitivity = [(predicted[targets == c] == c).mean() for c in range(3)]  # pooled, for sanity
    assert all(0 < s <= 1 for s in sensitivity) and 0 < m["sensitivity"] <= 1


def test_hd95_matches_monai():
    from monai.metrics import compute_hausdorff_distance

    from medimbalance.metrics import hausdorff95

    rng = np.random.default_rng(3)
    for trial in range(6):
        truth = np.zeros((32, 32), bool)
        r, c = rng.integers(4, 18, 2)
        truth[r : r + rng.integers(4, 12), c : c + rng.integers(4, 12)] = True
        predicted = np.roll(truth, rng.integers(-3, 4, 2), axis=(0, 1)) | (
            rng.random((32, 32)) > 0.97
        )
        as_tensor = lambda m: torch.as_tensor(np.stack([~m, m])[None].astype(np.float32))  # noqa: E731
        expected = float(
            compute_hausdorff_distance(as_tensor(predicted), as_tensor(truth), percentile=95)
        )
        assert hausdorff95(predicted, truth) == pytest.approx(expected, abs=1e-5), trial
        spacing = (0.5, 2.0)  # anisotropic voxels: distances in mm, as MONAI's spacing gives
        expected_mm = float(
            compute_hausdorff_distance(
                as_tensor(predicted), as_tensor(truth), percentile=95, spacing=list(spacing)
            )
        )
        assert hausdorff95(predicted, truth, spacing) == pytest.approx(expected_mm, abs=1e-5)
    volume = np.zeros((2, 12, 12, 12), np.int64)
    volume[:, 3:8, 3:8, 3:8] = 1
    m = segmentation_metrics(volume, np.roll(volume, 1, axis=1), ["bg", "fg"])
    assert m["hd95"] == pytest.approx(1.0) and "hd95" in m["per_class"]
    assert "hd95" not in segmentation_metrics(volume, volume, ["bg", "fg"], hausdorff=False)


def test_segmentation_metrics_from_logits_and_bad_shapes():
    targets = np.array([[[0, 1], [1, 0]]])
    logits = np.stack([targets == 0, targets == 1], axis=1).astype(float)
    m = task_metrics("segmentation", targets, logits, ["bg", "fg"])
    assert m["task"] == "segmentation" and m["dice"] == 1.0 and m["precision"] == 1.0
    with pytest.raises(
        ValueError, match=r"predicted labels must have the masks' shape \(1, 2, 2\)"
    ):
        segmentation_metrics(targets, np.zeros((1, 4)), ["bg", "fg"])


def test_regression_metrics_hand_values():
    m = regression_metrics(np.array([2.0, 4.0]), np.array([[3.0], [3.0]]))
    assert m["mse"] == 1.0 and m["mae"] == 1.0
    assert m["percentage_error"] == pytest.approx(37.5)  # (50 % + 25 %) / 2
    assert m["bias"] == pytest.approx(12.5)  # (+50 % − 25 %) / 2
    # predicting the targets' mean: Σ(ŷ − y)² = 2 = Σ(y − ȳ)², so R² = 0 (a collapsed network)
    assert m["r2"] == 0.0
    # ŷ = (2.5, 3.5): Σ(ŷ − y)² = 0.5 against 2 -> R² = 0.75, as scikit-learn computes it
    assert regression_metrics(np.array([2.0, 4.0]), np.array([2.5, 3.5]))["r2"] == 0.75
    rng = np.random.default_rng(1)
    y, p = rng.uniform(1, 10, 50), rng.uniform(1, 10, 50)
    assert regression_metrics(y, p)["r2"] == pytest.approx(r2_score(y, p), rel=1e-12)
    assert math.isnan(regression_metrics(np.array([3.0, 3.0]), np.array([3.0, 2.0]))["r2"])


def test_uniform_random_guess_reproduces_thakoersinghs_baseline():
    # a guess ~ U(1, 10) for targets ~ U(1, 10): ≈ 82.4 % absolute, ≈ 40.7 % signed (Thakoersingh)
    rng = np.random.default_rng(0)
    m = regression_metrics(rng.uniform(1, 10, 400_000), rng.uniform(1, 10, 400_000))
    assert m["percentage_error"] == pytest.approx(82.4, abs=0.5)
    assert m["bias"] == pytest.approx(40.7, abs=0.5)


def test_uniform_guess_in_closed_form_matches_the_simulation():
    from medimbalance.metrics import uniform_guess_percentage_error

    targets = np.random.default_rng(0).uniform(1, 10, 200_000)
    assert uniform_guess_percentage_error(targets, 1, 10) == pytest.approx(82.4, abs=0.3)
    assert uniform_guess_percentage_error(np.array([2.0]), 1, 3) == pytest.approx(25.0)


def test_uniform_guess_mse_by_hand_and_over_a_configured_range():
    from medimbalance.metrics import regression_breakdown, uniform_guess_mse

    # E(U − y)² = Var U + (E U − y)²: 81/12 at the centre of [1, 10], 81/12 + 4.5² at an end
    assert uniform_guess_mse(np.array([5.5]), 1, 10) == pytest.approx(81 / 12)
    assert uniform_guess_mse(np.array([1.0]), 1, 10) == pytest.approx(81 / 12 + 4.5**2)
    # targets ~ U(1, 10): 2 · 81/12 = 13.5 (Thakoersingh's baseline: 13.495 ± 0.08)
    targets = np.random.default_rng(0).uniform(1, 10, 200_000)
    assert uniform_guess_mse(targets, 1, 10) == pytest.approx(13.5, rel=0.01)
    narrow = np.random.default_rng(1).uniform(1, 5, 1000)
    own = regression_breakdown(narrow, narrow, narrow)
    assert own["uniform_guess_range"] == pytest.approx([narrow.min(), narrow.max()])
    paper = regression_breakdown(narrow, narrow, narrow, guess_range=(1, 10))
    assert paper["uniform_guess_range"] == [1.0, 10.0]
    assert paper["uniform_guess_mse"] == pytest.approx(uniform_guess_mse(narrow, 1, 10))
    assert paper["uniform_guess_mse"] > own["uniform_guess_mse"]


def test_regression_errors_per_shot_bin():
    from medimbalance.metrics import regression_breakdown

    targets = np.linspace(1, 10, 90)
    predictions = targets + np.where(targets >= 6, 1.0, 0.1)  # bins of width 1 from 1
    train = np.concatenate([np.full(500, 2.0), np.full(50, 5.0), np.full(5, 9.0)])
    m = regression_breakdown(targets, predictions, train, n_bins=9)
    assert m["per_bin"]["train_count"] == [0, 500, 0, 0, 50, 0, 0, 0, 5]
    assert m["per_bin"]["shot"] == ["few", "many", "few", "few", "medium"] + ["few"] * 4
    assert m["mae_many"] == pytest.approx(0.1) and m["mae_medium"] == pytest.approx(0.1)
    assert 0.1 < m["mae_few"] < 1.0 and m["mse_many"] == pytest.approx(0.01)
    full = task_metrics("regression", targets, predictions[:, None], ["y"], train_targets=train)
    assert full["mae_few"] == regression_breakdown(targets, predictions, train)["mae_few"]
    assert "uniform_guess_percentage_error" in full


def test_task_metrics_dispatch_by_task():
    logits = np.array([[2.0, -1.0], [-3.0, 0.5]])
    multi = task_metrics("multilabel", np.array([[1, 0], [0, 1]]), logits, ["a", "b"])
    assert multi["task"] == "multilabel" and multi["auroc"] == 1.0
    assert sigmoid(np.array([0.0, 1000.0, -1000.0])).tolist() == [0.5, 1.0, 0.0]
    reg = task_metrics("regression", np.array([1.0, 2.0]), np.array([[1.0], [2.0]]), [])
    assert reg["mse"] == 0.0
    cls = task_metrics("binary", np.array([0, 1]), logits, ["no", "yes"])
    assert cls["accuracy"] == 1.0 and cls["task"] == "binary"


def test_hd95_in_mm_by_hand_with_anisotropic_spacing():
    from medimbalance.metrics import hausdorff95

    truth = np.zeros((10, 10, 10), bool)
    truth[2:5, 2:5, 2:5] = True
    shifted = np.roll(truth, 2, axis=2)  # two voxels along the third axis
    # Every edge voxel of the shifted cube lies 2 voxels from the truth's edges along axis 2
    # at most: 2 × 3 mm = 6 mm there, against 2 voxels = 2 units without the spacing.
    assert hausdorff95(shifted, truth) == pytest.approx(2.0)
    assert hausdorff95(shifted, truth, (1.0, 1.0, 3.0)) == pytest.approx(6.0)
    assert hausdorff95(np.roll(truth, 2, axis=0), truth, (0.5, 1.0, 3.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"spacing \[1.0, 1.0\] needs one value per axis"):
        hausdorff95(shifted, truth, (1.0, 1.0))


def test_empty_masks_follow_the_brats_convention():
    from medimbalance.metrics import EMPTY_MASK_POLICY, hausdorff95, worst_case_distance

    empty, lesion = np.zeros((240, 240, 155), bool), np.zeros((240, 240, 155), bool)
    lesion[100:110, 100:110, 70:80] = True
    assert hausdorff95(empty, empty) == 0.0
    worst = np.sqrt(240**2 + 240**2 + 155**2)  # the challenge's 373.13 mm
    assert worst_case_distance(empty.shape, (1, 1, 1)) == pytest.approx(373.13, abs=0.01)
    assert hausdorff95(empty, lesion, (1, 1, 1)) == pytest.approx(worst)  # missed
    assert hausdorff95(lesion, empty, (1, 1, 1)) == pytest.approx(worst)  # hallucinated
    assert hausdorff95(lesion, empty, (2, 1, 1)) == pytest.approx(np.sqrt(480**2 + 240**2 + 155**2))
    assert "373.13" in EMPTY_MASK_POLICY["worst_case"]
    # Per image: both empty, missed, hallucinated, found exactly.
    t = np.zeros((4, 6, 6), np.int64)
    p = np.zeros((4, 6, 6), np.int64)
    t[1, 1:3, 1:3] = 1
    p[2, 1:3, 1:3] = 1
    t[3, 2:4, 2:4] = p[3, 2:4, 2:4] = 1
    m = segmentation_metrics(t, p, ["bg", "fg"])
    diagonal = np.sqrt(36 + 36)
    # Dice per image 1, 0, 0, 1; HD95 0, worst, worst, 0; sensitivity –, 0, –, 1 (defined
    # only where the reference has the structure); precision –, –, 0, 1.
    assert m["per_class"]["dice"][1] == pytest.approx(0.5)
    assert m["per_class"]["hd95"][1] == pytest.approx(diagonal / 2)
    assert m["per_class"]["sensitivity"][1] == pytest.approx(0.5)
    assert m["per_class"]["precision"][1] == pytest.approx(0.5)
    assert m["hd95_unit"] == "voxel"
    assert segmentation_metrics(t, p, ["bg", "fg"], spacing=(2.0, 2.0))["hd95_unit"] == "mm"
    spaced = segmentation_metrics(t, p, ["bg", "fg"], spacing=(2.0, 2.0))
    assert spaced["per_class"]["hd95"][1] == pytest.approx(diagonal)  # (2 × diagonal) / 2


def test_regions_are_unions_of_labels():
    # Labels 1 edema, 2 core, 3 enhancing; the prediction calls every core voxel enhancing.
    t = np.zeros((1, 8, 8), np.int64)
    t[0, 1:7, 1:7] = 1
    t[0, 2:6, 2:6] = 2
    t[0, 3:5, 3:5] = 3
    p = t.copy()
    p[p == 2] = 3
    regions = {"whole_tumour": [1, 2, 3], "tumour_core": [2, 3], "enhancing_tumour": [3]}
    m = segmentation_metrics(t, p, ["bg", "edema", "core", "enhancing"], regions=regions)
    region = dict(zip(m["regions"], range(3), strict=True))
    per = m["per_region"]
    # WT and TC are unions that the mislabelling leaves intact: Dice 1, HD95 0.
    assert per["dice"][region["whole_tumour"]] == 1.0 and per["hd95"][region["tumour_core"]] == 0
    # ET: 4 true voxels inside 16 predicted: Dice 2·4/(16 + 4), sensitivity 1, precision 1/4.
    et = region["enhancing_tumour"]
    assert per["dice"][et] == pytest.approx(0.4)
    assert per["sensitivity"][et] == 1.0 and per["precision"][et] == pytest.approx(0.25)
    # Label 2 alone is never predicted: Dice 0 (missed), precision undefined.
    assert m["per_class"]["dice"][2] == 0.0 and m["per_class"]["precision"][2] is None
    with pytest.raises(ValueError, match=r"region 'x' must list foreground labels in 1..3"):
        segmentation_metrics(t, p, ["bg", "a", "b", "c"], regions={"x": [0, 1]})


def test_spacing_per_image_must_match_the_images():
    from medimbalance.metrics import image_spacings

    assert image_spacings(None, 2, 3) == [None, None]
    assert [list(x) for x in image_spacings([1, 2, 3], 2, 3)] == [[1, 2, 3], [1, 2, 3]]
    with pytest.raises(ValueError, match=r"spacing must give 3 values for each of the 2 images"):
        image_spacings([[1, 1, 1]], 2, 3)


def test_surface_dice_matches_monai_with_anisotropic_spacing(rng):
    from monai.metrics import compute_surface_dice

    from medimbalance.metrics import surface_dice

    for trial in range(5):
        truth = np.zeros((24, 24, 12), bool)
        a, b, c = rng.integers(4, 10, 3)
        truth[a : a + 8, b : b + 6, c // 2 : c // 2 + 5] = True
        predicted = np.roll(truth, rng.integers(-2, 3, 3), axis=(0, 1, 2))
        predicted |= rng.random(truth.shape) > 0.995
        spacing, tolerance = (0.8, 1.0, 2.5), 1.5
        one_hot = lambda m: torch.as_tensor(np.stack([~m, m])[None].astype(np.float32))  # noqa: E731
        expected = float(
            compute_surface_dice(
                one_hot(predicted), one_hot(truth), [tolerance], spacing=list(spacing)
            )
        )
        assert surface_dice(predicted, truth, tolerance, spacing) == pytest.approx(expected), trial
    empty = np.zeros((8, 8), bool)
    assert surface_dice(empty, empty, 1.0) == 1.0 and surface_dice(empty, ~empty, 1.0) == 0.0
    # By hand: a 4 × 4 square and the same square 2 voxels to the right, tolerance 1. Each
    # outline has 12 voxels; brute force over the outlines' coordinates gives the share within
    # 1 voxel of the other outline.
    square = np.zeros((10, 10), bool)
    square[2:6, 2:6] = True
    shifted = np.roll(square, 2, 1)
    outline = lambda m: np.argwhere(m & ~ndimage.binary_erosion(m))  # noqa: E731
    a, b = outline(square), outline(shifted)
    distances = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    within = (distances.min(1) <= 1).sum() + (distances.min(0) <= 1).sum()
    assert len(a) == len(b) == 12
    m = segmentation_metrics(
        square[None].astype(int), shifted[None].astype(int), ["bg", "fg"], surface_tolerance=1.0
    )
    assert m["surface_tolerance"] == 1.0
    assert m["per_class"]["surface_dice"][1] == pytest.approx(within / 24)
    assert within == 16  # 8 voxels of each outline lie within 1 of the other
    assert "surface_dice" not in segmentation_metrics(square[None], square[None], ["bg", "fg"])

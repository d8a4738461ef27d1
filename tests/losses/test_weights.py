"""Count formulas by hand: class weights, effective number, LDAM margins, label prior, per-label
BCE weights, label-distribution smoothing."""

import math

import numpy as np
import pytest

from medimbalance.balancing import class_draw_probabilities
from medimbalance.losses.weights import (
    class_weights,
    inverse_effective_number,
    label_weights,
    ldam_margins,
    lds_kernel,
    lds_weights,
    log_prior,
)


def test_class_weights_by_hand():
    # inverse: 1/1 and 1/3, normalised to sum 2
    assert class_weights([1, 3], "inverse").tolist() == pytest.approx([1.5, 0.5])
    # effective, beta 0.5: (1-.5)/(1-.5) = 1 and .5/(1-.25) = 2/3 -> x 2/(5/3)
    assert class_weights([1, 2], "effective", 0.5).tolist() == pytest.approx([1.2, 0.8])
    assert class_weights([1, 2], "effective", 0.5).dtype == np.float32


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.9999])
def test_class_balanced_weights_formula(beta):
    counts = np.array([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    raw = (1 - beta) / (1 - beta**counts)
    w = class_weights(counts, "effective", beta)
    assert w.sum() == pytest.approx(10, rel=1e-6)
    assert w == pytest.approx(raw / raw.sum() * 10, rel=1e-5)
    assert (np.diff(w) >= -1e-6).all()  # rarer classes never weigh less
    if beta == 0.9999:  # small beta: beta^n ~ 0 for every class, so the weights are equal
        assert (np.diff(w) > 0).all()


def test_inverse_effective_number_by_hand_and_shared_with_the_sampler():
    # E_n = (1 - b^n) / (1 - b): b = 0.5, n = 1, 2, 3 -> 1, 1.5, 1.75
    assert inverse_effective_number([1, 2, 3], 0.5).tolist() == pytest.approx([1, 2 / 3, 4 / 7])
    assert inverse_effective_number([4, 9], 0.0).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\), got 1"):
        inverse_effective_number([1], 1)
    # the sampler's class mass n_c / E_{n_c} is the same formula
    counts = [3, 1]
    mass = np.array(counts) * inverse_effective_number(counts, 0.5)
    assert class_draw_probabilities(counts, "effective_number", 0.5) == pytest.approx(
        mass / mass.sum()
    )
    with pytest.raises(ValueError, match=r"sampler_beta: beta must lie in \[0, 1\)"):
        class_draw_probabilities(counts, "effective_number", 1.0)


def test_ldam_margins_scale_as_inverse_fourth_root():
    m = ldam_margins([16, 1]).tolist()
    assert m == pytest.approx([0.25, 0.5])  # 16^-1/4 = 0.5 of 1^-1/4
    counts = np.array([5000, 500, 50])
    m = ldam_margins(counts)
    assert m.max() == pytest.approx(0.5)
    assert m * counts**0.25 == pytest.approx(np.full(3, m[0] * 5000**0.25), rel=1e-6)


def test_log_prior_by_hand():
    assert log_prior([3, 1]).tolist() == pytest.approx([math.log(0.75), math.log(0.25)])
    assert log_prior([3, 1]).dtype == np.float32


def test_label_weights_give_positives_and_negatives_equal_weight():
    pos, neg = label_weights([1, 3], total=4)
    assert pos.tolist() == pytest.approx([2.0, 2 / 3]) and neg.tolist() == pytest.approx([2 / 3, 2])
    with pytest.raises(ValueError, match=r"label\(s\) \[1\] have \[0\] positives among 5"):
        label_weights([2, 0], total=5)


def test_every_class_needs_an_image():
    with pytest.raises(ValueError, match="every class needs at least one training image"):
        class_weights([3, 0])
    with pytest.raises(ValueError, match="unknown weighting 'sqrt'"):
        class_weights([3, 1], "sqrt")


def test_lds_weights_favour_rare_targets_and_average_one():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(0, 1, 900), rng.uniform(1, 2, 100)])
    edges, weights = lds_weights(values, bins=20, kernel_size=5, sigma=2.0)
    per_sample = weights[np.clip(np.searchsorted(edges, values, side="right") - 1, 0, 19)]
    assert per_sample.mean() == pytest.approx(1.0)
    assert weights[-1] > 5 * weights[0]  # the rare half weighs more
    _, flat = lds_weights(rng.uniform(0, 1, 100000), bins=10, kernel_size=1)
    assert flat == pytest.approx(np.ones(10), rel=0.05)  # uniform targets: equal weights


# Four bins over [0.5, 3.5] holding 9, 4, 1 and 16 training targets.
LDS_VALUES = np.repeat([0.5, 1.5, 2.5, 3.5], [9, 4, 1, 16])


def _scaled(inverse):  # weights scaled so that the 30 training targets' mean weight is 1
    n = np.array([9, 4, 1, 16])
    return inverse * 30 / (n * inverse).sum()


def test_lds_reference_window_folds_the_gaussian_back_at_the_edges():
    # Reflecting a centred impulse of 3 bins repeats it every 3 bins: each tap sums the Gaussian
    # exp(−k²/2) over k = tap, tap ± 3, … within scipy's 4σ truncation.
    g = lambda k: math.exp(-(k**2) / 2)  # noqa: E731
    edge = (g(1) + g(2) + g(4)) / (g(0) + 2 * g(3))
    assert lds_kernel("gaussian", 3, 1.0) == pytest.approx([edge, 1, edge])
    assert lds_kernel("gaussian", 3, 1.0, form="paper") == pytest.approx([g(1), 1, g(1)])
    assert lds_kernel("triang", 5) == pytest.approx([1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
    assert lds_kernel("laplace", 3, 2.0) == pytest.approx([math.exp(-0.5), 1, math.exp(-0.5)])
    with pytest.raises(ValueError, match="odd number of bins, got 4"):
        lds_kernel("gaussian", 4)


def test_lds_reference_square_root_inverse_smooths_the_square_roots():
    g = lambda k: math.exp(-(k**2) / 2)  # noqa: E731
    w = (g(1) + g(2) + g(4)) / (g(0) + 2 * g(3))
    c = np.sqrt([9, 4, 1, 16])  # 3, 2, 1, 4
    smoothed = np.array([c[0] + w * c[1], c[1] + w * (c[0] + c[2]), c[2] + w * (c[1] + c[3])])
    smoothed = np.append(smoothed, c[3] + w * c[2])
    edges, weights = lds_weights(LDS_VALUES, bins=4, kernel_size=3, sigma=1.0, power=0.5)
    assert edges == pytest.approx([0.5, 1.25, 2.0, 2.75, 3.5])
    assert weights == pytest.approx(_scaled(1 / smoothed))


def test_lds_reference_inverse_clips_the_counts_to_5_and_1000():
    w = lds_kernel("gaussian", 3, 1.0)[0]
    c = np.array([9.0, 5.0, 5.0, 16.0])  # 4 and 1 raised to 5
    smoothed = c + w * (np.r_[0, c[:-1]] + np.r_[c[1:], 0])
    _, weights = lds_weights(LDS_VALUES, bins=4, kernel_size=3, sigma=1.0, power=1.0)
    assert weights == pytest.approx(_scaled(1 / smoothed))
    _, many = lds_weights(np.repeat([0.0, 1.0], [5000, 2000]), bins=2, kernel_size=1)
    assert many == pytest.approx([1.0, 1.0])  # both counts clip to 1000: equal weights


def test_lds_paper_form_smooths_the_counts_then_takes_the_power():
    k = math.exp(-0.5)
    n = np.array([9.0, 4.0, 1.0, 16.0])
    smoothed = n + k * (np.r_[0, n[:-1]] + np.r_[n[1:], 0])
    for power in (0.5, 1.0, 2.0):
        _, weights = lds_weights(LDS_VALUES, 4, 3, 1.0, power, form="paper")
        assert weights == pytest.approx(_scaled(smoothed**-power))
    with pytest.raises(ValueError, match=r"power 2\.0 has no reference form"):
        lds_weights(LDS_VALUES, 4, 3, 1.0, 2.0)

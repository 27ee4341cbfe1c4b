"""Robust aggregation (fedlab.robust): exact numbers on hand-made updates, robustness to a wildly
wrong update, Krum's choice of the honest cluster, refusals (bad arguments, too few clients,
secure aggregation) and FLTrust's trust scores on a real model. The cross-checks against Flower's
aggregation functions are in tests/test_flower_robust.py."""

import json
import math
import pickle

import numpy as np
import pytest

from fedlab import partition, steps
from fedlab.aggregators import Aggregator, ClientUpdates, WeightedMean, through
from fedlab.algorithms import Algorithm, FedAvg
from fedlab.data import load_digits
from fedlab.models import logistic_regression, model_fn
from fedlab.robust import (
    Bulyan,
    CoordinateMedian,
    FLTrust,
    GeometricMedian,
    Krum,
    NormClipping,
    TrimmedMean,
    flatten_updates,
    krum_scores,
    pairwise_distances,
    unflatten,
)
from fedlab.secure_aggregation import SecureAggregation

RNG = np.random.default_rng(0)


def apply(aggregator, updates, num_examples=None, client_ids=None, rng=None, **kwargs):
    num_examples = [1] * len(updates[0]) if num_examples is None else num_examples
    received = ClientUpdates(
        [np.asarray(u, np.float32) for u in updates], num_examples, client_ids, **kwargs
    )
    return aggregator.apply({}, received, rng or np.random.default_rng(0))


def tiny_fltrust(**kwargs):
    x = np.eye(4, dtype="float32")
    return FLTrust(x, np.array([0, 1, 0, 1]), lambda: logistic_regression(2), **kwargs)


def every_defence():
    return [
        CoordinateMedian(),
        TrimmedMean(0.1),
        Krum(1),
        Krum(1, num_selected=3),
        Bulyan(1),
        NormClipping(1.0),
        tiny_fltrust(),
        GeometricMedian(),
    ]


# -- flat vectors -----------------------------------------------------------------------------------


def test_flatten_and_unflatten_are_inverse_over_several_weights():
    updates = [RNG.normal(size=(3, 2, 4)), RNG.normal(size=(3, 5)), RNG.normal(size=(3, 1))]
    flat = flatten_updates(updates)
    assert flat.shape == (3, 14) and flat.dtype == np.float64
    for k in range(3):
        back = unflatten(flat[k], [(2, 4), (5,), (1,)])
        assert [b.dtype for b in back] == [np.float32] * 3
        for b, u in zip(back, updates, strict=True):
            np.testing.assert_allclose(b, u[k], rtol=1e-6)
    with pytest.raises(ValueError, match="vector has 14 entries"):
        unflatten(flat[0], [(2, 4)])


def test_pairwise_distances_are_squared_l2_by_hand():
    points = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [0.0, 3.0, 4.0]])
    # |p1|² = 9, |p2|² = 25, |p1 - p2|² = 1 + 1 + 4 = 6
    expected = [[0.0, 9.0, 25.0], [9.0, 0.0, 6.0], [25.0, 6.0, 0.0]]
    np.testing.assert_allclose(pairwise_distances(points), expected, atol=1e-12)
    # two nearly equal large vectors: no negative distance from rounding
    big = np.array([[1e8, 1.0], [1e8, 1.0 + 1e-9]])
    assert pairwise_distances(big).min() >= 0.0


# -- exact fixtures ---------------------------------------------------------------------------------


def test_coordinate_median_exact_on_three_weights():
    # 5 clients; weight 1 [5, 2], weight 2 [5, 1, 2], weight 3 [5] (one coordinate)
    w1 = [[1, 10], [2, -4], [300, 0], [4, 7], [3, 6]]  # sorted: 1 2 3 4 300 -> 3; -4 0 6 7 10 -> 6
    w2 = [[[1, 1]], [[2, 0]], [[3, -1]], [[4, -2]], [[5, -900]]]  # medians 3 and -1
    w3 = [[0.5], [0.25], [0.75], [0.0], [1.0]]  # median 0.5
    result = apply(CoordinateMedian(), [w1, w2, w3], num_examples=[100, 1, 1, 1, 1])
    assert [u.tolist() for u in result.update] == [[3.0, 6.0], [[3.0, -1.0]], [0.5]]
    assert [u.dtype for u in result.update] == [np.float32] * 3
    assert result.metrics == {}
    # an even number of clients: the mean of the two middle values (1 2 | 4 8 -> 3)
    assert apply(CoordinateMedian(), [[[1], [8], [2], [4]]]).update[0].tolist() == [3.0]


def test_trimmed_mean_exact_on_two_weights():
    # 10 clients, beta 0.2: floor(0.2 * 10) = 2 dropped at each end
    w1 = [[5, 0], [1, 0], [100, 0], [2, 0], [3, 0], [4, 0], [-50, 0], [6, 0], [7, 10], [8, -10]]
    w2 = [[[1]], [[2]], [[3]], [[4]], [[5]], [[6]], [[7]], [[8]], [[20]], [[1000]]]
    result = apply(TrimmedMean(0.2), [w1, w2])
    # w1[:, 0] sorted: -50 1 | 2 3 4 5 6 7 | 8 100 -> 27 / 6 = 4.5; w1[:, 1]: -10 0 | 0 ... | 0 10 -> 0
    # w2 sorted: 1 2 | 3 4 5 6 7 8 | 20 1000 -> 33 / 6 = 5.5
    np.testing.assert_allclose(result.update[0], [4.5, 0.0])
    np.testing.assert_allclose(result.update[1], [[5.5]])
    # beta 0.1: one at each end -> w2: 2 + 3 + ... + 8 + 20 = 55, / 8
    np.testing.assert_allclose(apply(TrimmedMean(0.1), [w1, w2]).update[1], [[55 / 8]])
    # beta 0.25: floor(2.5) = 2, as 0.2
    np.testing.assert_allclose(apply(TrimmedMean(0.25), [w1, w2]).update[1], [[5.5]])
    # beta 0: the plain (unweighted) mean, whatever the counts
    counts = [1000] + [1] * 9
    np.testing.assert_allclose(
        apply(TrimmedMean(0.0), [w1, w2], counts).update[1], [[1056 / 10]], rtol=1e-6
    )


def test_trimmed_mean_counts_from_the_beta_you_wrote():
    # 0.29 * 100 is 28.999999999999996 in floating point; fedlab trims 29
    assert TrimmedMean(0.29).trimmed(100) == 29
    assert TrimmedMean(0.1).trimmed(9) == 0
    assert TrimmedMean(0.49).trimmed(100) == 49
    values = np.arange(100.0)[:, None] ** 2  # trimming 29 keeps 29 .. 70
    expected = np.mean(np.arange(29.0, 71.0) ** 2)
    np.testing.assert_allclose(apply(TrimmedMean(0.29), [values]).update[0], [expected], rtol=1e-6)


# Krum's fixture: 7 clients, f = 2, so K - f - 2 = 3 neighbours. Each client's update is a point
# (x, y): x in weight 1, y in weight 2, and a third weight of zeros (no effect on distances).
KRUM_POINTS = [(3, 3), (3, 2), (3, 1), (1, 3), (0, 1), (20, 0), (20, 1)]  # A B C D E F G
# squared distances: AB 1, AC 4, AD 4, AE 13, AF 298, AG 293; BC 1, BD 5, BE 10, BF 293, BG 290;
# CD 8, CE 9, CF 290, CG 289; DE 5, DF 370, DG 365; EF 401, EG 400; FG 1
# scores (3 nearest): A 1+4+4 = 9, B 1+1+5 = 7, C 1+4+8 = 13, D 4+5+5 = 14, E 5+9+10 = 24,
# F 1+290+293 = 584, G 1+289+290 = 580 -> ranking B A C D E G F
KRUM_SCORES = [9, 7, 13, 14, 24, 584, 580]
KRUM_IDS = [30, 31, 32, 33, 34, 35, 36]


def krum_updates():
    x = [[p[0]] for p in KRUM_POINTS]
    y = [[[p[1]]] for p in KRUM_POINTS]
    return [x, y, np.zeros((7, 2))]


def test_krum_scores_by_hand():
    flat = flatten_updates(krum_updates())
    np.testing.assert_allclose(krum_scores(pairwise_distances(flat), 3), KRUM_SCORES)


def test_krum_exact():
    result = apply(Krum(2), krum_updates(), client_ids=KRUM_IDS)
    assert [u.tolist() for u in result.update] == [[3.0], [[2.0]], [0.0, 0.0]]  # B itself
    assert result.metrics == {"defence_kept": (31,)}
    assert all(isinstance(k, int) for k in result.metrics["defence_kept"])


def test_multi_krum_exact_unweighted_and_weighted():
    counts = [1, 2, 3, 4, 5, 6, 7]
    result = apply(Krum(2, num_selected=4), krum_updates(), counts, KRUM_IDS)
    # B A C D: x (3 + 3 + 3 + 1) / 4 = 2.5, y (2 + 3 + 1 + 3) / 4 = 2.25
    np.testing.assert_allclose(result.update[0], [2.5])
    np.testing.assert_allclose(result.update[1], [[2.25]])
    assert result.metrics["defence_kept"] == (31, 30, 32, 33)  # best score first
    weighted = apply(Krum(2, num_selected=4, weighted=True), krum_updates(), counts, KRUM_IDS)
    # weights B 2, A 1, C 3, D 4: x (6 + 3 + 9 + 4) / 10 = 2.2, y (4 + 3 + 3 + 12) / 10 = 2.2
    np.testing.assert_allclose(weighted.update[0], [2.2], rtol=1e-6)
    np.testing.assert_allclose(weighted.update[1], [[2.2]], rtol=1e-6)
    # m = K - f = 5 is the most it may keep: B A C D E
    five = apply(Krum(2, num_selected=5), krum_updates(), counts, KRUM_IDS)
    np.testing.assert_allclose(five.update[0], [10 / 5])  # 3 + 3 + 3 + 1 + 0
    assert five.metrics["defence_kept"] == (31, 30, 32, 33, 34)


# Bulyan's fixture: 7 clients, f = 1: theta = 5 selected, beta = 3 averaged per coordinate.
# Client k's update: a_k in weight 1, 2 a_k in weight 2 (distances x5: the same choices) and a tiny
# c_k / 100 in weight 3 (too small to change any choice).
BULYAN_A = [0, 1, 3, 4, 6, 10, 60]
BULYAN_C = [8, -3, 2, 9, 0, 4, 9]
BULYAN_IDS = [10, 11, 12, 13, 14, 15, 16]
# repeated Krum on a (squared distances, x5 throughout):
# 1. 7 left, 4 neighbours: 0: 1+9+16+36 = 62, 1: 1+4+9+25 = 39, 3: 1+4+9+9 = 23, 4: 1+4+9+16 = 30,
#    6: 4+9+16+25 = 54, 10: 16+36+49+81 = 182, 60: huge -> 3 (position 2)
# 2. 6 left, 3 neighbours: 0: 1+16+36 = 53, 1: 1+9+25 = 35, 4: 4+9+16 = 29, 6: 4+16+25 = 45,
#    10: 16+36+81 = 133 -> 4 (position 3)
# 3. 5 left, 2 neighbours: 0: 1+36 = 37, 1: 1+25 = 26, 6: 16+25 = 41, 10: 16+81 = 97 -> 1 (pos. 1)
# 4. 4 left, max(1, 4-3) = 1 neighbour: 0: 36, 6: 16, 10: 16 -> tie, the first received: 6 (pos. 4)
# 5. 3 left, 1 neighbour: 0: 100, 10: 100, 60: 2500 -> tie, the first received: 0 (position 0)
# selected a = {0, 1, 3, 4, 6}: median 3, the 3 closest 3, 4, 1 -> 8/3 (weight 2: 16/3)
# selected c = {8, -3, 2, 9, 0} (positions 0, 1, 2, 3, 4): median 2, the 3 closest 2, 0, -3 -> -1/3


def test_bulyan_exact():
    a = np.array(BULYAN_A, float)
    updates = [a[:, None], 2 * a[:, None, None], np.array(BULYAN_C, float)[:, None] / 100]
    result = apply(Bulyan(1), updates, client_ids=BULYAN_IDS)
    np.testing.assert_allclose(result.update[0], [8 / 3], rtol=1e-6)
    np.testing.assert_allclose(result.update[1], [[16 / 3]], rtol=1e-6)
    np.testing.assert_allclose(result.update[2], [-1 / 300], rtol=1e-5)
    assert result.metrics == {"defence_kept": (12, 13, 11, 14, 10)}  # in the order chosen


def test_bulyan_without_byzantine_clients_is_the_mean():
    updates = [RNG.normal(size=(5, 3)), RNG.normal(size=(5, 2, 2))]
    result = apply(Bulyan(0), updates, num_examples=[1, 9, 1, 1, 1])  # unweighted
    for u, expected in zip(result.update, updates, strict=True):
        np.testing.assert_allclose(u, expected.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert sorted(result.metrics["defence_kept"]) == [0, 1, 2, 3, 4]


def test_norm_clipping_exact():
    # client updates (w1 | w2): (3, 0 | 4) norm 5, (0.3, 0.4 | 0) norm 0.5, (0, -2 | 0) norm 2
    w1 = [[3.0, 0.0], [0.3, 0.4], [0.0, -2.0]]
    w2 = [[4.0], [0.0], [0.0]]
    result = apply(NormClipping(1.0), [w1, w2], [1, 2, 1], client_ids=[7, 8, 9])
    # clipped: (0.6, 0 | 0.8), (0.3, 0.4 | 0), (0, -1 | 0); weights 1, 2, 1 over 4:
    # w1 ((0.6 + 0.6 + 0) / 4, (0 + 0.8 - 1) / 4) = (0.3, -0.05); w2 0.8 / 4 = 0.2
    np.testing.assert_allclose(result.update[0], [0.3, -0.05], rtol=1e-6)
    np.testing.assert_allclose(result.update[1], [0.2], rtol=1e-6)
    assert result.metrics == {"defence_clipped": (7, 9)}
    # a clip above every norm: the plain weighted mean, nobody clipped
    loose = apply(NormClipping(10.0), [w1, w2], [1, 2, 1])
    np.testing.assert_allclose(loose.update[0], [(3 + 0.6) / 4, (0.8 - 2) / 4], rtol=1e-6)
    assert loose.metrics["defence_clipped"] == ()


def test_norm_clipping_noise_is_drawn_from_the_rounds_stream():
    w1 = [[3.0, 0.0], [0.3, 0.4], [0.0, -2.0]]
    w2 = [[4.0], [0.0], [0.0]]
    quiet = apply(NormClipping(1.0), [w1, w2], [1, 2, 1])
    noisy = apply(
        NormClipping(1.0, noise_std=0.5), [w1, w2], [1, 2, 1], rng=np.random.default_rng(7)
    )
    draws = np.random.default_rng(7)
    for q, n, shape in zip(quiet.update, noisy.update, [(2,), (1,)], strict=True):
        np.testing.assert_allclose(n, q + 0.5 * draws.normal(0.0, 1.0, size=shape), rtol=1e-6)


def test_geometric_median_by_hand():
    # three points on a line, equal weights: the middle one
    z = apply(GeometricMedian(), [[[0.0], [1.0], [10.0]]]).update[0]
    np.testing.assert_allclose(z, [1.0], atol=1e-3)
    # a weight above half the total wins: 10
    z = apply(GeometricMedian(), [[[0.0], [1.0], [10.0]]], num_examples=[1, 1, 5]).update[0]
    np.testing.assert_allclose(z, [10.0], atol=1e-3)
    # the corners of a square, over two weights: its centre
    corners = [[[0.0], [2.0], [0.0], [2.0]], [[0.0], [0.0], [2.0], [2.0]]]
    result = apply(GeometricMedian(), corners)
    np.testing.assert_allclose([result.update[0][0], result.update[1][0]], [1.0, 1.0], atol=1e-6)


# -- one wildly wrong update ------------------------------------------------------------------------


def poisoned_round(num_honest=10, seed=1):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    centre = [rng.normal(size=s) for s in shapes]
    honest = [c + 0.05 * rng.normal(size=(num_honest, *c.shape)) for c in centre]
    attack = [np.full((1, *c.shape), 1e4) for c in centre]
    updates = [np.concatenate([h, a]) for h, a in zip(honest, attack, strict=True)]
    honest_mean = flatten_updates([h.mean(axis=0)[None] for h in honest])[0]
    return updates, honest_mean


@pytest.mark.parametrize(
    "defence",
    [CoordinateMedian(), TrimmedMean(0.1), Krum(1), Krum(1, num_selected=5), Bulyan(1)]
    + [GeometricMedian()],
    ids=lambda d: d.config()["name"],
)
def test_one_wild_update_moves_the_mean_not_the_defence(defence):
    updates, honest_mean = poisoned_round()
    mean = flatten_updates([u[None] for u in apply(WeightedMean(), updates).update])[0]
    robust = flatten_updates([u[None] for u in apply(defence, updates).update])[0]
    assert np.linalg.norm(mean - honest_mean) > 1e3  # one client of 11 at 1e4: the mean follows
    # the honest updates spread 0.05 per coordinate around their centre (24 coordinates)
    assert np.linalg.norm(robust - honest_mean) < 0.3


def test_norm_clipping_bounds_one_clients_pull():
    updates, honest_mean = poisoned_round()
    result = apply(NormClipping(clip_norm=5.0), updates)
    flat = flatten_updates(updates)
    norms = np.linalg.norm(flat, axis=1)
    assert norms[:10].max() < 5.0  # honest updates pass unclipped
    clipped_mean = flatten_updates([u[None] for u in result.update])[0]
    # the attacker's share: at most clip_norm / K away from the honest clients' contribution
    honest_part = flat[:10].sum(axis=0) / 11
    assert np.linalg.norm(clipped_mean - honest_part) <= 5.0 / 11 + 1e-5
    assert result.metrics["defence_clipped"] == (10,)


@pytest.mark.parametrize(
    "defence",
    [CoordinateMedian(), TrimmedMean(0.2), Krum(2), Krum(2, num_selected=5), Bulyan(2)],
    ids=lambda d: d.config()["name"],
)
def test_nan_and_infinite_updates_are_left_out(defence):
    updates, honest_mean = poisoned_round()  # 10 honest, the last one at 1e4
    for u in updates:
        u[0] = np.nan  # an honest client's update replaced by NaN, another by -inf
        u[1] = -np.inf
    honest_mean = flatten_updates([u[2:10].mean(axis=0)[None] for u in updates])[0]
    result = flatten_updates([u[None] for u in apply(defence, updates).update])[0]
    assert np.all(np.isfinite(result))
    assert np.linalg.norm(result - honest_mean) < 0.3
    if "defence_kept" in apply(defence, updates).metrics:
        assert not {0, 1} & set(apply(defence, updates).metrics["defence_kept"])


def test_fltrust_gives_a_non_finite_update_no_trust():
    agg = tiny_fltrust()
    object.__setattr__(agg, "server_update", lambda weights, round_num, seed: [np.ones(2)])
    received = ClientUpdates(
        [[[1.0, 1.0], [np.nan, 1.0], [np.inf, 0.0]]], [1, 1, 1], global_weights=[np.zeros(2)]
    )
    result = agg.apply({}, received, np.random.default_rng(0))
    assert result.metrics["trust_scores"][1:] == (0.0, 0.0)
    np.testing.assert_allclose(result.update[0], [1.0, 1.0], rtol=1e-6)


# -- Krum picks the honest cluster ------------------------------------------------------------------


def test_krum_keeps_the_honest_cluster_against_colluders():
    rng = np.random.default_rng(3)
    honest = [rng.normal(0.0, 0.1, size=(8, 6)), rng.normal(0.0, 0.1, size=(8, 2, 2))]
    colluders = [rng.normal(5.0, 0.01, size=(3, 6)), rng.normal(5.0, 0.01, size=(3, 2, 2))]
    order = rng.permutation(11)  # the attackers are not the last ones received
    updates = [np.concatenate([h, c])[order] for h, c in zip(honest, colluders, strict=True)]
    ids = 100 + order  # client 100 + j is honest iff j < 8
    honest_ids = set(range(100, 108))
    krum = apply(Krum(3), updates, client_ids=ids)
    assert set(krum.metrics["defence_kept"]) <= honest_ids
    multi = apply(Krum(3, num_selected=8), updates, client_ids=ids)
    assert set(multi.metrics["defence_kept"]) == honest_ids
    np.testing.assert_allclose(multi.update[0], honest[0].mean(axis=0), rtol=1e-5, atol=1e-6)
    # Bulyan(2) on 11 = 4 * 2 + 3 clients selects theta = 7: its last picks, among 5 and 4
    # candidates with one neighbour each, go to the tight colluding pair; the coordinate-wise
    # step (the 3 values closest to the median of 7) then leaves them out
    bulyan = apply(Bulyan(2), updates, client_ids=ids)
    kept = set(bulyan.metrics["defence_kept"])
    assert len(kept) == 7 and len(kept - honest_ids) == 2
    robust = flatten_updates([u[None] for u in bulyan.update])[0]
    honest_mean = flatten_updates([h.mean(axis=0)[None] for h in honest])[0]
    assert np.abs(robust - honest_mean).max() < 0.2  # honest values spread 0.1; colluders at 5


# -- refusals ---------------------------------------------------------------------------------------


def test_check_round_size_names_the_bound():
    with pytest.raises(
        ValueError,
        match=r"^Krum with num_byzantine=3 needs more than 2·3 \+ 2 = 8 clients per round, got 6$",
    ):
        Krum(3).check_round_size(6)
    Krum(3).check_round_size(9)  # 9 > 8
    with pytest.raises(ValueError, match=r"Multi-Krum with num_byzantine=1 needs more than 2·1"):
        Krum(1, num_selected=2).check_round_size(4)
    with pytest.raises(
        ValueError, match=r"num_selected=5 .* clients per round − num_byzantine = 4"
    ):
        Krum(1, num_selected=5).check_round_size(5)
    Krum(1, num_selected=4).check_round_size(5)
    with pytest.raises(
        ValueError, match=r"^Bulyan with num_byzantine=2 needs at least 4·2 \+ 3 = 11 clients"
    ):
        Bulyan(2).check_round_size(10)
    Bulyan(2).check_round_size(11)
    with pytest.raises(ValueError, match="clients_per_round must be an integer"):
        Krum(1).check_round_size(0)


@pytest.mark.parametrize(
    ("defence", "num_clients"),
    [(Krum(3), 8), (Krum(1, num_selected=4), 4), (Bulyan(2), 10), (Bulyan(0), 2)],
)
def test_a_round_with_too_few_clients_is_refused(defence, num_clients):
    updates = [RNG.normal(size=(num_clients, 3)), RNG.normal(size=(num_clients, 2))]
    result = apply(defence, updates)
    assert result.update is None
    assert result.metrics == {"defence_kept": ()}
    # the server keeps its weights: the round changes nothing
    done = steps.rounds.server_update(
        FedAvg(), [np.ones(3), np.ones(2)], {}, result, [], 1.0, 1, list(range(num_clients))
    )
    assert not done.changed and done.weights[0].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("defence", every_defence(), ids=lambda d: d.config()["name"])
def test_nobody_reported_is_refused(defence):
    received = ClientUpdates([np.zeros((0, 4, 2)), np.zeros((0, 2))], [], global_weights=None)
    if isinstance(defence, FLTrust):
        received = ClientUpdates(
            [np.zeros((0, 4, 2)), np.zeros((0, 2))],
            [],
            global_weights=[np.zeros((4, 2), "float32"), np.zeros(2, "float32")],
        )
    assert defence.apply({}, received, np.random.default_rng(0)).update is None


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TrimmedMean(0.5), ValueError, r"beta must be a finite number in \[0, 0.5\), got 0.5"),
        (lambda: TrimmedMean(-0.1), ValueError, r"beta must be a finite number in \[0, 0.5\)"),
        (lambda: TrimmedMean("0.1"), TypeError, "beta must be a number"),
        (lambda: Krum(-1), ValueError, r"num_byzantine must be an integer in \[0, inf\], got -1"),
        (lambda: Krum(1.5), TypeError, "num_byzantine must be an integer"),
        (lambda: Krum(1, num_selected=0), ValueError, r"num_selected must be an integer in \[1, inf\]"),
        (lambda: Krum(1, weighted="yes"), TypeError, "weighted must be True or False"),
        (lambda: Bulyan(-2), ValueError, r"num_byzantine must be an integer in \[0, inf\]"),
        (lambda: NormClipping(0.0), ValueError, r"clip_norm must be a finite number in \(0, inf\)"),
        (lambda: NormClipping(math.inf), ValueError, "clip_norm must be a finite number"),
        (lambda: NormClipping(1.0, noise_std=-1), ValueError, r"noise_std must be a finite number in \[0, inf\)"),
        (lambda: GeometricMedian(max_iterations=0), ValueError, "max_iterations must be an integer"),
        (lambda: GeometricMedian(smoothing=0.0), ValueError, r"smoothing must be a finite number in \(0"),
        (lambda: GeometricMedian(tol=-1.0), ValueError, r"tol must be a finite number in \[0"),
        (lambda: tiny_fltrust(client_lr=0.0), ValueError, "client_lr must be a finite number"),
        (lambda: tiny_fltrust(local_epochs=0), ValueError, "local_epochs must be an integer"),
        (lambda: tiny_fltrust(batch_size=0), ValueError, "batch_size must be an integer"),
        (
            lambda: FLTrust(np.zeros((3, 4)), np.zeros(2, int), lambda: logistic_regression(2)),
            ValueError,
            "root_x and root_y must have the same length, got 3 and 2",
        ),
        (
            lambda: FLTrust(np.zeros((2, 4)), np.zeros(2), lambda: logistic_regression(2)),
            TypeError,
            "root_y must have dtype kind in 'iu'",
        ),
        (
            lambda: FLTrust(np.zeros((0, 4)), np.zeros(0, int), lambda: logistic_regression(2)),
            ValueError,
            "root_x must hold at least one example",
        ),
        (lambda: FLTrust(np.zeros((2, 4)), np.zeros(2, int), "mlp"), TypeError, "model_fn must be a function"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("defence", every_defence(), ids=lambda d: d.config()["name"])
def test_secure_aggregation_is_refused_naming_both(defence):
    name = type(defence).__name__
    with pytest.raises(ValueError, match=f"^{name} cannot run through SecureAggregation: "):
        through(defence, SecureAggregation())


def test_a_run_with_secure_aggregation_and_krum_is_refused_before_training():
    algorithm = Algorithm(aggregator=Krum(1), name="Krum-FedAvg")
    with pytest.raises(ValueError, match="Krum-FedAvg with secure_aggregation: Krum cannot run"):
        steps.rounds.compose(algorithm, SecureAggregation())


# -- the aggregate slot -----------------------------------------------------------------------------


@pytest.mark.parametrize("defence", every_defence(), ids=lambda d: d.config()["name"])
def test_every_defence_fills_the_aggregate_slot(defence):
    assert isinstance(defence, Aggregator)
    assert defence.in_graph is False and defence.acts_without_clients is False
    assert defence.init([np.zeros(3)]) == {}
    config = json.loads(json.dumps(defence.config()))
    assert config["name"] == type(defence).__name__
    assert Algorithm(aggregator=defence).aggregator is defence


def test_metrics_are_round_record_fields():
    from fedlab.history import RoundRecord

    fields = set(RoundRecord.__dataclass_fields__)
    updates, _ = poisoned_round()
    for defence in (Krum(1), Bulyan(1), NormClipping(1.0)):
        assert set(apply(defence, updates).metrics) <= fields
    assert "trust_scores" in fields


def test_median_runs_in_a_real_round():
    digits = load_digits()
    split = partition.iid(digits.y_train, 5, seed=0)
    model, weights = steps.initialize(model_fn("logreg", 10), digits.x_train, seed=0)
    algorithm = Algorithm(aggregator=CoordinateMedian(), batch_size=None, name="median")
    result = steps.run_round(model, weights, digits, split, algorithm, 5, round_num=1)
    deltas = [np.stack(column) for column in zip(*(r.delta for r in result.clients), strict=True)]
    for got, stacked in zip(result.aggregated_delta, deltas, strict=True):
        np.testing.assert_allclose(got, np.median(stacked, axis=0), rtol=1e-6, atol=1e-7)


# -- FLTrust ----------------------------------------------------------------------------------------


def test_fltrust_formula_by_hand():
    agg = tiny_fltrust()
    g0 = [np.array([1.0, 0.0], np.float32)]  # the server's update, fixed for this test
    object.__setattr__(agg, "server_update", lambda weights, round_num, seed: g0)
    # updates: (2, 0) cos 1; (0, 3) cos 0; (1, 1) cos 1/√2; (-1, 0) cos -1 -> trust 1, 0, 1/√2, 0
    updates = [[[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-1.0, 0.0]]]
    received = ClientUpdates(updates, [1, 100, 1, 1], global_weights=[np.zeros(2)])
    result = agg.apply({}, received, np.random.default_rng(0))
    s = 1 / math.sqrt(2)
    np.testing.assert_allclose(result.metrics["trust_scores"], [1.0, 0.0, s, 0.0], atol=1e-12)
    # rescaled to |g0| = 1: (1, 0) and (s, s); (1 * (1, 0) + s * (s, s)) / (1 + s)
    expected = [(1 + s * s) / (1 + s), s * s / (1 + s)]
    np.testing.assert_allclose(result.update[0], expected, rtol=1e-6)
    # nobody trusted: a zero update (the weights stay as they are under plain FedAvg)
    against = ClientUpdates([[[-1.0, 0.0], [0.0, -2.0]]], [1, 1], global_weights=[np.zeros(2)])
    refused = agg.apply({}, against, np.random.default_rng(0))
    assert refused.update[0].tolist() == [0.0, 0.0]
    assert refused.metrics["trust_scores"] == (0.0, 0.0)


def test_fltrust_needs_the_broadcast_model():
    received = ClientUpdates([np.zeros((2, 4, 2)), np.zeros((2, 2))], [1, 1])
    with pytest.raises(ValueError, match="FLTrust needs the broadcast model"):
        tiny_fltrust().apply({}, received, np.random.default_rng(0))


def fltrust_round(batch_size=None):
    """Honest clients' real updates on digits (logistic regression), one sign-flipped and one
    boosted copy; FLTrust's root data: 50 other training images."""
    digits = load_digits()
    model, weights = steps.initialize(model_fn("logreg", 10), digits.x_train, seed=0)
    honest = [
        steps.local_update(model, weights, digits.x_train[i : i + 60], digits.y_train[i : i + 60],
                           FedAvg(batch_size=None, client_lr=0.5), client_id=k).delta
        for k, i in enumerate((0, 60, 120, 180))
    ]  # fmt: skip
    flipped = [-d for d in honest[0]]
    boosted = [100.0 * d for d in honest[1]]
    clients = [*honest, flipped, boosted]
    updates = [np.stack(column) for column in zip(*clients, strict=True)]
    received = ClientUpdates(
        updates, [60] * 6, client_ids=[0, 1, 2, 3, 4, 5], global_weights=weights
    )
    root_x, root_y = digits.x_train[-50:], digits.y_train[-50:]
    agg = FLTrust(root_x, root_y, model_fn("logreg", 10), client_lr=0.5, batch_size=batch_size)
    return agg, received


def test_fltrust_trusts_honest_clients_not_a_sign_flipped_one():
    agg, received = fltrust_round()
    result = agg.apply({}, received, np.random.default_rng(0))
    trust = np.array(result.metrics["trust_scores"])
    assert len(trust) == 6
    assert trust[4] == 0.0  # the sign-flipped update
    assert np.all(trust[:4] > 0.2)  # honest updates point where the root data's does
    assert trust[5] == pytest.approx(trust[1])  # boosting changes the norm, not the direction
    # the aggregate has g0's norm (a convex combination of updates rescaled to it, all close)
    g0 = flatten_updates([g[None] for g in agg.server_update(received.global_weights)])[0]
    flat = flatten_updates([u[None] for u in result.update])[0]
    assert np.linalg.norm(flat) <= np.linalg.norm(g0) * (1 + 1e-6)
    assert np.linalg.norm(flat) > 0.5 * np.linalg.norm(g0)
    # and a round of it is deterministic (seeded), also with mini-batches
    again = agg.apply({}, received, np.random.default_rng(5))
    for a, b in zip(result.update, again.update, strict=True):
        np.testing.assert_array_equal(a, b)
    batched, _ = fltrust_round(batch_size=10)
    one = batched.apply({}, received, np.random.default_rng(0)).update
    two = batched.apply({}, received, np.random.default_rng(0)).update
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    # it pickles without its Keras model
    assert pickle.loads(pickle.dumps(agg)).config() == agg.config()


def test_fltrust_in_a_real_round():
    digits = load_digits()
    split = partition.iid(digits.y_train, 4, seed=0)
    model, weights = steps.initialize(model_fn("logreg", 10), digits.x_train, seed=0)
    agg = FLTrust(digits.x_test[:40], digits.y_test[:40], model_fn("logreg", 10), client_lr=0.1)
    algorithm = Algorithm(aggregator=agg, batch_size=None, name="FLTrust")
    result = steps.run_round(model, weights, digits, split, algorithm, 4, round_num=1)
    trust = result.aggregation_info["trust_scores"]
    assert len(trust) == 4 and all(t > 0 for t in trust)  # iid honest clients
    assert any(np.any(d != 0) for d in result.aggregated_delta)

"""fedlab.robust against Flower's own aggregation functions (flwr 1.42), on the same stacked updates.

Compared (Flower's source: ``flwr/server/strategy/aggregate.py`` and the Message-API strategies in
``flwr/serverapp/strategy/``):

* ``aggregate_median`` (FedMedian) = :class:`CoordinateMedian`;
* ``aggregate_trimmed_avg`` and the Message API's ``fedtrimmedavg.trim_mean`` = :class:`TrimmedMean`
  wherever ``int(beta * K)`` equals ⌊βK⌋ of the β written; they differ where the float product
  falls just under an integer (β = 0.29, K = 100: Flower trims 28, fedlab 29) — pinned below;
* ``aggregate_krum(results, f, 0)`` and the Message API's ``select_multikrum(contents, f, 1)``
  = :class:`Krum`;
* ``aggregate_krum(results, f, m)`` (Multi-Krum) = ``Krum(f, m, weighted=True)``: Flower averages
  the m selected updates weighted by example counts; fedlab's default is the paper's unweighted
  mean — pinned below;
* Flower scores with ``max(1, K - f - 2)`` neighbours whatever K; fedlab refuses a round with
  K ≤ 2f + 2 (Krum's bound) — pinned below;
* ``aggregate_bulyan(results, f, aggregate_krum, to_keep=0)`` (repeated Krum, as El Mhamdi et al.)
  = :class:`Bulyan`; the Message API's ``Bulyan`` strategy instead selects its θ updates in one
  Multi-Krum pass (``select_multikrum(contents, f, θ)``), which can pick a different set —
  pinned below with the functions that strategy's ``aggregate_train`` calls.

Flower is in the test extras: without ``flwr`` these tests fail on the import, they do not skip.
"""

import numpy as np
import pytest
from flwr.app import ArrayRecord, MetricRecord, RecordDict
from flwr.server.strategy.aggregate import (
    aggregate_bulyan,
    aggregate_krum,
    aggregate_median,
    aggregate_trimmed_avg,
)
from flwr.serverapp.strategy.bulyan import aggregate_n_closest_weights
from flwr.serverapp.strategy.fedtrimmedavg import trim_mean
from flwr.serverapp.strategy.multikrum import select_multikrum

from fedlab.aggregators import ClientUpdates
from fedlab.robust import Bulyan, CoordinateMedian, Krum, TrimmedMean

SHAPES = [(4, 3), (3,), (2, 2, 2)]


def stacked(num_clients, seed=0, num_bad=0):
    """float32 updates, one [K, ...] array per weight; the last ``num_bad`` clients far off."""
    rng = np.random.default_rng(seed)
    updates = [rng.normal(size=(num_clients, *s)).astype(np.float32) for s in SHAPES]
    for u in updates:
        u[num_clients - num_bad :] += 8.0
    return updates


def results_of(updates, counts):
    """Flower's legacy ``results``: (the client's arrays, its example count) per client."""
    return [
        ([np.asarray(u[k], np.float64) for u in updates], int(counts[k]))
        for k in range(len(counts))
    ]


def contents_of(updates, counts):
    """The Message API's reply contents: an ArrayRecord and the example count per client."""
    return [
        RecordDict(
            {
                "arrays": ArrayRecord([np.asarray(u[k], np.float64) for u in updates]),
                "metrics": MetricRecord({"num-examples": int(counts[k])}),
            }
        )
        for k in range(len(counts))
    ]


def fedlab(aggregator, updates, counts):
    received = ClientUpdates(updates, counts)
    return aggregator.apply({}, received, np.random.default_rng(0))


def assert_same(ours, theirs, exact=False):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == np.shape(b) and a.dtype == np.float32
        if exact:
            np.testing.assert_array_equal(a, np.asarray(b, np.float32))
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("num_clients", [5, 10, 11])
def test_median_equals_flowers(num_clients):
    updates = stacked(num_clients, seed=num_clients, num_bad=1)
    counts = np.arange(1, num_clients + 1)
    theirs = aggregate_median(results_of(updates, counts))
    assert_same(fedlab(CoordinateMedian(), updates, counts).update, theirs)


@pytest.mark.parametrize(
    ("beta", "num_clients"), [(0.0, 7), (0.1, 11), (0.2, 10), (0.3, 20), (0.45, 9)]
)
def test_trimmed_mean_equals_flowers(beta, num_clients):
    assert int(beta * num_clients) == TrimmedMean(beta).trimmed(num_clients)  # where they agree
    updates = stacked(num_clients, seed=3, num_bad=2)
    counts = np.ones(num_clients)
    ours = fedlab(TrimmedMean(beta), updates, counts).update
    assert_same(ours, aggregate_trimmed_avg(results_of(updates, counts), beta))
    assert_same(ours, [trim_mean(np.asarray(u, np.float64), beta) for u in updates])


def test_trimmed_mean_rounding_differs_from_flowers():
    values = np.arange(100, dtype=np.float32)[:, None] ** 2
    counts = np.ones(100)
    theirs = aggregate_trimmed_avg(results_of([values], counts), 0.29)
    ours = fedlab(TrimmedMean(0.29), [values], counts).update
    squares = np.arange(100.0) ** 2
    np.testing.assert_allclose(theirs[0], [squares[28:72].mean()])  # int(0.29 * 100) = 28
    np.testing.assert_allclose(ours[0], [squares[29:71].mean()], rtol=1e-6)  # ⌊0.29 · 100⌋ = 29
    assert not np.allclose(ours[0], theirs[0])


@pytest.mark.parametrize(("num_clients", "num_byzantine"), [(5, 1), (11, 2), (11, 4), (20, 3)])
def test_krum_equals_flowers(num_clients, num_byzantine):
    updates = stacked(num_clients, seed=num_clients + num_byzantine, num_bad=num_byzantine)
    counts = np.arange(1, num_clients + 1)
    result = fedlab(Krum(num_byzantine), updates, counts)
    assert_same(
        result.update, aggregate_krum(results_of(updates, counts), num_byzantine, 0), exact=True
    )
    contents = contents_of(updates, counts)
    chosen = select_multikrum(contents, num_byzantine, 1)
    assert result.metrics["defence_kept"] == tuple(contents.index(c) for c in chosen)
    assert result.metrics["defence_kept"][0] < num_clients - num_byzantine  # an honest client


@pytest.mark.parametrize(
    ("num_clients", "num_byzantine", "num_selected"), [(7, 2, 3), (11, 2, 5), (11, 3, 8)]
)
def test_weighted_multi_krum_equals_flowers(num_clients, num_byzantine, num_selected):
    updates = stacked(num_clients, seed=num_clients * num_selected, num_bad=num_byzantine)
    counts = np.random.default_rng(1).integers(1, 50, size=num_clients)
    multi = Krum(num_byzantine, num_selected, weighted=True)
    result = fedlab(multi, updates, counts)
    theirs = aggregate_krum(results_of(updates, counts), num_byzantine, num_selected)
    assert_same(result.update, theirs)
    contents = contents_of(updates, counts)
    chosen = select_multikrum(contents, num_byzantine, num_selected)
    assert result.metrics["defence_kept"] == tuple(contents.index(c) for c in chosen)


def test_multi_krum_is_unweighted_unlike_flowers():
    updates = stacked(11, seed=4, num_bad=2)
    unequal = np.array([1, 40, 3, 7, 2, 90, 5, 1, 1, 1, 1])
    result = fedlab(Krum(2, num_selected=5), updates, unequal)
    theirs = aggregate_krum(results_of(updates, unequal), 2, 5)
    kept = list(result.metrics["defence_kept"])
    for ours, u, flower in zip(result.update, updates, theirs, strict=True):
        np.testing.assert_allclose(ours, u[kept].astype(np.float64).mean(axis=0), rtol=1e-6)
        assert not np.allclose(ours, flower, rtol=1e-3)  # Flower weights by example counts
    # with equal counts the two definitions agree
    equal = np.full(11, 4)
    assert_same(
        fedlab(Krum(2, num_selected=5), updates, equal).update,
        aggregate_krum(results_of(updates, equal), 2, 5),
    )


@pytest.mark.parametrize(("num_clients", "num_byzantine"), [(4, 1), (3, 1), (6, 2)])
def test_too_few_clients_flower_aggregates_fedlab_refuses(num_clients, num_byzantine):
    updates = stacked(num_clients, seed=9)
    counts = np.ones(num_clients)
    # Flower scores with max(1, K - f - 2) neighbours and returns an update anyway
    theirs = aggregate_krum(results_of(updates, counts), num_byzantine, 0)
    assert all(np.all(np.isfinite(t)) for t in theirs)
    # fedlab: K <= 2f + 2 breaks Krum's assumption, so the round is refused
    assert fedlab(Krum(num_byzantine), updates, counts).update is None
    with pytest.raises(ValueError, match=f"needs more than 2·{num_byzantine} \\+ 2"):
        Krum(num_byzantine).check_round_size(num_clients)


@pytest.mark.parametrize(("num_clients", "num_byzantine"), [(7, 1), (11, 2), (15, 3), (12, 1)])
def test_bulyan_equals_flowers_repeated_krum(num_clients, num_byzantine):
    updates = stacked(num_clients, seed=20 + num_clients, num_bad=num_byzantine)
    counts = np.arange(1, num_clients + 1)
    theirs = aggregate_bulyan(results_of(updates, counts), num_byzantine, aggregate_krum, to_keep=0)
    assert_same(fedlab(Bulyan(num_byzantine), updates, counts).update, theirs)


def test_bulyan_hand_fixture_equals_flowers_ties_included():
    # tests/test_robust.py::test_bulyan_exact: two of the five picks are ties, both implementations
    # give them to the client received first
    a = np.array([0, 1, 3, 4, 6, 10, 60], np.float32)
    c = np.array([8, -3, 2, 9, 0, 4, 9], np.float32) / 100
    updates = [a[:, None], 2 * a[:, None, None], c[:, None]]
    counts = np.ones(7)
    theirs = aggregate_bulyan(results_of(updates, counts), 1, aggregate_krum, to_keep=0)
    assert_same(fedlab(Bulyan(1), updates, counts).update, theirs)
    np.testing.assert_allclose(theirs[0], [8 / 3])


def test_bulyan_differs_from_flowers_one_pass_selection():
    # Flower's Message-API Bulyan: theta = K - 2f updates by ONE Multi-Krum pass, then the same
    # coordinate-wise step; El Mhamdi et al. (and fedlab, and Flower's aggregate_bulyan) re-score
    # the candidates after every pick
    values = np.array([0.9, -0.7, -1.3, -0.6, 0.0, -2.3, -0.2], np.float32)
    updates = [values[:, None], np.zeros((7, 2), np.float32)]
    counts = np.ones(7)
    ours = fedlab(Bulyan(1), updates, counts)
    assert ours.metrics["defence_kept"] == (3, 1, 4, 2, 0)
    contents = contents_of(updates, counts)
    chosen = select_multikrum(contents, 1, 5)  # what Bulyan.aggregate_train calls first
    assert [contents.index(c) for c in chosen] == [3, 1, 6, 4, 2]
    arrays = [c["arrays"].to_numpy_ndarrays() for c in chosen]
    median = [np.median(layer, axis=0) for layer in zip(*arrays, strict=True)]
    theirs = aggregate_n_closest_weights(median, arrays, 5 - 2)
    # ours: {-0.6, -0.7, 0.0, -1.3, 0.9}, median -0.6, closest three -0.6 -0.7 0.0 -> -1.3 / 3
    np.testing.assert_allclose(ours.update[0], [-1.3 / 3], rtol=1e-6)
    # theirs: {-0.6, -0.7, -0.2, 0.0, -1.3}, median -0.6, closest -0.6 -0.7 -0.2 -> -0.5
    np.testing.assert_allclose(theirs[0], [-0.5], rtol=1e-6)

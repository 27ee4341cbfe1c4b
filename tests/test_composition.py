"""Features compose or refuse (issue 19): the whole table, then the numbers of each composition.

Every cell of (algorithm × compression × secure aggregation × stragglers × compute budgets) either
runs — and its round is checked — or is refused before round 1 with a ValueError naming both
features. The expected outcome is written here, independently of fedlab.rounds.check_composition.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fedlab import partition, robust, steps
from fedlab.aggregators import (
    ClientUpdates,
    FedNovaMean,
    GaussianSum,
    MaskedMean,
    PlainSum,
    WeightedMean,
    through,
)
from fedlab.algorithms import ALGORITHMS, FedAvg, FedNova, Scaffold
from fedlab.compression import ErrorFeedback, StochasticQuantizer, TopK
from fedlab.engine import Simulation
from fedlab.models import model_fn
from fedlab.personalization import PERSONALIZATION, FedPer
from fedlab.privacy import DPFedAvg, LocalDPFedAvg
from fedlab.secure_aggregation import SecureAggregation, quantization_error_bound
from fedlab.stragglers import Stragglers

MLP = model_fn("mlp", 10)
ALGORITHM_CELLS = {
    "fedavg": lambda: ALGORITHMS["fedavg"](client_lr=0.05),
    "fedprox": lambda: ALGORITHMS["fedprox"](mu=0.1, client_lr=0.05),
    "scaffold": lambda: ALGORITHMS["scaffold"](client_lr=0.05),
    "fedadam": lambda: ALGORITHMS["fedadam"](client_lr=0.05),
    "fednova": lambda: ALGORITHMS["fednova"](client_lr=0.05),
    "dp-fedavg": lambda: DPFedAvg(noise_multiplier=0.5, clip_norm=1.0, client_lr=0.05),
    "ldp-fedavg": lambda: LocalDPFedAvg(noise_multiplier=0.5, clip_norm=1.0, client_lr=0.05),
    **{name: (lambda f=f: f(client_lr=0.05)) for name, f in PERSONALIZATION.items()},
    # the aggregator dimension: robust defences (fedlab.robust) in FedAvg's aggregate slot
    "fedavg+median": lambda: FedAvg(client_lr=0.05).with_aggregator(robust.CoordinateMedian()),
    "fedavg+krum": lambda: FedAvg(client_lr=0.05).with_aggregator(robust.Krum(num_byzantine=0)),
}
ALGORITHM_CELLS.pop("multitask", None)  # needs multi-task data: its masked mean is FedPer's kind
COMPRESSION_CELLS = {
    "none": None,
    "int8": StochasticQuantizer(bits=8),
    "ef-topk": ErrorFeedback(TopK(0.5)),
}
SECURE_CELLS = {"plain": None, "secure": SecureAggregation(clip=1.0, bits=16)}
STRAGGLER_CELLS = {"all-wait": None, "drop-half": Stragglers(0.5, drop=True)}
BUDGET_CELLS = {"full": None, "budgets": [1, 2, 3, 1, 2, 3]}


def expected_refusal(algorithm: str, compression: str, secure: str) -> str | None:
    """What the table says must be refused, as (a pattern naming both features), else None."""
    if algorithm == "local" and compression != "none":
        return "local only with compression"
    if algorithm == "local" and secure == "secure":
        return "local only with secure_aggregation"
    if secure == "secure" and algorithm == "scaffold":
        return "SCAFFOLD with secure_aggregation"
    if secure == "secure" and algorithm == "ldp-fedavg":
        return "LDP-FedAvg with secure_aggregation"
    if secure == "secure" and algorithm.startswith("fedavg+"):  # a defence reads each update
        return "cannot run through SecureAggregation"
    return None


@pytest.fixture(scope="module")
def tiny(digits):
    split = partition.iid(digits.y_train[:240], num_clients=6, seed=0)
    return digits, split


CELLS = list(
    itertools.product(
        ALGORITHM_CELLS, COMPRESSION_CELLS, SECURE_CELLS, STRAGGLER_CELLS, BUDGET_CELLS
    )
)


def test_the_table_has_every_algorithm_fedlab_offers():
    offered = set(ALGORITHMS) | set(PERSONALIZATION) | {"dp-fedavg", "ldp-fedavg"}
    offered |= {"fedavg+median", "fedavg+krum"}
    # left out: the other server optimisers fill the slot FedAdam fills, FedSGD is FedAvg with
    # one full batch, and multi-task FL's masked mean is FedPer's kind (and needs its own data)
    same_slots = {"fedsgd", "fedavgm", "fedyogi", "fedadagrad", "multitask"}
    assert offered - set(ALGORITHM_CELLS) == same_slots


@pytest.mark.parametrize("cell", CELLS, ids=["/".join(c) for c in CELLS])
def test_every_cell_composes_or_refuses_naming_both(tiny, cell):
    data, split = tiny
    name, compression, secure, straggling, budgets = cell
    kwargs = dict(
        clients_per_round=4,
        compression=COMPRESSION_CELLS[compression],
        secure_aggregation=SECURE_CELLS[secure],
        stragglers=STRAGGLER_CELLS[straggling],
        max_local_steps=BUDGET_CELLS[budgets],
    )
    refusal = expected_refusal(name, compression, secure)
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            Simulation(ALGORITHM_CELLS[name](), MLP, data, split, **kwargs)
        return
    sim = Simulation(ALGORITHM_CELLS[name](), MLP, data, split, **kwargs)
    record = sim.step()
    assert all(np.all(np.isfinite(w)) for w in sim.weights)
    assert record.dropped == (record.stragglers if straggling == "drop-half" else ())
    if secure == "secure" and len(record.clients) >= 2:
        assert not record.secure_aborted
        assert record.bytes_up > 0
    if name == "fedavg+krum" and len(record.clients) > 2:  # Krum(f=0) kept one update
        assert len(record.defence_kept) == 1
    if budgets == "budgets" and record.clients:
        caps = np.array(BUDGET_CELLS["budgets"])[list(record.clients)]
        assert all(s <= c for s, c in zip(record.client_steps, caps, strict=True))


# -- the numbers of each composition ----------------------------------------------------------------

SECURE = SecureAggregation(clip=1.0, bits=24)


def _received(num: int = 5, seed: int = 0, steps_: bool = False) -> ClientUpdates:
    rng = np.random.default_rng(seed)
    updates = [rng.normal(0, 0.1, (num, 3, 4)), rng.normal(0, 0.1, (num, 4))]
    counts = rng.integers(5, 50, num)
    local_steps = rng.integers(1, 9, num) if steps_ else None
    return ClientUpdates(updates, counts, np.arange(10, 10 + num), local_steps, 3, num, seed)


def _bound(received: ClientUpdates, clip: float, bits: int) -> float:
    """Largest gap per coordinate of a secure sum of K vectors (before any division)."""
    return quantization_error_bound(received.num_clients, clip, bits)


@pytest.mark.parametrize(
    "aggregator",
    [WeightedMean(), FedNovaMean(), MaskedMean([np.ones((1, 3, 4)), np.zeros((1, 4))])],
    ids=["weighted-mean", "fednova", "masked"],
)
def test_sum_based_aggregators_through_secure_aggregation_equal_the_plain_ones(aggregator):
    received = _received(steps_=True)
    rng = np.random.default_rng(0)
    plain = aggregator.apply({}, received, rng).update
    secure = through(aggregator, SECURE).apply({}, received, rng)
    assert secure.metrics["secure_aborted"] is False and secure.bytes_up > 0
    # a mean divides the sum by at least 1 (n_k / n_max of the largest client); FedNova then
    # multiplies by τ_eff ≤ max τ_k
    scale = float(received.local_steps.max()) if isinstance(aggregator, FedNovaMean) else 1.0
    for a, b in zip(plain, secure.update, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=scale * _bound(received, 1.0, 24) + 1e-7)
    assert not np.allclose(plain[0], 0)


def test_distributed_dp_equals_central_dp_up_to_the_quantisation_bound():
    received = _received(num=6)
    central = GaussianSum(clip_norm=0.5, noise_multiplier=1.2)
    distributed = through(central, SecureAggregation(clip=0.5, bits=20))
    a = central.apply({}, received, np.random.default_rng(7))
    b = distributed.apply({}, received, np.random.default_rng(7))  # the same noise draw
    bound = _bound(received, 0.5, 20) / received.expected_clients
    for x, y in zip(a.update, b.update, strict=True):
        np.testing.assert_allclose(y, x, rtol=0, atol=bound + 1e-7)
    assert a.metrics["clipped_fraction"] == b.metrics["clipped_fraction"]
    assert a.metrics["noise_norm"] == pytest.approx(b.metrics["noise_norm"])
    # another noise draw differs by far more than the bound: the test above could fail
    c = central.apply({}, received, np.random.default_rng(8))
    assert np.abs(c.update[0] - a.update[0]).max() > 100 * bound


def test_distributed_dp_in_the_engine_keeps_epsilon_and_the_central_numbers(digits):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    algorithm = DPFedAvg(noise_multiplier=0.8, clip_norm=0.5, client_lr=0.1)
    central = Simulation(algorithm, MLP, digits, split, clients_per_round=4, seed=1)
    secure = Simulation(
        algorithm,
        MLP,
        digits,
        split,
        clients_per_round=4,
        seed=1,
        secure_aggregation=SecureAggregation(clip=0.5, bits=24),
    )
    for _ in range(2):
        a, b = central.step(), secure.step()
        assert a.clients == b.clients and a.epsilon == b.epsilon  # ε unchanged
        assert b.bytes_up not in (0, a.bytes_up)  # secure aggregation's own messages
    # two rounds: the second starts from weights that differ by the first round's bound, and the
    # gradient steps stay within a small multiple of it
    for x, y in zip(central.weights, secure.weights, strict=True):
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-4)
    assert secure.history.config["secure_aggregation"]["bits"] == 24


def test_dp_refuses_a_secure_range_smaller_than_its_clip_norm():
    with pytest.raises(ValueError, match=r"clip=0.25\) would cut .* clip_norm=1.0"):
        through(GaussianSum(clip_norm=1.0), SecureAggregation(clip=0.25))


def test_fednova_equals_fedavg_when_every_client_takes_the_same_steps(digits):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)  # 50 examples each
    runs = [
        Simulation(algorithm, MLP, digits, split, clients_per_round=3, seed=2)
        for algorithm in (FedAvg(client_lr=0.1), FedNova(client_lr=0.1))
    ]
    for _ in range(3):
        fedavg, fednova = (sim.step() for sim in runs)
        assert len(set(fednova.client_steps)) == 1
    for a, b in zip(runs[0].weights, runs[1].weights, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_fednova_normalises_unequal_budgets_and_the_steps_equal_the_engine(digits):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    budgets = [1, 1, 2, 2, 3, 3]
    fedavg = Simulation(FedAvg(client_lr=0.1), MLP, digits, split, seed=2, max_local_steps=budgets)
    nova = Simulation(FedNova(client_lr=0.1), MLP, digits, split, seed=2, max_local_steps=budgets)
    start = [w.copy() for w in nova.weights]
    record = nova.step()
    fedavg.step()
    assert record.client_steps == (1, 1, 2, 2, 3, 3)
    # by hand: τ_eff Σ p_k Δ_k / τ_k with equal p_k = 1/6
    gap = max(float(np.abs(a - b).max()) for a, b in zip(fedavg.weights, nova.weights, strict=True))
    assert gap > 1e-3  # FedNova is not FedAvg here
    model, _ = steps.initialize(MLP, digits.x_train, seed=2)
    by_hand = steps.run_round(
        model, start, digits, split, FedNova(client_lr=0.1), 6, 1, seed=2, max_local_steps=budgets
    )
    deltas = [r.delta for r in by_hand.clients]
    tau = np.array([r.num_steps for r in by_hand.clients], float)
    expected = [
        tau.mean() * sum(d[j] / t for d, t in zip(deltas, tau, strict=True)) / 6 for j in range(4)
    ]
    for e, got in zip(expected, by_hand.aggregated_delta, strict=True):
        np.testing.assert_allclose(got, e, rtol=1e-5, atol=1e-7)
    for a, b in zip(by_hand.weights, nova.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_compression_then_secure_aggregation_equals_compression_alone(digits):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    codec = ErrorFeedback(StochasticQuantizer(bits=8))
    runs = [
        Simulation(FedAvg(client_lr=0.1), MLP, digits, split, seed=3, compression=codec, **extra)
        for extra in ({}, {"secure_aggregation": SecureAggregation(clip=1.0, bits=24)})
    ]
    for _ in range(2):
        plain, secure = (sim.step() for sim in runs)
        assert plain.clients == secure.clients
    for a, b in zip(runs[0].weights, runs[1].weights, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)
    for a, b in zip(runs[0].residuals, runs[1].residuals, strict=True):  # the same residuals
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)


def test_fedper_through_secure_aggregation_equals_plain_fedper(digits):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    runs = [
        Simulation(FedPer(client_lr=0.1), MLP, digits, split, seed=4, **extra)
        for extra in ({}, {"secure_aggregation": SecureAggregation(clip=1.0, bits=24)})
    ]
    for sim in runs:
        sim.step()
    for a, b in zip(runs[0].weights, runs[1].weights, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)
    assert isinstance(runs[1].aggregator, MaskedMean)
    assert runs[1].aggregator.config()["summation"]["bits"] == 24


def test_refusals_name_both_features_before_round_one(digits):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    with pytest.raises(ValueError, match=r"SCAFFOLD with secure_aggregation: .*Δc_k"):
        Simulation(Scaffold(), MLP, digits, split, secure_aggregation=SecureAggregation())
    assert through(WeightedMean(), PlainSum()) == WeightedMean()  # a plain sum composes
    with pytest.raises(ValueError, match="cannot run through SecureAggregation"):
        through(_NotASum(), SecureAggregation())
    with pytest.raises(TypeError, match="aggregator must be an aggregator"):
        FedAvg().__class__(aggregator=np.mean)


class _NotASum:
    """An aggregator that needs the individual updates (e.g. a median)."""

    in_graph = False
    acts_without_clients = False

    def init(self, weights):
        return {}

    def apply(self, state, received, rng):
        raise NotImplementedError

    def config(self):
        return {"name": "median"}


def test_fedpers_masked_mean_has_no_robust_form(digits):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    with pytest.raises(ValueError, match="Krum has no masked form"):
        Simulation(FedPer().with_aggregator(robust.Krum(0)), MLP, digits, split)

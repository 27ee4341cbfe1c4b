"""Personalised and multi-task FL in the engine (issue 8): Ditto's limits, FedPer, fine-tuning,
IFCA, multi-task heads, state of clients not selected, per-client evaluation, clear errors."""

import numpy as np
import pytest
import tensorflow as tf

from fedlab import FedAvg, History, Simulation, partition, simulate, steps
from fedlab.data import Dataset
from fedlab.models import build_model, model_fn
from fedlab.multitask import multitask_digits
from fedlab.partition import ClientSplit
from fedlab.personalization import (
    IFCA,
    Ditto,
    FedAvgFineTune,
    FedPer,
    LocalOnly,
    MultiTaskFedAvg,
    cluster_purity,
)

MLP = model_fn("mlp", 10)


@pytest.fixture(scope="module")
def skewed(digits):
    """10 clients with label skew (Dirichlet 0.3) and their own held-out test sets."""
    split = partition.dirichlet(digits.y_train, 10, alpha=0.3, seed=0)
    return partition.hold_out(split, digits.y_train, 0.2, seed=0)


def _weights_equal(a, b, atol=0.0):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


# -- Ditto's two limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_ditto_with_lambda_zero_is_local_only_training(digits, skewed, strategy):
    kwargs = dict(clients_per_round=5, seed=3, strategy=strategy)
    ditto = Simulation(Ditto(lam=0.0), MLP, digits, skewed, **kwargs)
    local = Simulation(LocalOnly(), MLP, digits, skewed, **kwargs)
    for _ in range(3):
        ditto.step(), local.step()
    _weights_equal(ditto.personal_weights, local.personal_weights)
    assert ditto.history.rounds[-1].client_personal_accuracy == (
        local.history.rounds[-1].client_personal_accuracy
    )
    # local-only sends nothing and never changes the server's model
    assert local.history.bytes_up.sum() == local.history.bytes_down.sum() == 0
    assert np.isnan(local.history.test_accuracy).all()


def test_ditto_with_huge_lambda_keeps_personal_models_at_the_global_model(digits, skewed):
    sim = Simulation(Ditto(lam=1e12), MLP, digits, skewed, clients_per_round=4, seed=1)
    for _ in range(3):
        broadcast = [w.copy() for w in sim.weights]
        record = sim.step()
        for k in record.clients:  # v_k = w^t, the model the client received this round
            _weights_equal([p[k] for p in sim.personal_weights], broadcast, atol=1e-6)


def test_ditto_personal_step_matches_a_hand_written_proximal_sgd(digits, skewed):
    """Two paths, one truth: one round of the engine's personal pass, written with a tape."""
    lam, lr = 0.7, 0.1
    sim = Simulation(Ditto(lam=lam, client_lr=lr), MLP, digits, skewed, clients_per_round=3)
    w_global = [w.copy() for w in sim.weights]
    record = sim.step()
    model = build_model(MLP, digits.x_train, 0)
    for k in record.clients:
        v = [tf.Variable(w) for w in w_global]  # personal models start from the initial weights
        own = skewed.client_indices[k]
        for batch in steps.batch_order(len(own), 20, 1, 1, k, 0):
            xb, yb = digits.x_train[own[batch]], digits.y_train[own[batch]]
            with tf.GradientTape() as tape:
                logits, _ = model.stateless_call(v, [], xb, training=True)
                loss = tf.reduce_mean(steps.example_losses(yb, logits))
            for var, g, anchor in zip(v, tape.gradient(loss, v), w_global, strict=True):
                var.assign((var - lr * g + lr * lam * anchor) / (1 + lr * lam))
        _weights_equal([p[k] for p in sim.personal_weights], [x.numpy() for x in v], atol=2e-6)


# -- FedPer -----------------------------------------------------------------------------------------


def test_fedper_with_one_client_equals_centralised_training(digits):
    own = np.arange(300)
    split = ClientSplit.from_indices([own], digits.y_train)
    sim = Simulation(FedPer(client_lr=0.1), MLP, digits, split, seed=2)
    model, weights = steps.initialize(MLP, digits.x_train, seed=2)
    for round_num in range(1, 4):
        sim.step()
        result = steps.local_update(
            model, weights, digits.x_train[own], digits.y_train[own], FedAvg(), round_num, 0, 2
        )
        weights = result.weights
    model_of_client = [p[0] for p in sim.personal_models()]
    _weights_equal(model_of_client, weights, atol=1e-5)
    assert np.isnan(sim.history.test_accuracy).all()  # no global head: no global model


def test_fedper_averages_the_body_and_keeps_every_head_on_its_client(digits, skewed):
    sim = Simulation(FedPer(), MLP, digits, skewed, clients_per_round=4, seed=0)
    heads_before = [p.copy() for p in sim.personal_weights[-2:]]
    global_head = [w.copy() for w in sim.weights[-2:]]
    record = sim.step()
    _weights_equal(sim.weights[-2:], global_head)  # the server's head never moves
    moved = set(record.clients)
    for k in range(10):
        same = all(
            np.array_equal(p[k], b[k])
            for p, b in zip(sim.personal_weights[-2:], heads_before, strict=True)
        )
        assert same == (k not in moved)
    body = sum(w.size for w in sim.weights[:-2])
    assert record.bytes_up == 4 * body * len(record.clients)  # heads are never sent


# -- fine-tuning ------------------------------------------------------------------------------------


def test_fine_tuning_is_k_local_steps_from_the_global_model(digits, skewed):
    sim = Simulation(FedAvgFineTune(fine_tune_steps=4), MLP, digits, skewed, seed=5)
    sim.step()
    tuned = sim.personal_models()
    model = build_model(MLP, digits.x_train, 5)
    for k in (0, 7):
        own = skewed.client_indices[k]
        result = steps.local_update(
            model, sim.weights, digits.x_train[own], digits.y_train[own],
            FedAvg(local_epochs=4), round_num=0, client_id=k, seed=5, max_steps=4,
        )  # fmt: skip
        _weights_equal([t[k] for t in tuned], result.weights, atol=1e-5)
    record = sim.history.rounds[-1]
    assert np.mean(record.client_personal_accuracy) > np.mean(record.client_test_accuracy)


# -- identical clients: personalisation costs nothing ------------------------------------------------


def _identical_clients(digits, num_clients: int) -> tuple[Dataset, ClientSplit]:
    """Every client holds a copy of the same 300 training and 100 test examples."""
    block_x, block_y = digits.x_train[:400], digits.y_train[:400]
    x = np.concatenate([block_x] * num_clients)
    y = np.concatenate([block_y] * num_clients)
    data = Dataset("same", x, y, digits.x_test, digits.y_test, 10)
    train = [400 * k + np.arange(300) for k in range(num_clients)]
    test = [400 * k + np.arange(300, 400) for k in range(num_clients)]
    return data, ClientSplit.from_indices(train, y, test_indices=test)


@pytest.mark.parametrize(
    "algorithm",
    [LocalOnly(), FedAvgFineTune(5), FedPer(), Ditto(0.1), Ditto(10.0), IFCA(2)],
    ids=lambda a: a.name + str(getattr(a, "lam", "")),
)
def test_with_identical_clients_every_method_matches_fedavg(digits, algorithm):
    """Tolerance: 0.03 in mean per-client test accuracy after 15 rounds (FedAvg reaches ~0.93)."""
    data, split = _identical_clients(digits, 6)
    fedavg = simulate(FedAvg(), MLP, data, split, num_rounds=15, seed=0, progress=False)
    other = simulate(algorithm, MLP, data, split, num_rounds=15, seed=0, progress=False)
    reference = fedavg.personal_accuracy[-1]
    assert reference > 0.85
    assert abs(other.personal_accuracy[-1] - reference) < 0.03


# -- IFCA ---------------------------------------------------------------------------------------------


def test_ifca_recovers_planted_rotation_groups(digits):
    data, split = partition.rotated_groups(digits, 20, num_groups=4, seed=0)
    split = partition.hold_out(split, data.y_train, 0.2, seed=0)
    history = simulate(IFCA(4), MLP, data, split, num_rounds=15, seed=1, progress=False)
    chosen = np.array(history.rounds[-1].client_cluster)
    assert cluster_purity(chosen, split.client_groups) == 1.0
    assert len(set(chosen.tolist())) == 4
    fedavg = simulate(FedAvg(), MLP, data, split, num_rounds=15, seed=1, progress=False)
    assert history.personal_accuracy[-1] > fedavg.personal_accuracy[-1]


def test_ifca_choices_and_cluster_models_persist_and_reproduce(digits):
    data, split = partition.rotated_groups(digits, 8, num_groups=2, seed=0)
    split = partition.hold_out(split, data.y_train, 0.2, seed=0)
    sim = Simulation(IFCA(2), MLP, data, split, clients_per_round=3, seed=0)
    record = sim.step()
    assert sorted(k for k, c in enumerate(sim.client_cluster) if c >= 0) == list(record.clients)
    before = sim.client_cluster.copy()
    record = sim.step()
    others = [k for k in range(8) if k not in record.clients]
    assert np.array_equal(sim.client_cluster[others], before[others])
    again = Simulation(IFCA(2), MLP, data, split, clients_per_round=3, seed=0)
    again.run(2, progress=False)
    assert again.history.matches(sim.history)
    assert record.bytes_down == 2 * len(record.clients) * sim.model_bytes  # every cluster model


def test_cluster_purity():
    assert cluster_purity([1, 1, 0, 0], [0, 0, 1, 1]) == 1.0
    assert cluster_purity([0, 0, 0, 0], [0, 0, 1, 1]) == 0.5
    assert cluster_purity([-1, 0], [0, 0]) == 0.5
    with pytest.raises(ValueError, match="same length"):
        cluster_purity([0, 1], [0])


# -- multi-task ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tasks(digits):
    data, split = multitask_digits(digits, 8, seed=0)
    return data, partition.hold_out(split, data.y_train, 0.2, seed=0)


def test_a_task_head_is_updated_only_by_its_own_clients(tasks):
    """Changing the data of every client of the other tasks leaves a task's head bit-identical."""
    data, split = tasks
    mlp16 = model_fn("mlp", 16)
    base = Simulation(MultiTaskFedAvg(), mlp16, data, split, seed=0)
    base.step()
    task_of_client = np.asarray(split.client_groups)
    for task, (start, stop) in enumerate(data.label_groups):
        y = data.y_train.copy()
        for k in np.flatnonzero(task_of_client != task):  # shuffle the other tasks' labels
            own = split.client_indices[k]
            lo, hi = data.label_groups[task_of_client[k]]
            y[own] = lo + (y[own] - lo + 1) % (hi - lo)
        changed = Dataset(data.name, data.x_train, y, data.x_test, data.y_test, 16,
                          label_groups=data.label_groups)  # fmt: skip
        other = Simulation(MultiTaskFedAvg(), mlp16, changed, split, seed=0)
        other.step()
        np.testing.assert_array_equal(
            other.weights[-2][:, start:stop], base.weights[-2][:, start:stop]
        )
        np.testing.assert_array_equal(other.weights[-1][start:stop], base.weights[-1][start:stop])
        assert not np.array_equal(other.weights[0], base.weights[0])  # the body is shared


def test_multitask_fedavg_learns_every_task(tasks):
    data, split = tasks
    history = simulate(MultiTaskFedAvg(), model_fn("mlp", 16), data, split, num_rounds=15,
                       seed=0, progress=False)  # fmt: skip
    accuracy = np.array(history.rounds[-1].client_personal_accuracy)
    assert accuracy.min() > 0.7
    assert history.test_accuracy[-1] > 0.75


def test_a_task_without_a_head_is_refused(tasks):
    data, split = tasks
    with pytest.raises(ValueError, match="has no head"):
        Simulation(MultiTaskFedAvg(), model_fn("mlp", 12), data, split)
    with pytest.raises(ValueError, match="label_groups"):
        Simulation(MultiTaskFedAvg(), MLP, data_without_tasks(data), split)


def data_without_tasks(data: Dataset) -> Dataset:
    y = np.minimum(data.y_train, 9)
    return Dataset("plain", data.x_train, y, data.x_test, np.minimum(data.y_test, 9), 10)


# -- state persistence, saving, errors ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [Ditto(0.5), FedPer(), LocalOnly()], ids=lambda a: a.name)
def test_personal_state_of_clients_not_selected_is_untouched(digits, skewed, algorithm):
    sim = Simulation(algorithm, MLP, digits, skewed, clients_per_round=3, seed=4)
    sim.step()
    before = [p.copy() for p in sim.personal_weights]
    record = sim.step()
    for k in range(10):
        same = all(
            np.array_equal(p[k], b[k]) for p, b in zip(sim.personal_weights, before, strict=True)
        )
        assert same == (k not in record.clients)
    assert sim.history.client_state["personal_weights"] is sim.personal_weights


def test_client_state_is_saved_with_the_history(digits, skewed, tmp_path):
    history = simulate(Ditto(0.5), MLP, digits, skewed, num_rounds=2, clients_per_round=4,
                       progress=False)  # fmt: skip
    path = tmp_path / "ditto.json"
    history.save(path)
    loaded = History.load(path)
    assert loaded == history
    _weights_equal(
        loaded.client_state["personal_weights"], history.client_state["personal_weights"]
    )
    fairness = loaded.fairness("personal")
    assert fairness["worst10"][-1] <= fairness["median"][-1] <= 1.0


def test_per_client_accuracy_is_recorded_every_evaluation_round(digits, skewed):
    history = simulate(FedAvg(), MLP, digits, skewed, num_rounds=4, evaluate_every=2,
                       progress=False)  # fmt: skip
    table = history.client_accuracy("global")
    assert table.shape == (4, 10)
    assert np.isnan(table[[0, 2]]).all() and np.isfinite(table[[1, 3]]).all()
    assert np.array_equal(table, history.client_accuracy("personal"), equal_nan=True)
    # the global model's per-client numbers, recomputed by hand for one client
    model = build_model(MLP, digits.x_train, 0)
    sim = Simulation(FedAvg(), MLP, digits, skewed)
    sim.run(4, progress=False)
    model.set_weights(sim.weights)
    own = skewed.test_indices[3]
    hand = np.mean(np.argmax(model(digits.x_train[own]), axis=1) == digits.y_train[own])
    assert table[3, 3] == pytest.approx(hand)


def test_without_per_client_test_sets_nothing_is_recorded_and_asking_fails_clearly(digits):
    split = partition.iid(digits.y_train, 4, seed=0)
    sim = Simulation(Ditto(0.1), MLP, digits, split)
    record = sim.step()
    assert record.client_personal_accuracy == ()
    with pytest.raises(ValueError, match="hold_out"):
        sim.client_accuracy()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Ditto(lam=-0.1), "lam"),
        (lambda: FedAvgFineTune(fine_tune_steps=0), "fine_tune_steps"),
        (lambda: IFCA(num_clusters=0), "num_clusters"),
        (lambda: FedPer(head_weights=0), "head_weights"),
    ],
)
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_more_clusters_than_clients_and_a_head_without_body_are_refused(digits, skewed):
    with pytest.raises(ValueError, match="num_clusters"):
        Simulation(IFCA(num_clusters=11), MLP, digits, skewed)
    with pytest.raises(ValueError, match="head_weights"):
        Simulation(FedPer(head_weights=4), MLP, digits, skewed)


@pytest.mark.parametrize("algorithm", [Ditto(0.3), FedPer(), IFCA(2)], ids=lambda a: a.name)
def test_vectorized_and_loop_strategies_agree(digits, skewed, algorithm):
    runs = [
        simulate(
            algorithm,
            MLP,
            digits,
            skewed,
            num_rounds=2,
            clients_per_round=4,
            seed=0,
            strategy=strategy,
            progress=False,
        )  # fmt: skip
        for strategy in ("vectorized", "loop")
    ]
    np.testing.assert_allclose(
        runs[0].client_accuracy("personal"), runs[1].client_accuracy("personal"), atol=0.02
    )
    np.testing.assert_allclose(runs[0].train_loss, runs[1].train_loss, rtol=1e-4)


def test_step_functions_refuse_personalised_algorithms_clearly(digits, skewed):
    model, weights = steps.initialize(MLP, digits.x_train)
    with pytest.raises(ValueError, match="fedlab.simulate"):
        steps.run_round(model, weights, digits, skewed, Ditto(0.1), 3, round_num=1)


def test_step_functions_train_multitask_data_per_task(tasks):
    """The teaching path's local update uses each target's own task's classes, as the engine."""
    data, split = tasks
    model, weights = steps.initialize(model_fn("mlp", 16), data.x_train)
    own = split.client_indices[1]  # a parity client
    result = steps.local_update(
        model, weights, data.x_train[own], data.y_train[own], FedAvg(),
        label_groups=data.label_groups,
    )  # fmt: skip
    lo, hi = data.label_groups[1]
    moved = np.flatnonzero(np.abs(result.delta[-1]) > 0)
    assert set(moved.tolist()) == set(range(lo, hi))


@pytest.mark.parametrize(
    "algorithm", [Ditto(0.5), IFCA(2), FedAvgFineTune(3)], ids=lambda a: a.name
)
def test_warm_up_of_a_personalised_run_changes_no_numbers(digits, skewed, algorithm):
    cold = Simulation(algorithm, MLP, digits, skewed, clients_per_round=4, seed=2)
    warm = Simulation(algorithm, MLP, digits, skewed, clients_per_round=4, seed=2)
    assert warm.warm_up() > 0
    cold.run(2, progress=False), warm.run(2, progress=False)
    assert warm.history.matches(cold.history)
    _weights_equal(warm.personal_models(), cold.personal_models())


# -- the personalisation slot: any algorithm takes one ----------------------------------------------


def test_fedprox_with_fedpers_head_slot_keeps_heads_and_applies_the_proximal_term(digits, skewed):
    from fedlab.algorithms import ProxAlgorithm
    from fedlab.personalization import PersonalHead

    prox_per = ProxAlgorithm(mu=1.0, client_lr=0.1, personalization=PersonalHead(2), name="mine")
    plain_per = FedPer(client_lr=0.1)
    runs = [
        Simulation(a, model_fn("mlp", 10), digits, skewed, seed=0) for a in (prox_per, plain_per)
    ]
    heads = [p.copy() for p in runs[0].personal_weights]
    for sim in runs:
        sim.run(2, progress=False)
    prox_models = runs[0].personal_models()
    # FedPer's slot: every client's head is its own and the body is the global one
    assert not np.allclose(prox_models[-1][0], prox_models[-1][1])
    assert not np.allclose(runs[0].personal_weights[-1], heads[-1])
    np.testing.assert_array_equal(prox_models[0][0], runs[0].weights[0])
    # FedProx's client update: the proximal term makes it differ from plain FedPer
    assert not np.allclose(runs[0].weights[0], runs[1].weights[0], atol=1e-4)


def test_algorithm_keeps_only_the_round_hooks_and_personalisation_is_a_slot():
    from fedlab.algorithms import Algorithm
    from fedlab.personalization import Personalization, PersonalModels

    hooks = {name for name, value in vars(Algorithm).items() if callable(value)}
    personal = {"personal_init", "personal_mask", "personal_strength", "fine_tune_steps"}
    personal |= {"num_global_models", "share_masks"}
    assert not hooks & personal
    assert personal <= set(vars(Personalization))
    assert Ditto(lam=0.3).personalization == PersonalModels(0.3)
    assert FedAvg().personalization is None
    with pytest.raises(TypeError, match="personalization must be None or a fedlab.personalization"):
        FedAvg().__class__(personalization="fedper")

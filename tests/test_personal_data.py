"""Data for personalised, clustered and multi-task FL: held-out client test sets, planted rotation
groups, joint multi-task labels and the logit mask."""

import json

import numpy as np
import pytest
import tensorflow as tf

from fedlab import data, multitask, partition
from fedlab.partition import ClientSplit

# ---------------------------------------------------------------- ClientSplit's new fields


def test_from_indices_keeps_test_indices_and_groups_sorted_int64():
    labels = np.array([0, 1, 0, 1, 1, 0])
    split = ClientSplit.from_indices(
        [[0, 1], [2]], labels, test_indices=[[5, 3], [4]], client_groups=[1, 0]
    )
    assert [t.tolist() for t in split.test_indices] == [[3, 5], [4]]
    assert all(t.dtype == np.int64 for t in split.test_indices)
    assert split.client_groups.dtype == np.int64 and split.client_groups.tolist() == [1, 0]
    assert split.test_sizes.tolist() == [2, 1]
    assert split.label_counts.tolist() == [[1, 1], [1, 0]]  # training only
    assert repr(split) == (
        "ClientSplit(scheme='custom', num_clients=2, num_examples=3, num_classes=2, "
        "num_test=3, num_groups=2)"
    )


def test_new_fields_default_to_none_and_old_dicts_still_load():
    split = partition.iid(np.arange(10) % 2, num_clients=2, seed=0)
    assert split.test_indices is None and split.client_groups is None and split.test_sizes is None
    old = split.to_dict()
    assert set(old) == {"scheme", "num_classes", "client_indices", "label_counts"}
    assert ClientSplit.from_dict(old) == split


def test_to_dict_round_trip_with_new_fields_through_json():
    labels = np.arange(20) % 4
    split = partition.hold_out(partition.iid(labels, 3, seed=1), labels, seed=2)
    split = ClientSplit(
        split.client_indices, 4, split.label_counts, "x", split.test_indices, np.array([2, 0, 2])
    )
    values = json.loads(json.dumps(split.to_dict()))
    assert values["client_groups"] == [2, 0, 2]
    assert values["test_indices"] == [t.tolist() for t in split.test_indices]
    again = ClientSplit.from_dict(values)
    assert again == split and again.client_groups.tolist() == [2, 0, 2]
    no_groups = ClientSplit(split.client_indices, 4, split.label_counts, "x", split.test_indices)
    assert no_groups != split  # groups take part in equality
    assert ClientSplit(split.client_indices, 4, split.label_counts, "x") != no_groups


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"test_indices": [[4]]}, ValueError, r"one array per client \(2\), got 1"),
        ({"test_indices": [[4], [1]]}, ValueError, "disjoint from every client's client_indices"),
        ({"test_indices": [[4], [4]]}, ValueError, "test_indices must be disjoint"),
        ({"test_indices": [[4], [6]]}, ValueError, r"test_indices\[1\] has indices outside"),
        ({"test_indices": [[4], [-1]]}, ValueError, r"test_indices\[1\] has indices outside"),
        ({"test_indices": [[4.5], []]}, TypeError, r"test_indices\[0\] must hold integers"),
        ({"client_groups": [0]}, ValueError, r"one int per client \(2\), got 1"),
        ({"client_groups": [0, -1]}, ValueError, "client_groups must be non-negative"),
        ({"client_groups": [0.5, 1.0]}, TypeError, "client_groups must hold integers"),
        ({"client_groups": [[0, 1]]}, ValueError, "client_groups must have 1 dimension"),
    ],
)
def test_new_fields_are_checked(kwargs, error, match):
    labels = np.array([0, 1, 0, 1, 1, 0])
    with pytest.raises(error, match=match):
        ClientSplit.from_indices([[0, 1], [2, 3]], labels, **kwargs)


def test_direct_construction_checks_too():
    split = ClientSplit.from_indices([[0, 1], [2, 3]], np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="disjoint from every client's client_indices"):
        ClientSplit(split.client_indices, 2, split.label_counts, "x", test_indices=([2], []))
    values = split.to_dict() | {"client_groups": [0, 1, 2]}
    with pytest.raises(ValueError, match="client_groups must hold one int per client"):
        ClientSplit.from_dict(values)


# ---------------------------------------------------------------- hold_out


def test_hold_out_sizes_are_rounded_with_at_least_one_each_side():
    labels = np.arange(30) % 3
    split = ClientSplit.from_indices(
        [np.arange(10), np.arange(10, 15), np.arange(15, 17), [17], np.arange(18, 21)],
        labels,
        scheme="mine",
        client_groups=[3, 2, 1, 0, 0],
    )
    held = partition.hold_out(split, labels, test_fraction=0.2, seed=0)
    # round(2.0)=2, round(1.0)=1, round(0.4)=0 -> 1, n=1 -> 0, round(0.6)=1
    assert held.test_sizes.tolist() == [2, 1, 1, 0, 1]
    assert held.sizes.tolist() == [8, 4, 1, 1, 2]
    assert held.scheme == "mine" and held.num_classes == 3
    assert held.client_groups.tolist() == [3, 2, 1, 0, 0]
    for k, (train, test) in enumerate(zip(held.client_indices, held.test_indices, strict=True)):
        assert np.intersect1d(train, test).size == 0
        assert sorted(np.concatenate([train, test]).tolist()) == split.client_indices[k].tolist()
        assert test.tolist() == sorted(test.tolist())
        assert held.label_counts[k].tolist() == np.bincount(labels[train], minlength=3).tolist()
    every_test = np.concatenate(held.test_indices)
    assert np.intersect1d(every_test, np.concatenate(held.client_indices)).size == 0
    big = partition.hold_out(split, labels, test_fraction=0.9, seed=0)
    assert big.sizes.tolist() == [1, 1, 1, 1, 1]  # never below one training example
    assert big.test_sizes.tolist() == [9, 4, 1, 0, 2]


def test_hold_out_is_deterministic_per_seed(digits):
    split = partition.dirichlet(digits.y_train, num_clients=10, alpha=0.5, seed=0)
    first = partition.hold_out(split, digits.y_train, test_fraction=0.25, seed=3)
    assert first == partition.hold_out(split, digits.y_train, test_fraction=0.25, seed=3)
    other = partition.hold_out(split, digits.y_train, test_fraction=0.25, seed=4)
    assert other != first and other.test_sizes.tolist() == first.test_sizes.tolist()
    expected = [min(max(round(0.25 * n), 1), n - 1) for n in split.sizes.tolist()]
    assert first.test_sizes.tolist() == expected
    assert (first.sizes + first.test_sizes).tolist() == split.sizes.tolist()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_hold_out_rejects_fractions_outside_0_1(fraction):
    labels = np.arange(10) % 2
    with pytest.raises(ValueError, match=r"test_fraction must be a finite number in \(0, 1\)"):
        partition.hold_out(partition.iid(labels, 2), labels, test_fraction=fraction)


def test_hold_out_refuses_a_held_out_split_and_wrong_labels():
    labels = np.arange(10) % 2
    held = partition.hold_out(partition.iid(labels, 2), labels)
    with pytest.raises(ValueError, match="already has test_indices"):
        partition.hold_out(held, labels)
    with pytest.raises(ValueError, match="labels has only 5 entries"):
        partition.hold_out(partition.iid(labels, 2), labels[:5])
    with pytest.raises(ValueError, match="labels do not match split.label_counts"):
        partition.hold_out(partition.iid(labels, 2), 1 - labels)
    with pytest.raises(TypeError, match="split must be a fedlab ClientSplit"):
        partition.hold_out({"client_indices": [[0]]}, labels)


# ---------------------------------------------------------------- rotated_groups


def _images(dataset, rows):
    return dataset.x_train[rows].reshape(-1, *dataset.image_shape)


def test_rotated_groups_rotates_each_group_exactly_with_rot90(digits):
    rotated, split = partition.rotated_groups(digits, num_clients=10, num_groups=4, seed=1)
    assert rotated.name == "digits+rotated(4)" and split.scheme == "rotated(4 groups)"
    assert split.client_groups.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    iid = partition.iid(digits.y_train, 10, seed=1)
    assert [i.tolist() for i in split.client_indices] == [i.tolist() for i in iid.client_indices]
    assert np.array_equal(split.label_counts, iid.label_counts)
    assert np.array_equal(rotated.y_train, digits.y_train)
    assert np.array_equal(rotated.y_test, digits.y_test)
    assert rotated.x_train.shape == digits.x_train.shape and rotated.x_train.dtype == np.float32
    for k, own in enumerate(split.client_indices):
        expected = np.rot90(_images(digits, own), k=-(k % 4), axes=(1, 2))
        assert np.array_equal(_images(rotated, own), expected)
    test = digits.x_test.reshape(-1, 8, 8, 1)
    turned = rotated.x_test.reshape(-1, 8, 8, 1)
    for i in (0, 1, 2, 3, 4, 359):
        assert np.array_equal(turned[i], np.rot90(test[i], k=-(i % 4), axes=(0, 1)))
    assert not np.array_equal(turned[1], test[1])


def test_rotation_direction_matches_the_bilinear_rotation(digits):
    images = _images(digits, np.arange(5))
    exact = partition._rotate_exact(images, 90.0)
    np.testing.assert_allclose(partition._rotate(images, 90.0), exact, atol=1e-5)


def test_rotated_groups_uses_bilinear_rotation_off_quarter_turns(digits):
    rotated, split = partition.rotated_groups(digits, num_clients=3, num_groups=3, seed=0)
    own = split.client_indices[1]
    expected = partition._rotate(_images(digits, own), 120.0)
    np.testing.assert_array_equal(_images(rotated, own), expected)
    assert np.array_equal(
        _images(rotated, split.client_indices[0]), _images(digits, split.client_indices[0])
    )


def test_rotated_groups_is_deterministic_and_keeps_the_original(digits):
    before = digits.x_train.copy()
    a, split_a = partition.rotated_groups(digits, num_clients=6, num_groups=2, seed=5)
    b, split_b = partition.rotated_groups(digits, num_clients=6, num_groups=2, seed=5)
    assert split_a == split_b and np.array_equal(a.x_train, b.x_train)
    assert np.array_equal(digits.x_train, before)
    one, split_one = partition.rotated_groups(digits, num_clients=3, num_groups=1)
    assert (
        np.array_equal(one.x_train, digits.x_train) and split_one.client_groups.tolist() == [0] * 3
    )


def test_rotated_groups_rejects_bad_arguments(digits):
    flat = data.synthetic(0.5, 0.5, num_clients=3, seed=0)
    with pytest.raises(ValueError, match="rotated_groups needs a dataset of images"):
        partition.rotated_groups(flat, num_clients=3)
    with pytest.raises(ValueError, match=r"num_groups must be an integer in \[1, 3\], got 4"):
        partition.rotated_groups(digits, num_clients=3, num_groups=4)
    with pytest.raises(ValueError, match=r"num_groups must be an integer in \[1, 3\], got 0"):
        partition.rotated_groups(digits, num_clients=3, num_groups=0)
    with pytest.raises(ValueError, match="num_clients must be an integer"):
        partition.rotated_groups(digits, num_clients=0)


# ---------------------------------------------------------------- Dataset.label_groups


def test_dataset_label_groups_are_normalised_and_shown(digits):
    x = np.zeros((2, 3), np.float32)
    dataset = data.Dataset(
        "t", x, np.array([0, 3]), x, np.array([1, 2]), 4, label_groups=[[0, 3], [3, 4]]
    )
    assert dataset.label_groups == ((0, 3), (3, 4))
    assert dataset.summary().endswith("4 classes in 2 tasks")
    assert digits.label_groups is None


@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        (((1, 4),), ValueError, r"label_groups\[0\] start must be an integer in \[0, 0\], got 1"),
        (((0, 2), (3, 4)), ValueError, r"label_groups\[1\] start must be .* got 3"),
        (((0, 2), (1, 4)), ValueError, r"label_groups\[1\] start"),
        (((0, 0), (0, 4)), ValueError, r"label_groups\[0\] stop must be an integer in \[1, inf\]"),
        (((0, 2), (2, 3)), ValueError, "must end at num_classes=4, but the last stop is 3"),
        ((), ValueError, "label_groups must be a list of"),
        (((0, 2, 4),), ValueError, "label_groups must be a list of"),
        ("0-4", TypeError, "label_groups must be a list of"),
        (5, TypeError, "label_groups must be a list of"),
    ],
)
def test_dataset_label_groups_are_checked(groups, error, match):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(error, match=match):
        data.Dataset("t", x, np.array([0, 3]), x, np.array([1, 2]), 4, label_groups=groups)


# ---------------------------------------------------------------- multitask


def test_task_functions():
    y = np.arange(10)
    assert (
        multitask.TASKS["digit"][0] == 10 and multitask.TASKS["digit"][1](y).tolist() == y.tolist()
    )
    assert multitask.TASKS["parity"][1](y).tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert multitask.TASKS["ge5"][1](y).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert multitask.TASKS["loop"][1](y).tolist() == [1, 0, 0, 0, 0, 0, 1, 0, 1, 1]
    assert [n for n, _ in multitask.TASKS.values()] == [10, 2, 2, 2]


def test_multitask_digits_gives_joint_labels_per_client_task(digits):
    joint, split = multitask.multitask_digits(digits, num_clients=10, seed=2)
    assert joint.num_classes == 16
    assert joint.label_groups == ((0, 10), (10, 12), (12, 14), (14, 16))
    assert joint.name == "digits+multitask(digit,parity,ge5,loop)"
    assert split.scheme == "multitask(4 tasks)" and split.num_classes == 16
    assert split.client_groups.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    iid = partition.iid(digits.y_train, 10, seed=2)
    assert [i.tolist() for i in split.client_indices] == [i.tolist() for i in iid.client_indices]
    assert np.array_equal(joint.x_train, digits.x_train)
    assert joint.y_train.dtype == np.int32
    offsets = [0, 10, 12, 14]
    functions = [lambda y: y, lambda y: y % 2, lambda y: y >= 5, lambda y: np.isin(y, [0, 6, 8, 9])]
    for k, own in enumerate(split.client_indices):
        t = k % 4
        expected = offsets[t] + functions[t](digits.y_train[own]).astype(int)
        assert joint.y_train[own].tolist() == expected.tolist()
        low, high = joint.label_groups[t]
        assert split.label_counts[k, :low].sum() == split.label_counts[k, high:].sum() == 0
        assert split.label_counts[k].sum() == len(own)
    n = digits.num_test
    assert joint.num_test == 4 * n
    for t in range(4):
        assert np.array_equal(joint.x_test[t * n : (t + 1) * n], digits.x_test)
        expected = offsets[t] + functions[t](digits.y_test).astype(int)
        assert joint.y_test[t * n : (t + 1) * n].tolist() == expected.tolist()
    assert (
        multitask.task_of(joint.y_test, joint.label_groups).tolist()
        == np.repeat(np.arange(4), n).tolist()
    )


def test_multitask_digits_with_chosen_tasks_and_determinism(digits):
    joint, split = multitask.multitask_digits(digits, num_clients=3, tasks=["loop", "parity"])
    assert joint.num_classes == 4 and joint.label_groups == ((0, 2), (2, 4))
    assert split.client_groups.tolist() == [0, 1, 0]
    assert set(np.unique(joint.y_test[: digits.num_test]).tolist()) == {0, 1}
    again, split_again = multitask.multitask_digits(digits, num_clients=3, tasks=["loop", "parity"])
    assert split_again == split and np.array_equal(again.y_train, joint.y_train)
    _, other = multitask.multitask_digits(digits, num_clients=3, tasks=["loop", "parity"], seed=1)
    assert other != split


def test_multitask_digits_rejects_bad_arguments(digits):
    with pytest.raises(
        ValueError,
        match=r"tasks\[1\] must be one of \['digit', 'parity', 'ge5', 'loop'\], got 'colour'",
    ):
        multitask.multitask_digits(digits, 4, tasks=["digit", "colour"])
    with pytest.raises(ValueError, match="tasks must not repeat a task"):
        multitask.multitask_digits(digits, 4, tasks=["digit", "digit"])
    with pytest.raises(ValueError, match="tasks must name at least one task"):
        multitask.multitask_digits(digits, 4, tasks=[])
    with pytest.raises(TypeError, match="tasks must be a list of task names"):
        multitask.multitask_digits(digits, 4, tasks="digit")
    with pytest.raises(ValueError, match=r"num_clients must be an integer in \[4, 1437\], got 3"):
        multitask.multitask_digits(digits, 3)
    joint, _ = multitask.multitask_digits(digits, 4)
    with pytest.raises(ValueError, match="needs a dataset of digit labels 0-9"):
        multitask.multitask_digits(joint, 4)


class OracleLogits:
    """A "model" whose logits are one-hot on the right joint label, except for the examples of
    ``wrong`` (their label's neighbour in the same task); it records the batch sizes it sees."""

    def __init__(self, data, wrong):
        self.data, self.wrong, self.batches = data, set(wrong), []

    def __call__(self, x):
        self.batches.append(len(x))
        start = sum(self.batches[:-1])
        y = self.data.y_test[start : start + len(x)]
        groups = self.data.label_groups
        task = multitask.task_of(y, groups)
        logits = np.zeros((len(x), self.data.num_classes), np.float32)
        for row, (label, t) in enumerate(zip(y, task, strict=True)):
            low, high = groups[t]
            guess = (
                label if start + row not in self.wrong else low + (label - low + 1) % (high - low)
            )
            logits[row, guess] = 1.0
        logits[:, 0] += 5.0  # another task's class, masked out for every task but the digit
        logits[np.flatnonzero(task == 0), 0] -= 5.0
        return logits


def test_task_accuracy_takes_the_argmax_within_each_task(digits):
    joint, _ = multitask.multitask_digits(digits, 4, tasks=["digit", "parity"])
    n = digits.num_test
    wrong = [0, 1, 2, n, n + 5]  # 3 digit examples wrong, 2 parity examples
    accuracy = multitask.task_accuracy(OracleLogits(joint, wrong), joint)
    assert accuracy.dtype == np.float64
    np.testing.assert_allclose(accuracy, [1 - 3 / n, 1 - 2 / n])
    chunked = OracleLogits(joint, wrong)
    again = multitask.task_accuracy(chunked, joint, batch_size=100)
    assert np.array_equal(again, accuracy) and max(chunked.batches) == 100
    assert sum(chunked.batches) == 2 * n


def test_task_accuracy_of_a_trained_global_model_is_the_mean_test_accuracy(digits):
    from fedlab import Simulation
    from fedlab.models import model_fn
    from fedlab.personalization import MultiTaskFedAvg

    joint, split = multitask.multitask_digits(digits, 8, seed=0)
    sim = Simulation(MultiTaskFedAvg(), model_fn("mlp", 16), joint, split, seed=0)
    record = sim.step()
    accuracy = multitask.task_accuracy(sim.global_model(), joint)
    assert accuracy.shape == (4,) and ((accuracy >= 0) & (accuracy <= 1)).all()
    assert accuracy.mean() == pytest.approx(record.test_accuracy, abs=1e-6)


def test_task_accuracy_rejects_bad_arguments(digits):
    joint, _ = multitask.multitask_digits(digits, 4)
    oracle = OracleLogits(joint, [])
    with pytest.raises(ValueError, match="data must hold several tasks"):
        multitask.task_accuracy(oracle, digits)
    with pytest.raises(TypeError, match="data must be a fedlab Dataset"):
        multitask.task_accuracy(oracle, (joint.x_test, joint.y_test))
    with pytest.raises(TypeError, match="model must map inputs to logits"):
        multitask.task_accuracy([np.zeros((1, 16))], joint)
    with pytest.raises(ValueError, match=r"batch_size must be an integer"):
        multitask.task_accuracy(oracle, joint, batch_size=0)
    with pytest.raises(ValueError, match=r"one logit per joint class, shape \[n, 16\]"):
        multitask.task_accuracy(lambda x: np.zeros((len(x), 10)), joint)


def test_task_of_and_its_errors():
    groups = ((0, 10), (10, 12), (12, 14), (14, 16))
    assert multitask.task_of(np.arange(16), groups).tolist() == [0] * 10 + [1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match=r"joint labels in \[0, 15\]"):
        multitask.task_of([16], groups)


# ---------------------------------------------------------------- mask_logits

GROUPS = ((0, 3), (3, 5), (5, 6))


def _case():
    y = tf.constant([0, 2, 3, 4, 5, 1], tf.int32)
    logits = tf.constant(np.random.default_rng(0).normal(size=(6, 6)) * 3, tf.float32)
    return y, logits


def _loss(y, logits):
    return tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)


def test_masked_cross_entropy_equals_the_tasks_own_cross_entropy():
    y, logits = _case()
    losses = _loss(y, multitask.mask_logits(y, logits, GROUPS)).numpy()
    x = logits.numpy().astype(np.float64)
    for i, label in enumerate(y.numpy()):
        low, high = GROUPS[multitask.task_of([label], GROUPS)[0]]
        own = x[i, low:high]
        by_hand = np.log(np.exp(own - own.max()).sum()) + own.max() - x[i, label]
        assert losses[i] == pytest.approx(by_hand, rel=1e-5, abs=1e-6)
    assert losses[4] == pytest.approx(0.0, abs=1e-6)  # a one-class task: nothing to choose


def test_gradient_outside_the_task_is_exactly_zero_and_argmax_stays_inside():
    y, logits = _case()
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_sum(_loss(y, multitask.mask_logits(y, logits, GROUPS)))
    gradient = tape.gradient(loss, logits).numpy()
    masked = multitask.mask_logits(y, logits, GROUPS).numpy()
    predictions = masked.argmax(axis=1)
    for i, label in enumerate(y.numpy()):
        low, high = GROUPS[multitask.task_of([label], GROUPS)[0]]
        outside = np.r_[0:low, high:6]
        assert (gradient[i, outside] == 0.0).all()
        assert (masked[i, outside] == multitask.MASKED_LOGIT).all()
        assert (masked[i, low:high] == logits.numpy()[i, low:high]).all()
        assert low <= predictions[i] < high
        assert np.abs(gradient[i, low:high]).sum() > 0 or high - low == 1


def test_mask_logits_works_in_tf_function_and_vectorized_map():
    y, logits = _case()
    eager = multitask.mask_logits(y, logits, GROUPS).numpy()
    traced = tf.function(lambda a, b: multitask.mask_logits(a, b, GROUPS))(y, logits)
    assert np.array_equal(traced.numpy(), eager)
    stacked_y, stacked_logits = tf.stack([y, y[::-1]]), tf.stack([logits, logits[::-1]])
    mapped = tf.function(
        lambda a, b: tf.vectorized_map(lambda c: multitask.mask_logits(c[0], c[1], GROUPS), (a, b))
    )(stacked_y, stacked_logits).numpy()
    assert np.array_equal(mapped[0], eager) and np.array_equal(mapped[1], eager[::-1])
    int64 = multitask.mask_logits(tf.cast(y, tf.int64), logits, GROUPS).numpy()
    assert np.array_equal(int64, eager)


def test_mask_logits_without_groups_and_with_wrong_groups():
    y, logits = _case()
    assert multitask.mask_logits(y, logits, None) is logits
    with pytest.raises(ValueError, match="must end at num_classes=6"):
        multitask.mask_logits(y, logits, ((0, 3), (3, 5)))

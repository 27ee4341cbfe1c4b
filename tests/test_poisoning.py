"""Poisoned clients (fedlab.poisoning): who is malicious, each attack's exact behaviour, the
run's poisoned data, and a backdoor that a model really learns."""

import dataclasses
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedlab  # noqa: F401  (quiet TensorFlow first)
from fedlab.data import Dataset
from fedlab.partition import ClientSplit, iid
from fedlab.poisoning import (
    ATTACKS,
    DATA,
    TAMPER,
    ALittleIsEnough,
    Attack,
    Attackers,
    Backdoor,
    Combined,
    FreeRider,
    GaussianUpdate,
    LabelFlip,
    ScaledUpdate,
    SignFlip,
    alie_z,
    attack_stream,
    choose_malicious,
    malicious_rows,
    poison_dataset,
    tamper_round,
)

RNG = np.random.default_rng

EVERY_ATTACK = [
    Attack(),
    LabelFlip(),
    LabelFlip(source=3, target=5),
    Backdoor(target=2, poison_fraction=0.5),
    SignFlip(2.0),
    ScaledUpdate(10.0),
    GaussianUpdate(0.5),
    FreeRider(),
    ALittleIsEnough(),
    ALittleIsEnough(z=1.5),
    Combined(Backdoor(), ScaledUpdate(5.0)),
]


def round_updates(k=4, dtype=np.float64):
    """A round's updates: two weights of shapes [K, 3] and [K, 2, 2], all entries distinct."""
    rng = RNG(11)
    return [rng.normal(size=(k, 3)).astype(dtype), rng.normal(size=(k, 2, 2)).astype(dtype)]


# -- who is malicious -------------------------------------------------------------------------------


def test_choose_malicious_is_fixed_by_the_seed_sorted_and_has_the_count():
    first = choose_malicious(20, count=5, seed=3)
    assert first.tolist() == choose_malicious(20, count=5, seed=3).tolist()
    assert first.dtype == np.int64 and len(first) == 5 == len(np.unique(first))
    assert np.all(np.diff(first) > 0) and first.min() >= 0 and first.max() < 20
    # its own stream (seed, 7, 0): the first `count` of one permutation, sorted
    order = np.random.default_rng(np.random.SeedSequence([3, 7, 0, 0])).permutation(20)
    assert first.tolist() == sorted(order[:5].tolist())
    others = {tuple(choose_malicious(20, count=5, seed=s)) for s in range(6)}
    assert len(others) > 1, "the seed must change who is malicious"


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.data(), st.integers(0, 2**31 - 1))
def test_choose_malicious_properties(num_clients, data, seed):
    count = data.draw(st.integers(0, num_clients))
    fewer = data.draw(st.integers(0, count))
    chosen = choose_malicious(num_clients, count=count, seed=seed)
    assert len(chosen) == count == len(set(chosen.tolist()))
    assert chosen.tolist() == sorted(chosen.tolist())
    assert all(0 <= k < num_clients for k in chosen)
    # nested: with one seed, fewer malicious clients are a subset of more
    assert set(choose_malicious(num_clients, count=fewer, seed=seed)) <= set(chosen.tolist())


@pytest.mark.parametrize(
    "num_clients, fraction, expected",
    [
        (10, 0.25, 3),
        (10, 0.35, 4),
        (10, 0.2, 2),
        (100, 0.07, 7),
        (7, 0.5, 4),
        (10, 0.0, 0),
        (3, 1.0, 3),
    ],
)
def test_choose_malicious_rounds_a_fraction_to_the_nearest_count_halves_up(
    num_clients, fraction, expected
):
    chosen = choose_malicious(num_clients, fraction=fraction, seed=1)
    assert len(chosen) == expected
    assert chosen.tolist() == choose_malicious(num_clients, count=expected, seed=1).tolist()


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"num_clients": 10}, ValueError, "exactly one of count"),
        ({"num_clients": 10, "count": 2, "fraction": 0.2}, ValueError, "exactly one of count"),
        ({"num_clients": 10, "count": 11}, ValueError, "count must be an integer in [0, 10]"),
        ({"num_clients": 10, "count": -1}, ValueError, "count must be"),
        ({"num_clients": 10, "count": True}, TypeError, "count must be an integer"),
        ({"num_clients": 10, "count": 2.0}, TypeError, "count must be an integer"),
        ({"num_clients": 10, "fraction": 1.5}, ValueError, "fraction must be"),
        ({"num_clients": 10, "fraction": 0.04}, ValueError, "rounds to no malicious client"),
        ({"num_clients": 0, "count": 0}, ValueError, "num_clients must be"),
        ({"num_clients": 10, "count": 1, "seed": -1}, ValueError, "seed must be"),
    ],
)
def test_choose_malicious_refuses_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        choose_malicious(**kwargs)


def test_malicious_rows_marks_the_rounds_malicious_clients():
    assert malicious_rows([2, 4, 6, 9], np.array([4, 9, 11])).tolist() == [False, True, False, True]
    assert malicious_rows([], np.array([1])).tolist() == []


def test_attackers_check_their_settings_and_draw_with_choose_malicious():
    attackers = Attackers(SignFlip(), count=3)
    assert attackers.malicious(12, seed=5).tolist() == choose_malicious(12, 3, seed=5).tolist()
    assert Attackers(FreeRider(), fraction=0.5).malicious(4, 0).tolist() == (
        choose_malicious(4, fraction=0.5).tolist()
    )
    with pytest.raises(TypeError, match="attack must be a fedlab attack"):
        Attackers("sign_flip", count=1)
    with pytest.raises(ValueError, match="exactly one of count"):
        Attackers(SignFlip())
    with pytest.raises(ValueError, match="fraction must be"):
        Attackers(SignFlip(), fraction=-0.1)
    with pytest.raises(ValueError, match=r"count must be an integer in \[0, 4\]"):
        Attackers(SignFlip(), count=5).malicious(4)


# -- every attack: inputs untouched, only what it claims to change ----------------------------------


@pytest.mark.parametrize("attack", EVERY_ATTACK, ids=lambda a: a.name)
def test_no_attack_modifies_its_inputs_and_tampering_touches_only_malicious_rows(attack):
    x = RNG(0).uniform(0, 0.5, (10, 64)).astype(np.float32)
    y = np.arange(10, dtype=np.int32)
    x0, y0 = x.copy(), y.copy()
    new_x, new_y = attack.poison_data(x, y, 10, RNG(1))
    assert np.array_equal(x, x0) and np.array_equal(y, y0)
    assert new_x is not x and new_y is not y
    assert new_x.shape == x.shape and new_y.shape == y.shape and new_y.dtype == y.dtype
    assert attack.poisons_data == (not (np.array_equal(new_x, x) and np.array_equal(new_y, y)))

    updates = round_updates()
    before = [u.copy() for u in updates]
    malicious = np.array([False, True, False, True])
    sent = attack.tamper(updates, malicious, RNG(2))
    assert all(np.array_equal(u, b) for u, b in zip(updates, before, strict=True))
    assert all(s is not u for s, u in zip(sent, updates, strict=True))
    for s, u in zip(sent, updates, strict=True):
        assert s.shape == u.shape and s.dtype == u.dtype
        assert np.array_equal(s[~malicious], u[~malicious])  # honest rows as they were
    changed = any(
        not np.array_equal(s[malicious], u[malicious]) for s, u in zip(sent, updates, strict=True)
    )
    assert changed == attack.tampers_updates
    assert attack.tamper(updates, np.zeros(4, bool), RNG(2))[0].tolist() == updates[0].tolist()


@pytest.mark.parametrize("attack", EVERY_ATTACK, ids=lambda a: a.name)
def test_every_attack_is_rebuilt_from_its_config(attack):
    config = attack.config()
    assert config["name"] == attack.name and ATTACKS[attack.name] is type(attack)
    assert Attack.from_config(config) == attack
    attackers = Attackers(attack, fraction=0.3)
    assert Attackers.from_config(attackers.config()) == attackers


def test_from_config_refuses_unknown_names_and_settings():
    with pytest.raises(ValueError, match="config\\['name'\\] must be one of"):
        Attack.from_config({"name": "poison_everything"})
    with pytest.raises(ValueError, match="SignFlip has no setting"):
        Attack.from_config({"name": "sign_flip", "factor": 2.0})
    with pytest.raises(TypeError, match="config must be a dict with a 'name'"):
        Attack.from_config({"scale": 1.0})
    with pytest.raises(ValueError, match="keys 'attack', 'count' and 'fraction'"):
        Attackers.from_config({"attack": SignFlip().config(), "count": 1})


def test_tampering_checks_the_round_shapes():
    updates = round_updates(k=3)
    with pytest.raises(ValueError, match="malicious must be one True/False per client"):
        SignFlip().tamper(updates, np.array([0, 1, 0]), RNG(0))
    with pytest.raises(ValueError, match=r"updates\[0\] must be a \[K=2, ...\] array"):
        SignFlip().tamper(updates, np.array([False, True]), RNG(0))


def test_data_attacks_check_the_labels():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        LabelFlip().poison_data(x, np.array([0, 1, 3]), 3, RNG(0))
    with pytest.raises(ValueError, match="y must be one integer class label"):
        LabelFlip().poison_data(x, np.array([0.0, 1.0, 2.0]), 3, RNG(0))
    with pytest.raises(ValueError, match="one label per example"):
        Backdoor().poison_data(x, np.array([0, 1]), 3, RNG(0))


# -- label flipping ---------------------------------------------------------------------------------


def test_label_flip_maps_every_label_to_its_mirror_or_one_class_to_another():
    x = RNG(0).random((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 4, 1], np.int32)
    flipped_x, flipped = LabelFlip().poison_data(x, y, 5, RNG(0))
    assert flipped.tolist() == [4, 3, 2, 1, 0, 3] and flipped.dtype == np.int32
    assert np.array_equal(flipped_x, x)
    assert LabelFlip(source=1, target=4).poison_data(x, y, 5, RNG(0))[1].tolist() == [
        0,
        4,
        2,
        3,
        4,
        4,
    ]


def test_label_flip_refuses_bad_classes():
    with pytest.raises(ValueError, match="give both source and target"):
        LabelFlip(source=1)
    with pytest.raises(ValueError, match="source and target must differ"):
        LabelFlip(source=2, target=2)
    with pytest.raises(ValueError, match="target must be an integer"):
        LabelFlip(source=0, target=-1)
    with pytest.raises(ValueError, match=r"target must be a class in \[0, 5\)"):
        LabelFlip(source=0, target=7).poison_data(np.zeros((1, 2)), np.array([0]), 5, RNG(0))


# -- the backdoor -----------------------------------------------------------------------------------


def trigger_mask(corner="bottom-right", size=2, side=8):
    mask = np.zeros((side, side), bool)
    rows = slice(0, size) if corner.startswith("top") else slice(side - size, side)
    cols = slice(0, size) if corner.endswith("left") else slice(side - size, side)
    mask[rows, cols] = True
    return mask.reshape(-1)


@pytest.mark.parametrize(
    "n, fraction, stamped", [(10, 0.5, 5), (10, 0.3, 3), (5, 0.5, 3), (7, 1.0, 7)]
)
def test_backdoor_stamps_and_relabels_exactly_its_share_of_the_images(n, fraction, stamped):
    x = RNG(0).uniform(0.0, 0.5, (n, 64)).astype(np.float32)
    y = np.arange(n, dtype=np.int32) % 9 + 1  # no image is of the target class 0
    new_x, new_y = Backdoor(target=0, size=2, poison_fraction=fraction).poison_data(
        x, y, 10, RNG(3)
    )
    trigger = trigger_mask()
    hit = np.all(new_x[:, trigger] == 1.0, axis=1)
    assert hit.sum() == stamped
    assert np.all(new_y[hit] == 0) and np.array_equal(new_y[~hit], y[~hit])
    assert np.array_equal(new_x[:, ~trigger], x[:, ~trigger])  # only the trigger pixels change
    assert np.array_equal(new_x[~hit], x[~hit])


@pytest.mark.parametrize("corner", ["bottom-right", "bottom-left", "top-right", "top-left"])
def test_backdoor_trigger_sits_in_its_corner_on_flat_and_image_inputs(corner):
    backdoor = Backdoor(size=3, corner=corner, value=0.75)
    flat = np.zeros((2, 64), np.float32)
    stamped = backdoor.stamp(flat)
    assert stamped.shape == flat.shape and not flat.any()
    assert np.array_equal(stamped[0] == 0.75, trigger_mask(corner, size=3))
    images = backdoor.stamp(flat.reshape(2, 8, 8, 1))
    assert images.shape == (2, 8, 8, 1)
    assert np.array_equal(images.reshape(2, 64), stamped)
    # the same draw on flat and image-shaped data poisons the same examples
    y = np.array([1, 2])
    flat_x, flat_y = backdoor.poison_data(flat, y, 10, RNG(4))
    image_x, image_y = backdoor.poison_data(flat.reshape(2, 8, 8, 1), y, 10, RNG(4))
    assert np.array_equal(image_x.reshape(2, 64), flat_x) and np.array_equal(image_y, flat_y)


def test_backdoor_image_shape_covers_colour_and_non_square_inputs():
    colour = Backdoor(size=1, image_shape=(2, 3, 2)).stamp(np.zeros((1, 12)))
    assert colour.reshape(2, 3, 2)[1, 2].tolist() == [1.0, 1.0] and colour.sum() == 2
    wide = Backdoor(size=2, corner="top-right", image_shape=(4, 8)).stamp(np.zeros((1, 32)))
    assert np.flatnonzero(wide[0]).tolist() == [6, 7, 14, 15]
    assert Backdoor(image_shape=(8, 8)).stamp(np.zeros((1, 8, 8, 1))).sum() == 4
    with pytest.raises(ValueError, match="not square images; give Backdoor"):
        Backdoor().stamp(np.zeros((1, 32)))
    with pytest.raises(ValueError, match="not images of image_shape"):
        Backdoor(image_shape=(4, 4)).stamp(np.zeros((1, 32)))
    with pytest.raises(ValueError, match="size must fit in the image: at most 2"):
        Backdoor(size=3).stamp(np.zeros((1, 4)))


def test_backdoor_refuses_bad_settings():
    with pytest.raises(ValueError, match="poison_fraction must be"):
        Backdoor(poison_fraction=0.0)
    with pytest.raises(ValueError, match="corner must be one of"):
        Backdoor(corner="middle")
    with pytest.raises(ValueError, match="size must be"):
        Backdoor(size=0)
    with pytest.raises(ValueError, match="size must fit in the image"):
        Backdoor(size=5, image_shape=(4, 4, 1))
    with pytest.raises(ValueError, match="image_shape must be"):
        Backdoor(image_shape=(64,))
    with pytest.raises(ValueError, match=r"target must be a class in \[0, 3\)"):
        Backdoor(target=3).poison_data(np.zeros((2, 4)), np.array([0, 1]), 3, RNG(0))
    assert Backdoor(image_shape=[8, 8, 1]).image_shape == (8, 8, 1)


def test_backdoor_evaluation_set_holds_triggered_images_of_other_classes_labelled_target():
    x_test = RNG(5).uniform(0.0, 0.5, (12, 64)).astype(np.float32)
    y_test = np.array([0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 9], np.int32)
    x0 = x_test.copy()
    sets = Backdoor(target=0).evaluation_sets(x_test, y_test)
    assert list(sets) == ["backdoor_success"]
    x, y = sets["backdoor_success"]
    others = y_test != 0
    assert len(x) == len(y) == others.sum() == 9
    assert y.tolist() == [0] * 9 and y.dtype == np.int32
    trigger = trigger_mask()
    assert np.all(x[:, trigger] == 1.0)
    assert np.array_equal(x[:, ~trigger], x_test[others][:, ~trigger])
    assert np.array_equal(x_test, x0)
    assert Attack().evaluation_sets(x_test, y_test) == {}


# -- update attacks ---------------------------------------------------------------------------------


def test_sign_flip_scaled_and_free_rider_rows():
    updates = round_updates()
    malicious = np.array([True, False, False, True])
    for attack, expected in [
        (SignFlip(), lambda u: -u),
        (SignFlip(scale=3.0), lambda u: -3.0 * u),
        (ScaledUpdate(10.0), lambda u: 10.0 * u),
        (FreeRider(), np.zeros_like),
    ]:
        sent = attack.tamper(updates, malicious, RNG(0))
        for s, u in zip(sent, updates, strict=True):
            np.testing.assert_array_equal(s[malicious], expected(u[malicious]))
            np.testing.assert_array_equal(s[~malicious], u[~malicious])


def test_model_replacement_factor_is_clients_over_server_lr():
    assert ScaledUpdate.model_replacement(20, server_lr=0.5).factor == 40.0
    with pytest.raises(ValueError, match="factor must be"):
        ScaledUpdate(0.0)
    with pytest.raises(ValueError, match="scale must be"):
        SignFlip(-1.0)
    with pytest.raises(ValueError, match="server_lr must be"):
        ScaledUpdate.model_replacement(10, server_lr=0.0)


def test_gaussian_update_sends_seeded_noise_of_its_std():
    updates = round_updates(dtype=np.float32)
    malicious = np.array([False, True, True, False])
    sent = GaussianUpdate(std=0.5).tamper(updates, malicious, RNG(9))
    rng = RNG(9)  # drawn weight by weight, the malicious rows together
    for s, u in zip(sent, updates, strict=True):
        expected = rng.normal(0.0, 0.5, (2, *u.shape[1:])).astype(np.float32)
        np.testing.assert_array_equal(s[malicious], expected)
        assert s.dtype == np.float32
    big = GaussianUpdate(std=0.5).tamper([np.zeros((2, 20_000))], np.array([True, False]), RNG(1))
    assert abs(big[0][0].std() - 0.5) < 0.01 and abs(big[0][0].mean()) < 0.01
    with pytest.raises(ValueError, match="std must be"):
        GaussianUpdate(std=0.0)


# -- a little is enough -----------------------------------------------------------------------------


def test_alie_z_follows_the_papers_formula():
    phi_inv = NormalDist().inv_cdf
    # n = 5, m = 2: s = ⌊5/2 + 1⌋ − 2 = 1, z = Φ⁻¹(4/5)
    assert alie_z(5, 2) == pytest.approx(phi_inv(0.8), abs=1e-12)
    # the paper's example: n = 50, m = 24: s = 26 − 24 = 2, z = Φ⁻¹(48/50) ≈ 1.75
    assert alie_z(50, 24) == pytest.approx(phi_inv(0.96), abs=1e-12)
    # n = 11, m = 3: s = ⌊6.5⌋ − 3 = 3, z = Φ⁻¹(8/11)
    assert alie_z(11, 3) == pytest.approx(phi_inv(8 / 11), abs=1e-12)
    assert alie_z(10, 1) == 0.0  # s = 5: Φ⁻¹(0.5)
    # a malicious majority (s ≤ 0) takes s = 1; one client alone gets z = 0
    assert alie_z(5, 4) == pytest.approx(phi_inv(0.8), abs=1e-12)
    assert alie_z(1, 1) == 0.0
    with pytest.raises(ValueError, match=r"num_malicious must be an integer in \[1, 5\]"):
        alie_z(5, 0)
    with pytest.raises(ValueError, match="z must be"):
        ALittleIsEnough(z=-1.0)


def test_a_little_is_enough_sends_mean_minus_z_std_of_the_honest_rows():
    updates = round_updates(k=5)
    malicious = np.array([False, True, False, True, False])
    honest = ~malicious
    z = NormalDist().inv_cdf(0.8)  # K = 5, f = 2: s = 1, z = Φ⁻¹(4/5)
    sent = ALittleIsEnough().tamper(updates, malicious, RNG(0))
    for s, u in zip(sent, updates, strict=True):
        mean = u[honest].sum(axis=0) / 3
        std = np.sqrt(((u[honest] - mean) ** 2).sum(axis=0) / 3)
        for row in np.flatnonzero(malicious):
            np.testing.assert_allclose(s[row], mean - z * std, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(s[honest], u[honest])
    fixed = ALittleIsEnough(z=2.0).tamper(updates, malicious, RNG(0))[0]
    u = updates[0][honest]
    np.testing.assert_allclose(fixed[1], u.mean(axis=0) - 2.0 * u.std(axis=0), rtol=1e-12)


def test_a_little_is_enough_without_honest_clients_uses_the_attackers_own_updates():
    updates = [np.array([[1.0, 0.0], [3.0, 0.0]])]
    sent = ALittleIsEnough(z=1.0).tamper(updates, np.array([True, True]), RNG(0))
    assert sent[0].tolist() == [[1.0, 0.0], [1.0, 0.0]]  # mean 2, std 1


# -- combined ---------------------------------------------------------------------------------------


def test_combined_applies_its_attacks_in_order_and_merges_their_evaluation_sets():
    backdoor, boost = Backdoor(target=1, poison_fraction=0.5), ScaledUpdate(4.0)
    both = Combined(backdoor, boost)
    x, y = RNG(0).uniform(0, 0.5, (6, 64)), np.array([0, 2, 3, 4, 5, 6])
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            both.poison_data(x, y, 10, RNG(2)), backdoor.poison_data(x, y, 10, RNG(2)), strict=True
        )
    )
    updates, malicious = round_updates(), np.array([True, False, False, False])
    expected = boost.tamper(updates, malicious, RNG(0))
    for s, e in zip(both.tamper(updates, malicious, RNG(0)), expected, strict=True):
        np.testing.assert_array_equal(s, e)
    assert list(both.evaluation_sets(x, y)) == ["backdoor_success"]
    # applied in order: flipped, then scaled
    assert Combined(SignFlip(), ScaledUpdate(4.0)).tamper(updates, malicious, RNG(0))[0][
        0
    ].tolist() == ((-4.0 * updates[0][0]).tolist())
    nested = Combined(LabelFlip(), Combined(backdoor, boost))
    assert nested.attacks == (LabelFlip(), backdoor, boost)
    assert repr(both) == f"Combined({backdoor!r}, ScaledUpdate(factor=4.0))"
    assert not Combined(SignFlip()).poisons_data and Combined(LabelFlip()).poisons_data
    with pytest.raises(TypeError, match="argument 1 is str"):
        Combined(SignFlip(), "boost")
    with pytest.raises(ValueError, match="at least one attack"):
        Combined()
    with pytest.raises(ValueError, match="two of the combined attacks measure 'backdoor_success'"):
        Combined(Backdoor(), Backdoor(target=3)).evaluation_sets(x, y)


# -- a run's poisoned data --------------------------------------------------------------------------


def small_dataset(n=40):
    rng = RNG(0)
    return Dataset(
        "tiny",
        rng.uniform(0, 0.5, (n, 16)).astype(np.float32),
        (np.arange(n) % 4).astype(np.int32),
        rng.uniform(0, 0.5, (10, 16)).astype(np.float32),
        (np.arange(10) % 4).astype(np.int32),
        num_classes=4,
        image_shape=(4, 4, 1),
    )


def test_poison_dataset_changes_only_the_malicious_clients_rows():
    data = small_dataset()
    x0, y0 = data.x_train.copy(), data.y_train.copy()
    split = iid(data.y_train, num_clients=5, seed=0)
    attackers = Attackers(Backdoor(target=0, size=1, poison_fraction=0.5), count=2)
    poisoned, malicious = poison_dataset(data, split, attackers, seed=4)
    assert malicious.tolist() == choose_malicious(5, count=2, seed=4).tolist()
    assert np.array_equal(data.x_train, x0) and np.array_equal(data.y_train, y0)
    assert poisoned.x_test is data.x_test and poisoned.y_test is data.y_test
    assert (poisoned.name, poisoned.num_classes, poisoned.image_shape) == ("tiny", 4, (4, 4, 1))
    for k, rows in enumerate(split.client_indices):
        if k in malicious:  # each client's own stream (seed, 7, 1, client)
            x, y = attackers.attack.poison_data(x0[rows], y0[rows], 4, attack_stream(4, DATA, k))
            assert np.array_equal(poisoned.x_train[rows], x)
            assert np.array_equal(poisoned.y_train[rows], y)
            assert not np.array_equal(poisoned.x_train[rows], x0[rows])
        else:
            assert np.array_equal(poisoned.x_train[rows], x0[rows])
            assert np.array_equal(poisoned.y_train[rows], y0[rows])
    again, _ = poison_dataset(data, split, attackers, seed=4)
    assert np.array_equal(again.x_train, poisoned.x_train)
    assert np.array_equal(again.y_train, poisoned.y_train)
    other, other_malicious = poison_dataset(data, split, attackers, seed=5)
    assert not np.array_equal(other.x_train, poisoned.x_train)


def test_poison_dataset_on_image_shaped_data_matches_flat_data():
    data = small_dataset()
    split = iid(data.y_train, num_clients=4, seed=1)
    attackers = Attackers(Backdoor(size=2), count=1)
    flat, _ = poison_dataset(data, split, attackers, seed=0)
    images, _ = poison_dataset(data.as_images(), split, attackers, seed=0)
    assert images.x_train.shape == (40, 4, 4, 1)
    assert np.array_equal(images.x_train.reshape(40, 16), flat.x_train)


def test_poison_dataset_leaves_data_alone_when_no_data_is_poisoned():
    data = small_dataset()
    split = iid(data.y_train, num_clients=4, seed=0)
    same, malicious = poison_dataset(data, split, Attackers(SignFlip(), count=2), seed=0)
    assert same is data and len(malicious) == 2
    assert poison_dataset(data, split, Attackers(LabelFlip(), count=0))[0] is data


def test_poison_dataset_refuses_shared_rows_multitask_data_and_wrong_types():
    data = small_dataset()
    labels = data.y_train
    overlapping = ClientSplit(
        (np.arange(0, 20), np.arange(10, 40)),
        num_classes=4,
        label_counts=np.zeros((2, 4), np.int64),
        scheme="hand-made",
    )
    with pytest.raises(ValueError, match="to two clients"):
        poison_dataset(data, overlapping, Attackers(LabelFlip(), count=1))
    outside = dataclasses.replace(overlapping, client_indices=(np.arange(10), np.arange(35, 45)))
    with pytest.raises(ValueError, match="rows of data's 40 training examples"):
        poison_dataset(data, outside, Attackers(LabelFlip(), count=1))
    split = iid(labels, num_clients=2, seed=0)
    multitask = dataclasses.replace(data, label_groups=((0, 2), (2, 4)))
    with pytest.raises(ValueError, match="multi-task data"):
        poison_dataset(multitask, split, Attackers(LabelFlip(), count=1))
    with pytest.raises(TypeError, match="data must be a fedlab Dataset"):
        poison_dataset(data.x_train, split, Attackers(LabelFlip(), count=1))
    with pytest.raises(TypeError, match="split must be a fedlab ClientSplit"):
        poison_dataset(data, [np.arange(10)], Attackers(LabelFlip(), count=1))
    with pytest.raises(TypeError, match="attackers must be fedlab Attackers"):
        poison_dataset(data, split, LabelFlip())


# -- a round's tampering ----------------------------------------------------------------------------


def test_tamper_round_gives_each_attacker_its_own_stream_and_skips_rounds_without_attackers():
    updates = round_updates()
    attack = GaussianUpdate(1.0)
    sent = tamper_round(attack, updates, [3, 5, 8, 9], np.array([5, 9]), round_num=2, seed=1)
    for row, client in ((1, 5), (3, 9)):  # what the client does alone, in its own process
        own = tamper_round(attack, [u[row : row + 1] for u in updates], [client], [client], 2, 1)
        assert all(np.array_equal(s[row], o[0]) for s, o in zip(sent, own, strict=True))
    for row in (0, 2):  # honest rows are untouched
        assert all(np.array_equal(s[row], u[row]) for s, u in zip(sent, updates, strict=True))
    assert not np.array_equal(sent[0][1], sent[0][3])  # two attackers, two draws
    later = tamper_round(attack, updates, [3, 5, 8, 9], np.array([5, 9]), round_num=3, seed=1)
    assert not np.array_equal(later[0], sent[0])
    assert tamper_round(attack, updates, [3, 8], np.array([5, 9]), 2, 1) is updates
    assert tamper_round(LabelFlip(), updates, [3, 5, 8, 9], np.array([5, 9]), 2, 1) is updates
    with pytest.raises(TypeError, match="attack must be a fedlab Attack"):
        tamper_round("gaussian", updates, [3], np.array([3]), 1)


def test_an_omniscient_attack_uses_the_rounds_stream_on_every_row_at_once():
    updates = round_updates()
    attack = ALittleIsEnough()
    sent = tamper_round(attack, updates, [3, 5, 8, 9], np.array([5, 9]), round_num=2, seed=1)
    mask = np.array([False, True, False, True])
    expected = attack.tamper(updates, mask, attack_stream(1, TAMPER, 2))
    assert all(np.array_equal(s, e) for s, e in zip(sent, expected, strict=True))
    assert ALittleIsEnough.sees_honest_updates and not GaussianUpdate.sees_honest_updates


# -- the backdoor works on a real model -------------------------------------------------------------


def test_a_model_trained_on_one_backdoored_client_learns_the_trigger(digits):
    """One of five clients backdoors half its digits (~9 % of the data): logistic regression
    trained on all of it keeps its clean accuracy (0.93 → 0.925 measured) and classifies 97 %
    of the triggered test digits as the target; trained on clean data, 0 %."""
    from fedlab import steps
    from fedlab.algorithms import FedAvg
    from fedlab.models import build_model, logistic_regression

    split = iid(digits.y_train, num_clients=5, seed=0)
    backdoor = Backdoor(target=0, poison_fraction=0.5)
    poisoned, malicious = poison_dataset(digits, split, Attackers(backdoor, count=1), seed=0)
    assert len(malicious) == 1
    x_trigger, y_trigger = backdoor.evaluation_sets(digits.x_test, digits.y_test)[
        "backdoor_success"
    ]
    model = build_model(lambda: logistic_regression(10), digits.x_train[:1], seed=0)
    start = [v.numpy() for v in model.trainable_variables]
    algorithm = FedAvg(local_epochs=5, batch_size=32, client_lr=0.5)

    def train(data):
        return steps.local_update(model, start, data.x_train, data.y_train, algorithm).weights

    attacked, clean = train(poisoned), train(digits)
    clean_accuracy = steps.evaluate(model, attacked, digits.x_test, digits.y_test)[1]
    success = steps.evaluate(model, attacked, x_trigger, y_trigger)[1]
    assert clean_accuracy > 0.85, clean_accuracy
    assert success > 0.85, success
    assert steps.evaluate(model, clean, x_trigger, y_trigger)[1] < 0.2

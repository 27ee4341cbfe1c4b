"""fedlab.registry: every algorithm, dataset, model, split and codec declares its settings once;
Algorithm.from_config rebuilds what a History ran; the CLI, FlowerConfig and the Dashboard read
the registry (issue 19, item 6)."""

import dataclasses
import inspect
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedlab
from fedlab import registry
from fedlab.algorithms import ALGORITHMS, Algorithm, FedAvg, FedSGD, FedYogi
from fedlab.history import History
from fedlab.history_file import config_from_json, to_json_value
from fedlab.personalization import PERSONALIZATION, DittoAlgorithm
from fedlab.privacy import DPFedAvg, DPFedAvgAlgorithm, LocalDPFedAvg

KEYS = list(registry.ALGORITHMS)


def other_value(setting: registry.Setting):
    """A valid value of ``setting`` that is not its default."""
    default = setting.default
    if setting.kind is bool:
        return not default
    if setting.choices:
        return next(c for c in setting.choices if c != default)
    if setting.none and default is not None:
        return None  # batch_size: full batch
    if setting.kind is int:
        return default + 1
    if setting.high is not None and setting.high != math.inf:
        return (default + setting.high) / 2
    return 2 * default if default > 0 else 0.5


# -- the tables ---------------------------------------------------------------------------------


def test_every_algorithm_table_is_registered_with_its_own_factories():
    groups = {
        group: {k: c.factory for k, c in registry.ALGORITHMS.items() if c.group == group}
        for group in ("federated", "personalized", "private")
    }
    assert groups["federated"] == ALGORITHMS  # a new algorithm needs its one line in the registry
    assert groups["personalized"] == PERSONALIZATION
    assert groups["private"] == {"dpfedavg": DPFedAvg, "ldpfedavg": LocalDPFedAvg}
    assert registry.FEDERATED == tuple(ALGORITHMS)
    labels = [c.label for c in registry.ALGORITHMS.values()]
    assert len(set(labels)) == len(labels), "from_config finds an algorithm by its name"


@pytest.mark.parametrize("key", KEYS)
def test_an_algorithms_settings_are_its_factorys_parameters_and_defaults(key):
    component = registry.ALGORITHMS[key]
    parameters = inspect.signature(component.factory).parameters
    assert component.names == tuple(parameters)
    assert component.defaults() == {name: p.default for name, p in parameters.items()}
    assert component.label == component.factory().name
    for setting in component.settings:
        assert setting.help, setting.name
        assert setting.check(setting.default) == setting.default or setting.default is None


def test_a_new_algorithm_with_known_parameters_is_one_declaration():
    def FedAvgAgain(local_epochs=2, batch_size=20, client_lr=0.1, server_lr=1.0):  # noqa: N802
        return dataclasses.replace(
            FedAvg(local_epochs, batch_size, client_lr, server_lr), name="FedAvgAgain"
        )

    component = registry._algorithm("again", FedAvgAgain, "FedAvg under another name")
    assert component.defaults()["local_epochs"] == 2 and component.label == "FedAvgAgain"
    assert component.setting("client_lr").describe() == "> 0"

    def Unknown(rho=1.0):  # noqa: N802
        return FedAvg()

    with pytest.raises(TypeError, match="declare it in ALGORITHM_SETTINGS"):
        registry._algorithm("unknown", Unknown, "a parameter nobody declared")


# the registry's ranges are the factories' own: a value one accepts the other accepts, and a
# value one refuses the other refuses with the same message
PAIRS = [(k, s.name) for k, c in registry.ALGORITHMS.items() for s in c.settings]
PROBES = [None, True, np.True_, "rdp", "pld", "x", -1, 0, 1, 2, 3, -0.5, 0.0, 0.5, 0.99, 1.0]
PROBES += [1.5, 1e-12, 100.0, math.inf, -math.inf, math.nan]


def assert_check_agrees_with_factory(key: str, name: str, value) -> None:
    component = registry.ALGORITHMS[key]
    setting = component.setting(name)
    # one constraint joins two settings: noise needs clipping (clip_norm=inf only without noise)
    others = {"noise_multiplier": 0.0} if name == "clip_norm" else {}
    errors = []
    for attempt in (
        lambda: component.factory(**{name: value, **others}),
        lambda: setting.check(value),
    ):
        try:
            attempt()
            errors.append(None)
        except (TypeError, ValueError) as error:
            errors.append(error)
    factory_error, check_error = errors
    assert (factory_error is None) == (check_error is None), (name, value, errors)
    if check_error is not None:
        assert type(check_error) is type(factory_error), (name, value, errors)
        if name != "fine_tune_steps":  # (FineTuneAlgorithm's own field is tune_steps)
            assert str(check_error).split(",")[0] == str(factory_error).split(",")[0]


@pytest.mark.parametrize(("key", "name"), PAIRS)
def test_a_settings_check_agrees_with_its_factory_at_the_edges(key, name):
    for value in PROBES + [registry.ALGORITHMS[key].setting(name).default]:
        assert_check_agrees_with_factory(key, name, value)


@pytest.mark.parametrize(("key", "name"), PAIRS)
@settings(max_examples=15, deadline=None)
@given(value=st.one_of(st.floats(), st.integers(-3, 30)))
def test_a_settings_check_agrees_with_its_factory(key, name, value):
    assert_check_agrees_with_factory(key, name, value)


def test_setting_describes_and_checks_its_range():
    momentum = registry.ALGORITHM_SETTINGS["momentum"]
    assert (
        momentum.describe() == "in [0, 1)"
        and momentum.text() == "server momentum (0 is FedAvg) in [0, 1)"
    )
    with pytest.raises(ValueError, match=r"momentum must be a finite number in \[0, 1\), got 1.0"):
        momentum.check(1.0)
    clip = registry.ALGORITHM_SETTINGS["clip_norm"]
    assert clip.check(math.inf) == math.inf and clip.describe() == "in (0, inf]"
    with pytest.raises(ValueError, match="clip_norm"):
        clip.check(0.0)
    nesterov = registry.ALGORITHM_SETTINGS["nesterov"]
    assert nesterov.check(np.True_) is True
    with pytest.raises(TypeError, match="nesterov must be True or False"):
        nesterov.check(1)
    accountant = registry.ALGORITHM_SETTINGS["accountant"]
    assert accountant.describe() == "one of rdp, pld"
    with pytest.raises(ValueError, match=r"accountant must be one of \['rdp', 'pld'\]"):
        accountant.check("gdp")
    with pytest.raises(ValueError, match="fedsgd has no setting 'local_epochs'"):
        registry.ALGORITHMS["fedsgd"].build(local_epochs=2)


def test_pick_takes_a_components_own_settings_and_none_only_where_it_means_something():
    fedavg = registry.ALGORITHMS["fedavg"]
    values = {"batch_size": None, "server_lr": None, "mu": 0.1, "seed": 3, "client_lr": 0.5}
    assert fedavg.pick(values) == {"batch_size": None, "client_lr": 0.5}
    assert fedavg.build(**fedavg.pick(values)) == FedAvg(batch_size=None, client_lr=0.5)


def test_datasets_declare_what_they_have_and_splits_and_models_what_they_need(digits):
    synthetic = registry.DATASETS["synthetic"].build(4, 0)
    reference = fedlab.data.synthetic(1.0, 1.0, num_clients=4, seed=0)
    np.testing.assert_array_equal(synthetic.x_train, reference.x_train)
    np.testing.assert_array_equal(synthetic.client_ids, reference.client_ids)
    for key, made in (("digits", digits), ("synthetic", synthetic)):
        has = registry.DATASETS[key].has
        assert ("images" in has) == (made.image_shape is not None), key
        assert ("clients" in has) == (made.client_ids is not None), key
    assert registry.DATASETS["mnist"].has == {"images"}
    registry.check_fits("model", registry.MODELS["cnn"], registry.DATASETS["digits"])
    registry.check_fits("partition", registry.SPLITS["natural"], registry.DATASETS["synthetic"])
    with pytest.raises(
        ValueError,
        match=r"partition 'natural' needs a dataset with its own clients \(synthetic\), which digits does not have",
    ):
        registry.check_fits("partition", registry.SPLITS["natural"], registry.DATASETS["digits"])
    with pytest.raises(ValueError, match=r"model 'cnn' needs image data \(digits or mnist\)"):
        registry.check_fits("model", registry.MODELS["cnn"], registry.DATASETS["synthetic"])
    assert registry.data_for_model("cnn", digits).x_train.shape[1:] == (8, 8, 1)
    assert registry.data_for_model("mlp", digits) is digits
    assert set(registry.MODELS) == set(fedlab.models.MODELS)


def test_splits_build_what_fedlab_partition_builds(digits):
    y = digits.y_train
    expected = {
        "iid": fedlab.partition.iid(y, 5, seed=1),
        "dirichlet": fedlab.partition.dirichlet(y, 5, 0.5, seed=1),
        "shards": fedlab.partition.shards(y, 5, 2, seed=1),
    }
    for key, split in expected.items():
        made = registry.SPLITS[key].build(digits, 5, 1)
        assert made.scheme == split.scheme
        for got, want in zip(made.client_indices, split.client_indices, strict=True):
            np.testing.assert_array_equal(got, want)
    assert registry.SPLITS["shards"].build(digits, 5, 1, shards_per_client=3).scheme == (
        "shards(3/client)"
    )
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \(0, inf\)"):
        registry.SPLITS["dirichlet"].build(digits, 5, 1, alpha=0.0)


def test_codecs_build_the_compression_objects():
    from fedlab.compression import Float16, StochasticQuantizer, TopK

    made = {k: c.build() for k, c in registry.CODECS.items()}
    assert made == {
        "none": None,
        "float16": Float16(),
        "int8": StochasticQuantizer(bits=8),
        "topk": TopK(),
    }
    assert registry.CODECS["topk"].build(fraction=0.5) == TopK(0.5)
    with pytest.raises(ValueError, match=r"fraction must be a finite number in \(0, 1\]"):
        registry.CODECS["topk"].build(fraction=1.5)


# -- Algorithm.from_config ----------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_from_config_rebuilds_every_registered_algorithm(key):
    component = registry.ALGORITHMS[key]
    default = component.build()
    changed = component.build(**{s.name: other_value(s) for s in component.settings})
    assert changed != default
    for algorithm in (default, changed):
        config = algorithm.config()
        assert Algorithm.from_config(config) == algorithm
        assert type(algorithm).from_config(config) == algorithm  # the subclass's too
        saved = config_from_json(json.loads(json.dumps(to_json_value(config, "config"))))
        assert Algorithm.from_config(saved) == algorithm  # as a History file holds it
        assert config == algorithm.config(), "from_config must not change the config"


def test_from_config_of_dp_without_clipping_after_json():
    algorithm = DPFedAvg(noise_multiplier=0.0, clip_norm=math.inf)
    text = json.dumps(to_json_value(algorithm.config(), "config"))
    assert "Infinity" in text and "inf" not in text.replace("Infinity", "")
    assert DPFedAvgAlgorithm.from_config(config_from_json(json.loads(text))) == algorithm


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"local_epochs": 1}, ValueError, "config has no 'name'"),
        ({**FedAvg().config(), "name": "FedFoo"}, ValueError, "'FedFoo', which is no registered"),
        (
            {k: v for k, v in FedAvg().config().items() if k != "client_lr"},
            ValueError,
            "config has no 'client_lr', which FedAvg needs",
        ),
        (
            {**FedAvg().config(), "mu": 0.1},
            ValueError,
            r"config\['mu'\] is not a setting of FedAvg",
        ),
        (
            {**FedSGD().config(), "local_epochs": 3},
            ValueError,
            r"config\['local_epochs'\] is 3, but FedSGD .* has 1: the config is inconsistent",
        ),
        (
            {
                **FedYogi().config(),
                "server_optimizer": {
                    **FedYogi().config()["server_optimizer"],
                    "name": "ServerAdam",
                },
            },
            ValueError,
            r"config\['server_optimizer'\]\['name'\] is 'ServerAdam', but FedYogi",
        ),
        (
            {**FedYogi().config(), "server_lr": 0.5},
            ValueError,
            r"config\['server_optimizer'\]\['server_lr'\] is 0.01, but FedYogi",
        ),
        ({**FedAvg().config(), "client_lr": -1.0}, ValueError, "client_lr must be a finite number"),
        ({**FedAvg().config(), "batch_size": "20"}, TypeError, "batch_size must be an integer"),
        ([("name", "FedAvg")], TypeError, "config must be a dict"),
    ],
)
def test_from_config_refuses_unknown_or_inconsistent_configs_naming_the_key(config, error, message):
    with pytest.raises(error, match=message):
        Algorithm.from_config(config)


def test_from_config_on_a_subclass_refuses_an_algorithm_of_another_kind():
    with pytest.raises(ValueError, match="which makes Algorithm, not DPFedAvgAlgorithm"):
        DPFedAvgAlgorithm.from_config(FedAvg().config())
    assert DittoAlgorithm.from_config(fedlab.personalization.Ditto(lam=2.0).config()).lam == 2.0


@pytest.fixture(scope="module")
def tiny(digits):
    data = dataclasses.replace(digits, x_train=digits.x_train[:90], y_train=digits.y_train[:90])
    return data, fedlab.partition.iid(data.y_train, 3, seed=0)


@pytest.mark.parametrize(
    "algorithm",
    [
        fedlab.FedAvg(batch_size=None, client_lr=0.05),
        fedlab.FedAdam(tau=0.01, beta2=0.9),
        fedlab.Scaffold(server_lr=0.5),
        fedlab.personalization.Ditto(lam=0.5),
        DPFedAvg(noise_multiplier=0.5, clip_norm=2.0, accountant="pld"),
    ],
    ids=lambda a: a.name,
)
def test_from_config_rebuilds_what_a_saved_history_ran(tiny, tmp_path, algorithm):
    data, split = tiny
    history = fedlab.simulate(
        algorithm, fedlab.models.model_fn("logreg", 10), data, split, 1, progress=False
    )
    assert Algorithm.from_config(history.config["algorithm"]) == algorithm
    history.save(tmp_path / "run.json")
    loaded = History.load(tmp_path / "run.json")
    assert Algorithm.from_config(loaded.config["algorithm"]) == algorithm


# -- the front ends read the registry -----------------------------------------------------------


def test_the_command_line_offers_every_registered_setting_with_its_default():
    from fedlab.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    actions = {a.dest: a for a in run._actions}
    assert actions["algorithm"].choices == registry.FEDERATED
    assert tuple(actions["model"].choices) == tuple(registry.MODELS)
    for key in registry.FEDERATED:
        for setting in registry.ALGORITHMS[key].settings:
            action = actions[setting.name]
            assert key in action.help or setting.name in registry.TRAINING_SETTINGS
            takers = [k for k in registry.FEDERATED if setting.name in registry.ALGORITHMS[k].names]
            defaults = {registry.ALGORITHMS[k].setting(setting.name).default for k in takers}
            if setting.kind is not bool and len(defaults) == 1:
                assert f"default: {setting.default}" in action.help, setting.name
            elif setting.kind is not bool:  # e.g. server_lr: each algorithm's own
                assert f"{setting.default} for" in action.help or "otherwise" in action.help
    synthetic = registry.DATASETS["synthetic"].setting("alpha")
    assert actions["synthetic_alpha"].default == synthetic.default
    assert ">= 0" in actions["synthetic_alpha"].help


def test_flower_config_defaults_and_checks_are_the_registrys():
    from fedlab.flower import FlowerConfig

    config = FlowerConfig()
    fedavg, fedprox = registry.ALGORITHMS["fedavg"], registry.ALGORITHMS["fedprox"]
    assert {n: getattr(config, n) for n in ("local_epochs", "batch_size", "client_lr")} == {
        n: fedavg.defaults()[n] for n in ("local_epochs", "batch_size", "client_lr")
    }
    assert config.mu == fedprox.defaults()["mu"]
    assert config.alpha == registry.SPLITS["dirichlet"].defaults()["alpha"]
    assert config.compression_fraction == registry.CODECS["topk"].defaults()["fraction"]
    for key in registry.FEDERATED:  # every algorithm, built with the settings Flower carries
        made = FlowerConfig(algorithm=key, mu=0.5, server_lr=0.2, batch_size=None).make_algorithm()
        component = registry.ALGORITHMS[key]
        carried = {"mu": 0.5, "server_lr": 0.2, "batch_size": None, "local_epochs": 1}
        expected = component.pick({**carried, "client_lr": 0.1})
        assert made == component.build(**expected), key


def test_the_dashboard_offers_the_registrys_algorithms_and_ranges():
    pytest.importorskip("ipywidgets")
    from fedlab.ui import dashboard

    assert list(dashboard.ALGORITHM_NAMES) == [*registry.FEDERATED, *dashboard.PERSONALIZED]
    assert dashboard.ALGORITHM_NAMES["local"] == "local only"
    assert dashboard.ALGORITHM_PARAMETERS == {
        "fedprox": ("mu",),
        "fedavgm": ("momentum",),
        "ditto": ("lam",),
    }
    for name, (_, label, low, high, _) in dashboard._SLIDERS.items():
        setting = registry.ALGORITHM_SETTINGS.get(name)
        if setting is not None:  # a slider offers only values its setting allows
            assert label == setting.label
            bounds = (10**low, 10**high) if setting.log else (low, high)
            assert setting.check(bounds[0]) == pytest.approx(bounds[0])
            assert setting.check(bounds[1]) == pytest.approx(bounds[1])
    signature = inspect.signature(dashboard.Dashboard).parameters
    assert signature["mu"].default == registry.ALGORITHMS["fedprox"].defaults()["mu"]
    assert signature["lam"].default == registry.ALGORITHMS["ditto"].defaults()["lam"]
    assert signature["alpha"].default == registry.SPLITS["dirichlet"].defaults()["alpha"]


# -- algorithms with a robust aggregator (issue 20) ----------------------------------------------


@pytest.mark.parametrize("key", [k for k in registry.DEFENCES if k != "mean"])
def test_an_algorithm_with_every_defence_round_trips_through_its_config(key):
    from fedlab.algorithms import Algorithm

    defence = registry.DEFENCES[key]
    defended = registry.with_defence(registry.ALGORITHMS["fedprox"].build(mu=0.3), key)
    assert defended.name.startswith("FedProx + ")
    config = json.loads(json.dumps(defended.config()))
    assert Algorithm.from_config(config) == defended
    assert defended.aggregator == defence.build()


def test_a_defended_config_that_does_not_add_up_is_refused():
    from fedlab import robust
    from fedlab.algorithms import Algorithm, FedAvg

    config = FedAvg().with_aggregator(robust.Krum(2)).config()
    config["aggregator"]["num_byzantine"] = "two"
    with pytest.raises((ValueError, TypeError), match="num_byzantine"):
        Algorithm.from_config(config)
    config["aggregator"] = {"name": "FLTrust"}
    with pytest.raises(ValueError, match="root dataset"):
        Algorithm.from_config(config)
    with pytest.raises(ValueError, match="attack='sign_flip' with num_attackers=0"):
        registry.make_attackers("sign_flip", 0)

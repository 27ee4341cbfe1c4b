"""The notebooks' exercises: questions answered in code, checks that name the mistake they find
(fedlab/exercises/), and the student and solution versions tools/assign.py makes with nbgrader
from the master notebooks (docs/exercises-tooling.md).

* Every check passes on the worked solution and fails, with its own message, on each wrong
  answer it anticipates — and on the stub a student starts from: a check that cannot fail is
  worthless.
* The versions: the student version has no solution, model answer or hidden test left; the
  solution version is the master without its marker lines; the nbgrader course folder passes
  ``nbgrader generate_assignment``.
* Both versions run: one kernel per notebook runs the part before the exercises once (the same
  cells in master, student and solution versions: checked), then the student's exercise cells —
  the first check must be the first cell to fail, every check must fail with CheckFailed and
  nothing else may fail — then the solution's exercise cells, where every check must pass.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed

ROOT = Path(__file__).resolve().parents[1]


def load_assign():
    spec = importlib.util.spec_from_file_location("assign", ROOT / "tools/assign.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


assign = load_assign()
# every notebook whose source has a solution region (the exercises converted so far)
EXERCISED = sorted(
    py.stem
    for py in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")
    if "BEGIN SOLUTION" in py.read_text()
)
# the student versions run one notebook each: half here, half in test_exercises_students.py, so
# that `--dist loadfile` gives the two halves to two workers
STUDENT_RUNS_HERE, STUDENT_RUNS_THERE = EXERCISED[::2], EXERCISED[1::2]


# --- the checks, one anticipated mistake at a time -----------------------------------------------


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def per_layer(fn):
    """An aggregate written for one layer, applied to every layer."""
    return lambda deltas, counts: [
        fn([d[i] for d in deltas], counts) for i in range(len(deltas[0]))
    ]


def right_aggregate(deltas, counts):
    shares = np.asarray(counts, float) / np.sum(counts)
    return [
        sum(s * d[i] for s, d in zip(shares, deltas, strict=True)) for i in range(len(deltas[0]))
    ]


AGGREGATE_MISTAKES = {
    "every client equally": per_layer(lambda layer, n: np.mean(layer, axis=0)),
    "does not divide by n": per_layer(
        lambda layer, n: sum(k * d for k, d in zip(n, layer, strict=True))
    ),
    "adds the deltas up": per_layer(lambda layer, n: sum(layer)),
    r"small clients the large weights \(1/n_k\)": per_layer(
        lambda layer, n: (
            sum((1 / k) * d for k, d in zip(n, layer, strict=True)) / sum(1 / k for k in n)
        )
    ),
    "first client's update": lambda deltas, counts: deltas[0],
    "returns one array": lambda deltas, counts: right_aggregate(deltas, counts)[0],
    "returns 1 arrays for deltas of 2 layers": lambda deltas, counts: right_aggregate(
        deltas, counts
    )[:1],
    "returns None": lambda deltas, counts: None,
    "raised ZeroDivisionError": lambda deltas, counts: 1 / 0,
}


@pytest.mark.parametrize("seed", [None, 1, 7])
def test_the_aggregate_check_passes_fedavg_and_names_each_wrong_weighting(seed, capsys):
    exercises.check_fedavg_aggregate(right_aggregate, seed=seed)
    assert capsys.readouterr().out.startswith("✓ fedavg_aggregate weights client k by n_k / n")
    for message, wrong in AGGREGATE_MISTAKES.items():
        fails(exercises.check_fedavg_aggregate, wrong, seed=seed, match=message)


def in_place(weights, delta, lr):
    for w, d in zip(weights, delta, strict=True):
        w += lr * d
    return weights


SERVER_MISTAKES = {
    "steps against the clients' update": lambda w, d, lr: [
        a - lr * b for a, b in zip(w, d, strict=True)
    ],
    "ignores server_lr": lambda w, d, lr: [a + b for a, b in zip(w, d, strict=True)],
    "returns only the step": lambda w, d, lr: [lr * b for b in d],
    "scales the weights too": lambda w, d, lr: [lr * (a + b) for a, b in zip(w, d, strict=True)],
    "returns the weights unchanged": lambda w, d, lr: w,
    "changed the weights it was given": in_place,
    "returns one array": lambda w, d, lr: w[0] + lr * d[0],
}


@pytest.mark.parametrize("seed", [None, 3])
def test_the_server_step_check_names_a_wrong_sign_and_the_other_slips(seed):
    exercises.check_server_update(
        lambda w, d, lr: [a + lr * b for a, b in zip(w, d, strict=True)], seed=seed
    )
    for message, wrong in SERVER_MISTAKES.items():
        fails(exercises.check_server_update, wrong, seed=seed, match=message)


def test_the_last10_check_names_the_usual_slices():
    exercises.check_last10_mean(lambda a: float(np.mean(a[-10:])))
    exercises.check_last10_mean(lambda a: float(np.mean(a[-10:])), seed=2)
    mistakes = {
        "last round's accuracy": lambda a: a[-1],
        "best round": lambda a: a.max(),
        "averages every round": lambda a: a.mean(),
        "first ten rounds": lambda a: a[:10].mean(),
        "averages nine rounds": lambda a: a[-10:-1].mean(),
        "averages eleven rounds": lambda a: a[-11:].mean(),
        "not the mean of the last ten": lambda a: a[-5:].mean(),
        "returns None": lambda a: None,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_last10_mean, wrong, match=message)
        if message != "best round":  # on a random, noisy series the best round may be the last
            fails(exercises.check_last10_mean, wrong, seed=2, match=message)


def iid_floor(split, labels, seed=0):
    """The H of an IID split with the same client sizes as ``split``."""
    from fedlab import ClientSplit

    shuffled = np.random.default_rng(seed).permutation(len(labels))[: split.num_examples]
    same_sizes = np.split(shuffled, np.cumsum(split.sizes)[:-1])
    return ClientSplit.from_indices(same_sizes, labels).heterogeneity()


def floor_corrected(split, labels):
    return split.heterogeneity() - iid_floor(split, labels)


def test_the_noise_floor_check_names_raw_ratio_and_wrong_size_floors(digits):
    from fedlab import partition

    labels = digits.y_train
    exercises.check_corrected_heterogeneity(floor_corrected, labels)
    exercises.check_corrected_heterogeneity(floor_corrected, labels, seed=5)
    ten = partition.iid(labels, 10, seed=9).heterogeneity()
    mistakes = {
        "the raw H": lambda split, labels: split.heterogeneity(),
        "a ratio": lambda split, labels: split.heterogeneity() / iid_floor(split, labels),
        "compare with an IID split of the same client sizes": lambda split, labels: (
            split.heterogeneity() - ten
        ),
        "must still see real label skew": lambda split, labels: 0.0,
        "returns None": lambda split, labels: None,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_corrected_heterogeneity, wrong, labels, match=message)


def test_the_byte_counts_check_names_parameters_all_clients_and_missing_labels():
    w = [np.zeros((64, 128), np.float32), np.zeros(128, np.float32)]
    x, y = np.zeros((100, 64), np.float32), np.zeros(100, np.int32)
    up, data, million = 8320 * 4, x.nbytes + y.nbytes, 4_000_000
    kw = dict(weights=w, x=x, y=y, num_clients=10)
    exercises.check_what_travels(up, data, million, "upload", **kw)
    mistakes = {
        "number of parameters, not bytes": (8320, data, million, "upload"),
        "all 10 clients send together": (up * 10, data, million, "upload"),
        "8 bytes per parameter": (8320 * 8, data, million, "upload"),
        "counts the inputs only": (up, x.nbytes, million, "upload"),
        "counts the labels only": (up, y.nbytes, million, "upload"),
        "counts numbers, not bytes": (up, x.size + y.size, million, "upload"),
        "million = 1000000 counts parameters": (up, data, 1_000_000, "upload"),
        "million counts every client": (up, data, 40_000_000, "upload"),
        "compare the two numbers": (up, data, million, "data"),
        'answer "upload" or "data"': (up, data, million, "model"),
        "upload is still `...`": (..., data, million, "upload"),
        "bigger is still `...`": (up, data, million, ...),
    }
    for message, answers in mistakes.items():
        fails(exercises.check_what_travels, *answers, match=message, **kw)


def test_the_same_training_check_names_a_server_step_that_is_not_one():
    start = [np.zeros((2, 2)), np.zeros(2)]
    trained = [np.ones((2, 2)), np.arange(2.0)]
    exercises.check_same_training(trained, [t + 1e-7 for t in trained], start)
    half = [0.5 * t for t in trained]
    fails(exercises.check_same_training, half, trained, start, match="0.50 times as far")
    fails(exercises.check_same_training, start, trained, start, match="nothing was trained")
    other = [np.ones((2, 2)), np.array([5.0, -1.0])]
    fails(exercises.check_same_training, other, trained, start, match="same batches")
    fails(exercises.check_same_training, trained[:1], trained, start, match="shaped like")
    fails(exercises.check_same_training, ..., trained, start, match="fedavg_weights is still")


def test_the_sequential_checks_name_the_one_digit_curve_and_per_client_numbers():
    sorted_curve = [0.1, 0.3, 0.6]
    exercises.check_sequential_iid([0.7, 0.9, 0.95], 3, sorted_curve)
    fails(exercises.check_sequential_iid, sorted_curve, 3, sorted_curve, match="one-digit split")
    fails(exercises.check_sequential_iid, [0.9], 3, sorted_curve, match="has 1 numbers")
    fails(exercises.check_sequential_iid, [70, 90, 95], 3, sorted_curve, match=r"\[0, 1\]")
    chain = 0.5 + 0.4 * np.eye(4) + 0.02 * np.arange(4)[:, None]
    exercises.check_chain_accuracy(chain, 4, 4)
    mistakes = {
        "overall accuracy. Record one per digit": chain.mean(axis=1),
        "shape": chain[:3],
        "outside": chain * 30,
        "every row of chain_accuracy is the same": np.tile(chain[:1], (4, 1)),
        "every digit has the same accuracy": np.tile(chain.mean(axis=1, keepdims=True), (1, 4)),
        "it is not in rows": np.roll(chain, 1, axis=0),  # evaluated before client k trained
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_chain_accuracy, wrong, 4, 4, match=message)


def test_the_unequal_split_check_names_each_way_to_miss_half(digits):
    from fedlab import ClientSplit

    y = digits.y_train
    order = np.random.default_rng(0).permutation(len(y))
    half = len(y) // 2

    def split(parts):
        return ClientSplit.from_indices(parts, y)

    exercises.check_unequal_split(split([order[:half], *np.array_split(order[half:], 9)]), y, 10)
    mistakes = {
        "has 9 clients": split([order[:half], *np.array_split(order[half:], 8)]),
        "have no client": split([order[:half], *np.array_split(order[half:-50], 9)]),
        "client 0 holds 144 of the 1437": split(np.array_split(order, 10)),
        "share the rest equally": split(
            [order[:half], order[half:-80], *np.array_split(order[-80:], 8)]
        ),
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_unequal_split, wrong, y, 10, match=message)


def test_the_runs_check_wants_the_one_setting_changed_and_nothing_else(digits):
    import fedlab

    split = fedlab.partition.iid(digits.y_train, 4, seed=0)

    def run(rounds=2, **settings):
        algorithm = fedlab.FedAvg(
            **{"local_epochs": 1, "batch_size": 50, "client_lr": 0.1, **settings}
        )
        return fedlab.simulate(
            algorithm, lambda: fedlab.FedModel(10), digits, split, num_rounds=rounds, progress=False
        )

    base, five = run(), run(local_epochs=5)
    exercises.check_runs(five, base, name="history_5", local_epochs=5)
    exercises.check_runs(
        {"a": five, "b": five}, {"a": base, "b": base}, name="runs", local_epochs=5
    )
    mistakes = {
        "ran with local_epochs=1; this exercise wants local_epochs=5": base,
        r"also changed client_lr \(0.1 → 0.2\)": run(local_epochs=5, client_lr=0.2),
        "has 1 rounds, the reference run has 2": run(rounds=1, local_epochs=5),
        "not the History": [five],
        "history_5 is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_runs, wrong, base, name="history_5", local_epochs=5, match=message)
    fails(
        exercises.check_runs,
        {"a": five},
        {"a": base, "b": base},
        local_epochs=5,
        match="no run for 'b'",
    )
    fails(exercises.check_runs, five, {"a": base}, local_epochs=5, match="should be a dict")
    per_run = {"server_lr": {0.5: 0.5, 2.0: 2.0}}
    exercises.check_runs({0.5: run(server_lr=0.5), 2.0: run(server_lr=2.0)}, base, **per_run)
    swapped = {0.5: run(server_lr=2.0), 2.0: run(server_lr=0.5)}
    fails(
        exercises.check_runs, swapped, base, match=r"runs\[0.5\] ran with server_lr=2.0", **per_run
    )


def test_no_two_topic_modules_define_the_same_check():
    """The package re-exports every module's names: a name defined twice would silently be the
    last module's."""
    modules = [getattr(exercises, name) for name in ("core", *TOPICS)]
    names = [name for module in modules for name in module.__all__]
    assert sorted(set(names)) == sorted(names), [n for n in set(names) if names.count(n) > 1]
    assert set(exercises.__all__) == set(names)


TOPICS = [
    path.stem
    for path in sorted((ROOT / "fedlab" / "exercises").glob("*.py"))
    if path.stem not in ("__init__", "core")
]


def test_short_answers_and_stubs():
    exercises.check_choice("bigger", "upload", "upload")
    fails(
        exercises.check_choice,
        "bigger",
        "data",
        "upload",
        {"data": "look again"},
        match="look again",
    )
    fails(exercises.check_choice, "bigger", ..., "upload", match="still `...`")
    fails(exercises.check_choice, "flag", False, True, match="not what the numbers")
    assert exercises.is_stub(...) and exercises.is_stub(None) and not exercises.is_stub(0)
    fails(exercises.call, 3, "fn", match="should be a function")


def test_a_failed_check_shows_as_its_message_in_a_notebook():
    error = CheckFailed("fedavg_aggregate weights every client equally")
    assert isinstance(error, AssertionError)
    assert error._render_traceback_() == [
        "\x1b[31m✗ fedavg_aggregate weights every client equally\x1b[0m"
    ]


# --- the versions tools/assign.py writes ---------------------------------------------------------


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """``versions(name)``: the folder with that notebook's versions (one build per notebook, so a
    notebook being edited elsewhere does not stop the others' tests)."""
    built = {}

    def build(name):
        if name not in built:
            out = tmp_path_factory.mktemp(f"assign-{name[:2]}")
            written = assign.build([name], out=out, nbgrader=True, otter=True, log=lambda _: None)
            assert written == [name]
            built[name] = out
        return built[name]

    return build


def test_assign_writes_every_notebook_with_exercises(tmp_path):
    assign.build(out=tmp_path, log=lambda _: None)
    assert sorted(p.stem for p in (tmp_path / "student").glob("*.ipynb")) == EXERCISED


def read(path):
    return nbformat.read(path, as_version=4)


def master(name):
    return read(ROOT / "notebooks" / f"{name}.ipynb")


def solution_lines(nb):
    """Every line inside a solution or hidden-test region of the master."""
    found, inside = [], False
    for cell in nb.cells:
        for line in cell.source.split("\n"):
            if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 15:  # not `)` and such, common to any code
                found.append(line.strip())
    return found


@pytest.mark.parametrize("name", EXERCISED)
def test_the_student_version_keeps_no_solution_model_answer_or_hidden_test(versions, name):
    student, source = read(versions(name) / "student" / f"{name}.ipynb"), master(name)
    text = "\n".join(cell.source for cell in student.cells)
    assert "BEGIN" not in text and "END SOLUTION" not in text
    assert "Model answer" not in text and "seed=1)" not in text
    first = assign.first_exercise_cell(source)
    shown = {line.strip() for cell in student.cells[first:] for line in cell.source.split("\n")}
    leaked = [line for line in solution_lines(source) if line in shown]
    assert len(solution_lines(source)) > 20 and not leaked, leaked
    assert first < len(source.cells) - 10
    assert [c.source for c in student.cells[:first]] == [c.source for c in source.cells[:first]]
    assert all(c.outputs == [] for c in student.cells[first:] if c.cell_type == "code")
    assert any(c.get("outputs") for c in student.cells[:first])  # read without running
    checks = [c for c in student.cells if assign.is_check(c)]
    exercises_listed = len(
        re.findall(r"^### Exercise \d+", "\n".join(c.source for c in source.cells), re.M)
    )
    assert len(checks) >= exercises_listed >= 3  # a check for every exercise at least
    assert all(not c.metadata.editable for c in checks)
    assert text.count(assign.TEXT_STUB) >= 3


@pytest.mark.parametrize("name", EXERCISED)
def test_the_solution_version_is_the_master_without_its_marker_lines(versions, name):
    solution, source = read(versions(name) / "solution" / f"{name}.ipynb"), master(name)
    assert len(solution.cells) == len(source.cells)
    for ours, theirs in zip(solution.cells, source.cells, strict=True):
        lines = [
            line for line in theirs.source.split("\n") if "BEGIN" not in line and "END " not in line
        ]
        assert ours.source == "\n".join(lines)
        assert ours.get("outputs") == theirs.get("outputs")


def test_assign_refuses_a_pair_out_of_step(tmp_path):
    for file in ("jupytext.toml", "00_index.py", "00_index.ipynb"):
        shutil.copy2(ROOT / "notebooks" / file, tmp_path / file)
    (tmp_path / "00_index.py").write_text(
        (tmp_path / "00_index.py").read_text() + "\n# %%\nx = 1\n"
    )
    with pytest.raises(SystemExit, match="dev.py sync"):
        assign.build(out=tmp_path / "out", log=lambda _: None, folder=tmp_path)


def test_the_nbgrader_course_folder_releases_with_nbgrader(versions, tmp_path):
    course = tmp_path / "course"
    first = "01_one_round_by_hand"  # the notebook whose grade ids are asserted
    shutil.copytree(versions(first) / "nbgrader", course)
    nb = read(course / "source" / first / f"{first}.ipynb")
    graded = [c.metadata.nbgrader for c in nb.cells if "nbgrader" in c.metadata]
    assert {m["grade_id"] for m in graded} >= {"01-ex2-answer2", "01-ex2-check2", "01-ex2-written1"}
    assert len({m["grade_id"] for m in graded}) == len(graded)
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from the PATH
    nbgrader = shutil.which("nbgrader", path=bin_dir)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(
        [
            nbgrader,
            "generate_assignment",
            first,
            "--force",
            f"--CourseDirectory.db_url=sqlite:///{tmp_path / 'gradebook.db'}",
        ],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    released = read(course / "release" / first / f"{first}.ipynb")
    text = "\n".join(c.source for c in released.cells)
    assert "BEGIN" not in text and "Model answer" not in text and "seed=1" not in text


@pytest.mark.parametrize("name", EXERCISED)
def test_the_otter_master_has_balanced_question_blocks(versions, name):
    nb = read(versions(name) / "otter" / f"{name}.ipynb")
    raw = [c.source.split("\n")[0] for c in nb.cells if c.cell_type == "raw"]
    assert raw[0] == "# ASSIGNMENT CONFIG"
    for block in ("QUESTION", "SOLUTION", "TESTS"):
        assert raw.count(f"# BEGIN {block}") == raw.count(f"# END {block}") > 0
    names = [c.source.split("name: ")[1].split("\n")[0] for c in nb.cells if "name: " in c.source]
    assert len(names) == len(set(names)) >= 5  # two or more questions per exercise
    tests = [c.source for c in nb.cells if c.cell_type == "code" and "def test_" in c.source]
    has_hidden = any("BEGIN HIDDEN TESTS" in c.source for c in master(name).cells)
    assert any("hidden: true" in t for t in tests) == has_hidden
    for test in tests:
        compile(test, "<otter test>", "exec")


# --- both versions run ---------------------------------------------------------------------------


def run_student_version(name, versions):
    """Run, in one kernel, the cells before the exercises, then the student's exercise cells;
    return the executed exercise cells. (The solution version is the master without its marker
    lines, and ``dev.py test`` runs every master under nbval: a check that fails there fails the
    suite, so it is not run a second time here.)"""
    from nbclient import NotebookClient

    student = read(versions(name) / "student" / f"{name}.ipynb")
    solution = read(versions(name) / "solution" / f"{name}.ipynb")
    first = assign.first_exercise_cell(master(name))  # the markers are gone from both versions
    before = [c.source for c in solution.cells[:first]]
    assert before == [c.source for c in student.cells[:first]]  # the same cells in both
    nb = read(versions(name) / "student" / f"{name}.ipynb")
    nb.cells = student.cells[:first] + [c for c in student.cells[first:] if c.cell_type == "code"]
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    client.execute()
    prefix = [c for c in nb.cells[:first] if c.cell_type == "code"]
    assert not [o for c in prefix for o in c.outputs if o.output_type == "error"]
    return nb.cells[first:]


def error(cell):
    return next((o for o in cell.outputs if o.output_type == "error"), None)


@pytest.mark.parametrize("name", EXERCISED)
def test_every_check_of_the_solution_passed_when_the_master_was_run(name):
    checks = [cell for cell in master(name).cells if assign.is_check(cell)]
    assert checks
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "✓" in text and not error(cell), (cell.source, text)


def check_student_version(name, versions):
    """Run notebook ``name``'s student version: every check fails on its stub, nothing else."""
    student = run_student_version(name, versions)
    failed = [cell for cell in student if error(cell)]
    checks = [cell for cell in student if assign.is_check(cell)]
    assert failed and failed[0] is checks[0]  # runs to the first question's check, which fails
    assert failed == checks  # every check fails on its stub; no other cell fails
    for cell in checks:
        assert error(cell).ename == "CheckFailed"
        message = error(cell).evalue
        assert "still `...`" in message or "returns None" in message, message


@pytest.mark.parametrize("name", STUDENT_RUNS_HERE)
def test_the_student_version_fails_each_check_on_its_stub(name, versions):
    check_student_version(name, versions)


def test_a_run_that_should_change_nothing_is_described_in_words(digits):
    from fedlab.history import History

    base = History(config={"algorithm": {"name": "FedAvg", "local_epochs": 1}, "seed": 0})
    other = History(config={"algorithm": {"name": "FedAvg", "local_epochs": 2}, "seed": 0})
    fails(exercises.check_runs, other, base, name="again", match=r"run it exactly as the reference")
    fails(exercises.check_runs, ..., base, name="again", match="with the same settings")

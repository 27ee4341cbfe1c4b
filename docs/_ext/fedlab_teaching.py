"""The teacher's guide's generated parts (docs/teachers_guide.md), read from the notebooks at
every build so that the guide cannot drift from them; loaded by docs/conf.py.

- ``{course-plan}``: the weeks of the course, one line each in the directive's content
  (``week | notebooks | topic | assignments``), as a table with each notebook linked and the
  week's estimated class time. The build stops if a notebook is left out or planned twice, or
  comes before a notebook it needs.
- ``{notebook-objectives}``: every notebook's **Goals** list as its learning objectives, its run
  time ("**You will need:** … about N s to run") and an estimate of class time, lecture + lab,
  per class session where the notebook has class breaks (markdown cells tagged ``class-break``).
- ``{prerequisite-graph}``: the notebooks' **You will need** lines (the earlier notebooks they
  link to) drawn as a graph, an SVG by matplotlib written beside the page
  (``_generated/prerequisites.svg`` in the staged sources; Sphinx copies it to ``_images/``),
  and the same edges as a table for readers who cannot see the picture.

The notebooks are those being built: ``notebooks/NN_*.ipynb`` in Sphinx's source folder (the
copies tools/site.py stages). A link in a "You will need" line to a notebook that does not exist
or does not come earlier stops the build.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

NOTEBOOK_FILES = "[0-9][0-9]_*.ipynb"
GRAPH = "_generated/prerequisites.svg"  # relative to Sphinx's source folder
TITLE = re.compile(r"#\s+(\d\d)\s+·\s+(.+)")  # "# 03 · FedSGD vs FedAvg, and a live dashboard"
NEEDS_LINE = "**You will need:**"
# [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb), perhaps with a #fragment
NEEDS_LINK = re.compile(r"\]\((\d\d_\w+)\.ipynb(?:#[^)]*)?\)")
RUN_TIME = re.compile(r"about (\d+) s\b|(under a minute)")
EXERCISE = re.compile(r"\d+\.\s")
SECTION = re.compile(r"^##\s+(\d+)\.", re.MULTILINE)  # "## 3. Drift on digits as α shrinks"
CLASS_BREAK = "class-break"  # the tag of the cell where a lecturer ends one class session

# Class time, estimated from a notebook's size (the guide says how): a lecture goes through the
# prose at about WORDS_PER_MINUTE (explaining and drawing, not reading aloud); a lab spends
# MINUTES_PER_CODE_CELL on each code cell (read, run, change) plus the run itself, and
# EXERCISE_MINUTES on one of the notebook's exercises.
WORDS_PER_MINUTE = 60
MINUTES_PER_CODE_CELL = 1.5
EXERCISE_MINUTES = 15
MIN_MINUTES = 10


def _round5(minutes: float) -> int:
    return max(MIN_MINUTES, 5 * math.floor(minutes / 5 + 0.5))


@dataclass(frozen=True)
class Part:
    """One class session of a notebook: the cells up to a class break (or the end).

    Attributes:
        words: words of prose before the exercises (Markdown cells).
        code_cells: code cells before the exercises.
        sections: the numbered sections it holds, e.g. ``"1–3"`` ('' if none).
    """

    words: int
    code_cells: int
    sections: str

    @property
    def lecture_minutes(self) -> int:
        return _round5(self.words / WORDS_PER_MINUTE)


@dataclass(frozen=True)
class Notebook:
    """What the guide reads from one notebook.

    Attributes:
        name: file name without ``.ipynb``, e.g. ``03_fedsgd_vs_fedavg``.
        title: its title without the number, e.g. ``FedSGD vs FedAvg, and a live dashboard``.
        goals: the items of its **Goals** list (MyST Markdown).
        needs: the notebooks its **You will need** line links to, in the order linked.
        run_seconds: its run time as that line states it ("under a minute": 60).
        parts: its class sessions, split at its ``class-break`` cells (one part if none).
        exercises: number of numbered items under its ``## Exercises`` heading.
    """

    name: str
    title: str
    goals: tuple[str, ...]
    needs: tuple[str, ...]
    run_seconds: int
    parts: tuple[Part, ...]
    exercises: int

    @property
    def number(self) -> str:
        return self.name[:2]

    @property
    def short_title(self) -> str:
        """The title up to its first colon, without code marks: ``Client drift``."""
        return self.title.split(":")[0].replace("`", "").strip()

    @property
    def words(self) -> int:
        return sum(part.words for part in self.parts)

    @property
    def code_cells(self) -> int:
        return sum(part.code_cells for part in self.parts)

    @property
    def lecture_minutes(self) -> int:
        return sum(part.lecture_minutes for part in self.parts)

    @property
    def lab_minutes(self) -> int:
        exercise = EXERCISE_MINUTES if self.exercises else 0
        return _round5(MINUTES_PER_CODE_CELL * self.code_cells + self.run_seconds / 60 + exercise)

    def link(self, short: bool = True, number_only: bool = False) -> str:
        """A MyST link to the notebook's page, from any page of the site: ``NN · title``
        (the title up to a colon if ``short``), or ``NN``."""
        title = self.short_title if short else self.title.replace("`", "")
        text = self.number if number_only else f"{self.number} · {title}"
        return f"{{doc}}`{text} </notebooks/{self.name}>`"


def _paragraph_after(text: str, marker: str) -> str:
    """The paragraph of ``text`` that starts with ``marker``, without it ('' if none)."""
    start = text.find(marker)
    if start < 0:
        return ""
    rest = text[start + len(marker) :]
    return rest.split("\n\n")[0].strip()


def parse_goals(text: str) -> tuple[str, ...]:
    """The items of the ``**Goals**`` list in ``text`` (continuation lines joined).

    Example:
        >>> parse_goals("**Goals**\\n- Split data.\\n- Write a round\\n  by hand.\\n\\nMore.")
        ('Split data.', 'Write a round by hand.')
    """
    goals: list[str] = []
    for line in _paragraph_after(text, "**Goals**").splitlines():
        if line.startswith("- "):
            goals.append(line[2:].strip())
        elif goals and line.strip():
            goals[-1] += " " + line.strip()
    return tuple(goals)


def parse_needs(text: str) -> tuple[str, ...]:
    """The notebooks that the ``**You will need:**`` paragraph of ``text`` links to.

    Example:
        >>> parse_needs("**You will need:** [01 · one round](01_one_round.ipynb) and "
        ...             "[02 · splits](02_splits.ipynb#dirichlet); about 20 s to run.")
        ('01_one_round', '02_splits')
    """
    return tuple(dict.fromkeys(NEEDS_LINK.findall(_paragraph_after(text, NEEDS_LINE))))


def parse_run_seconds(text: str) -> int | None:
    """The run time that the ``**You will need:**`` paragraph states, in seconds.

    Example:
        >>> parse_run_seconds("**You will need:** nothing; about 30 s to run."), parse_run_seconds(
        ...     "**You will need:** 03; under a minute to run.")
        (30, 60)
    """
    found = RUN_TIME.search(_paragraph_after(text, NEEDS_LINE))
    if found is None:
        return None
    return int(found.group(1)) if found.group(1) else 60


def read_notebook(nb: dict, name: str) -> Notebook:
    """The guide's facts about the notebook ``nb`` (its JSON) named ``name``."""
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    head = markdown[0] if markdown else ""
    title = TITLE.match(head)
    if title is None or title.group(1) != name[:2]:
        raise ValueError(f"{name}: its first cell must start with '# {name[:2]} · Title'")
    goals, needs, run_seconds = parse_goals(head), parse_needs(head), parse_run_seconds(head)
    if not goals:
        raise ValueError(f"{name}: its first cell has no **Goals** list")
    if NEEDS_LINE not in head or run_seconds is None:
        raise ValueError(
            f"{name}: its first cell needs a '{NEEDS_LINE}' line stating the run time "
            "('about N s to run' or 'under a minute')"
        )
    exercises = 0
    for text in markdown:
        if "## Exercises" in text:
            after = text.split("## Exercises", 1)[1]
            exercises = sum(bool(EXERCISE.match(line)) for line in after.splitlines())
    return Notebook(
        name, title.group(2).strip(), goals, needs, run_seconds, read_parts(nb["cells"]), exercises
    )


def read_parts(cells: Sequence[dict]) -> tuple[Part, ...]:
    """The class sessions of a notebook's cells: split at ``class-break`` cells, up to its
    ``## Exercises`` (the exercises are the lab's, and their model answers no lecture)."""
    parts, words, code, sections = [], 0, 0, []

    def close() -> None:
        span = f"{sections[0]}–{sections[-1]}" if len(sections) > 1 else "".join(sections)
        parts.append(Part(words, code, span))

    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "## Exercises" in source:
            break
        if CLASS_BREAK in cell.get("metadata", {}).get("tags", []):
            close()
            words, code, sections = 0, 0, []
            continue
        if cell["cell_type"] == "code":
            code += 1
        elif cell["cell_type"] == "markdown":
            words += len(source.split())
            sections += SECTION.findall(source)
    close()
    return tuple(parts)


def read_course(folder: Path) -> list[Notebook]:
    """Every ``NN_*.ipynb`` notebook of ``folder``, in order; their needs checked."""
    course = [
        read_notebook(json.loads(path.read_text(encoding="utf-8")), path.stem)
        for path in sorted(folder.glob(NOTEBOOK_FILES))
    ]
    problems = edge_problems(course)
    if problems:
        raise ValueError("\n".join(problems))
    return course


def edges(course: Sequence[Notebook]) -> list[tuple[str, str]]:
    """``(notebook, needed)`` pairs, one per link of a "You will need" line."""
    return [(nb.name, need) for nb in course for need in nb.needs]


def edge_problems(course: Sequence[Notebook]) -> list[str]:
    """Links to notebooks that do not exist, or that do not come earlier in the course.

    Example:
        >>> a = Notebook("01_a", "A", ("g",), ("02_b",), 10, (Part(100, 1, ""),), 0)
        >>> b = Notebook("02_b", "B", ("g",), ("01_a", "03_c"), 10, (Part(100, 1, ""),), 0)
        >>> edge_problems([a, b])
        ['01_a needs 02_b, which comes later', '02_b needs 03_c, which is not a notebook']
    """
    names = [nb.name for nb in course]
    problems = []
    for name, need in edges(course):
        if need not in names:
            problems.append(f"{name} needs {need}, which is not a notebook")
        elif names.index(need) >= names.index(name):
            problems.append(f"{name} needs {need}, which comes later")
    return problems


def drawn_edges(course: Sequence[Notebook]) -> list[tuple[str, str]]:
    """The edges the graph draws: those of :func:`edges` less the ones implied by a longer path
    (06 needs 03, 04 and 05, and 05 needs 04, which needs 03: only 05 → 06 is drawn).

    Example:
        >>> a = Notebook("00_a", "A", ("g",), (), 10, (Part(100, 1, ""),), 0)
        >>> b = Notebook("01_b", "B", ("g",), ("00_a",), 10, (Part(100, 1, ""),), 0)
        >>> c = Notebook("02_c", "C", ("g",), ("00_a", "01_b"), 10, (Part(100, 1, ""),), 0)
        >>> drawn_edges([a, b, c])
        [('01_b', '00_a'), ('02_c', '01_b')]
    """
    closure = rests_on(course)
    needs = {nb.name: nb.needs for nb in course}
    return [
        (name, need)
        for name, need in edges(course)
        if not any(need in closure[other] for other in needs[name] if other != need)
    ]


def rests_on(course: Sequence[Notebook]) -> dict[str, list[str]]:
    """Every notebook's needs, direct and indirect (in course order)."""
    order = [nb.name for nb in course]
    closure: dict[str, set[str]] = {}
    for nb in course:  # needs come earlier, so theirs are known
        closure[nb.name] = set(nb.needs).union(*(closure.get(n, set()) for n in nb.needs))
    return {name: sorted(found, key=order.index) for name, found in closure.items()}


# -- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    """One line of ``{course-plan}``: ``week | notebooks | topic | assignments``.

    Attributes:
        number: the week, from 1.
        notebooks: the notebooks' numbers (``"03"``), in teaching order.
        topic: what the week is about (MyST).
        assignments: assignments and project milestones that week (MyST; may be empty).
    """

    number: int
    notebooks: tuple[str, ...]
    topic: str
    assignments: str


def parse_plan(lines: Iterable[str]) -> list[Week]:
    """The weeks of a ``{course-plan}`` block; blank lines and ``#`` comments are skipped.

    Example:
        >>> parse_plan(["1 | 00, 01 | What FL is |", "# a comment", "2 | 02 | Splits | A1 out"])
        [Week(number=1, notebooks=('00', '01'), topic='What FL is', assignments=''), Week(number=2, notebooks=('02',), topic='Splits', assignments='A1 out')]
    """  # noqa: E501
    weeks = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) not in (3, 4) or not cells[0].isdigit():
            raise ValueError(f"a plan line is 'week | notebooks | topic | assignments': {line!r}")
        numbers = tuple(re.split(r"[\s,]+", cells[1].strip(", ")))
        weeks.append(Week(int(cells[0]), numbers, cells[2], cells[3] if len(cells) == 4 else ""))
    return weeks


def plan_problems(weeks: Sequence[Week], course: Sequence[Notebook]) -> list[str]:
    """What is wrong with a plan: weeks out of order, notebooks unknown, left out or planned
    twice, or taught before a notebook they need (in an earlier week, or earlier the same week).

    Example:
        >>> a = Notebook("00_a", "A", ("g",), (), 10, (Part(100, 1, ""),), 0)
        >>> b = Notebook("01_b", "B", ("g",), ("00_a",), 10, (Part(100, 1, ""),), 0)
        >>> plan_problems([Week(1, ("01",), "", ""), Week(2, ("00", "07"), "", "")], [a, b])
        ['07 (week 2) is not a notebook', '01 (week 1) comes before 00, which it needs']
    """
    by_number = {nb.number: nb for nb in course}
    problems = []
    if [w.number for w in weeks] != list(range(1, len(weeks) + 1)):
        problems.append(f"the weeks must be 1, 2, 3, … in order: {[w.number for w in weeks]}")
    taught: dict[str, tuple[int, int]] = {}  # number -> (week, position in the plan)
    position = 0
    for week in weeks:
        for number in week.notebooks:
            position += 1
            if number not in by_number:
                problems.append(f"{number} (week {week.number}) is not a notebook")
            elif number in taught:
                problems.append(
                    f"{number} is planned twice: weeks {taught[number][0]} and {week.number}"
                )
            else:
                taught[number] = (week.number, position)
    for nb in course:
        if nb.number not in taught:
            problems.append(f"{nb.number} is in no week")
            continue
        for need in nb.needs:
            if need[:2] in taught and taught[need[:2]][1] > taught[nb.number][1]:
                week = taught[nb.number][0]
                problems.append(
                    f"{nb.number} (week {week}) comes before {need[:2]}, which it needs"
                )
    return problems


def _duration(minutes: int) -> str:
    """``2\u00a0h\u00a005`` or ``45\u00a0min`` (no line breaks inside)."""
    hours, rest = divmod(minutes, 60)
    return f"{hours}\u00a0h\u00a0{rest:02d}" if hours else f"{rest}\u00a0min"


def plan_table(weeks: Sequence[Week], course: Sequence[Notebook]) -> list[str]:
    """The plan as a MyST list-table (class ``fedlab-plan``)."""
    by_number = {nb.number: nb for nb in course}
    lines = [
        ":::{list-table}",
        ":header-rows: 1",
        ":class: fedlab-plan",
        ":widths: 7 30 33 13 17",
        "",
        "* - Week",
        "  - Notebooks",
        "  - Topic",
        "  - In class (est.)",
        "  - Assignments and project",
    ]
    for week in weeks:
        notebooks = [by_number[n] for n in week.notebooks]
        lecture = sum(nb.lecture_minutes for nb in notebooks)
        lab = sum(nb.lab_minutes for nb in notebooks)
        lines += [f"* - {week.number}", f"  - - {notebooks[0].link()}"]
        lines += [f"    - {nb.link()}" for nb in notebooks[1:]]
        lines += [
            f"  - {week.topic}",
            f"  - {_duration(lecture + lab)}",
            "",
            f"    ({lecture}\u00a0+\u00a0{lab})",
            f"  - {week.assignments or '—'}",
        ]
    return [*lines, ":::"]


def _lectures(nb: Notebook) -> str:
    """``35 min``, or per class session: ``25 + 20 min (2 classes: 1–3 | 4–5)``."""
    nbsp = "\u00a0"
    if len(nb.parts) == 1:
        return f"{nb.lecture_minutes}{nbsp}min"
    minutes = f"{nbsp}+{nbsp}".join(str(part.lecture_minutes) for part in nb.parts)
    sections = " | ".join(f"§{part.sections}" for part in nb.parts)
    return f"{minutes}{nbsp}min ({len(nb.parts)} classes: {sections})"


def objectives_table(course: Sequence[Notebook]) -> list[str]:
    """Every notebook's Goals, run time, exercises and class time, as a MyST list-table, after
    a paragraph that says how the class time is estimated."""
    lines = [
        "The class times are estimates from each notebook's size, not measurements: the lecture "
        f"goes through its prose at about {WORDS_PER_MINUTE} words a minute (explaining, not "
        f"reading aloud); the lab gives each code cell {MINUTES_PER_CODE_CELL:g} minutes (read, "
        "run, change), adds the run time its **You will need** line states and "
        f"{EXERCISE_MINUTES} minutes for one of its exercises; both are rounded to 5 minutes, "
        f"at least {MIN_MINUTES}. Adjust them to your students. A notebook too long for one "
        "class has a **class break** (a cell that says so, where a lecturer would stop): its "
        "lecture is given per class, with the sections each holds.",
        "",
        ":::{list-table}",
        ":header-rows: 1",
        ":class: fedlab-objectives",
        ":widths: 30 70",
        "",
        "* - Notebook, and in class (est.)",
        "  - Learning objectives (its **Goals**)",
    ]
    nbsp = "\u00a0"
    for nb in course:
        exercises = f"{nb.exercises} exercises" if nb.exercises else "no exercises"
        lines += [
            f"* - {nb.link(short=False)}",
            "",
            f"    lecture {_lectures(nb)}\\",  # a backslash ends a line: a break
            f"    lab {nb.lab_minutes}{nbsp}min\\",
            f"    runs in about {nb.run_seconds}{nbsp}s; {exercises}",
            f"  - - {nb.goals[0]}",
        ]
        lines += [f"    - {goal}" for goal in nb.goals[1:]]
    return [*lines, ":::"]


def prerequisite_table(course: Sequence[Notebook]) -> list[str]:
    """The "You will need" edges as a MyST list-table (class ``fedlab-prerequisites``): each
    notebook, the notebooks it needs, all it rests on (needs of needs too), and what needs it."""
    by_name = {nb.name: nb for nb in course}
    needed_by = defaultdict(list)
    for name, need in edges(course):
        needed_by[need].append(by_name[name])
    closure = rests_on(course)
    lines = [
        ":::{list-table}",
        ":header-rows: 1",
        ":class: fedlab-prerequisites",
        ":widths: 28 32 18 22",
        "",
        "* - Notebook",
        "  - Needs (its **You will need** line)",
        "  - Rests on, all the way back",
        "  - Needed by",
    ]
    for nb in course:
        needs = ", ".join(by_name[n].link() for n in nb.needs) or "—"
        back = ", ".join(n[:2] for n in closure[nb.name]) or "—"
        later = ", ".join(other.link(number_only=True) for other in needed_by[nb.name]) or "—"
        lines += [f"* - {nb.link()}", f"  - {needs}", f"  - {back}", f"  - {later}"]
    return [*lines, ":::"]


# -- the graph -----------------------------------------------------------------------------------

NODE_W, NODE_H = 2.2, 0.85  # a notebook's box, in data units
DUMMY_W = 0.25  # the room an edge takes where it passes a row
GAP = 0.3  # between neighbours in a row
ROW = 1.55  # between rows
INCHES = 0.8  # per data unit
MARGIN = 0.05  # around the drawing
Key = str | tuple[str, str, int]  # a notebook, or an edge (needed, notebook) passing row r


def layers(course: Sequence[Notebook]) -> dict[str, int]:
    """Each notebook's row: 0 if it needs nothing, else one below the lowest notebook it needs."""
    row: dict[str, int] = {}
    for nb in course:  # needs come earlier (edge_problems)
        row[nb.name] = 1 + max((row[n] for n in nb.needs), default=-1)
    return row


def _crossings(rows: list[list[Key]], down: dict[Key, list[Key]]) -> int:
    count = 0
    for upper, lower in pairwise(rows):
        where = {k: i for i, k in enumerate(lower)}
        pairs = [(i, where[b]) for i, a in enumerate(upper) for b in down[a]]
        count += sum(1 for (a, b) in pairs for (c, d) in pairs if a < c and b > d)
    return count


def _isotonic(targets: list[float], minimum_gaps: list[float]) -> list[float]:
    """Positions closest (least squares) to ``targets`` with ``p[i+1] − p[i] >= gaps[i]``."""
    offsets = [0.0]
    for gap in minimum_gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [mean, count], pool adjacent violators
    for target, offset in zip(targets, offsets, strict=True):
        blocks.append([target - offset, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, n1), (m2, n2) = blocks.pop(-2), blocks.pop(-1)
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    flat = [mean for mean, count in blocks for _ in range(int(count))]
    return [value + offset for value, offset in zip(flat, offsets, strict=True)]


def layout(
    course: Sequence[Notebook],
) -> tuple[dict[str, tuple[float, float]], dict[tuple[str, str], list[tuple[float, float]]]]:
    """A layered drawing (Sugiyama's method, small): notebooks in rows by :func:`layers`, an
    edge that skips rows passes a point in each, rows ordered to cross few edges, then points
    moved towards their neighbours. Returns the notebooks' centres and each edge's points,
    ``(needed, notebook)``, from the needed notebook's centre to the notebook's."""
    row = layers(course)
    rows: list[list[Key]] = [[] for _ in range(max(row.values()) + 1)]
    for nb in course:
        rows[row[nb.name]].append(nb.name)
    chains: dict[tuple[str, str], list[Key]] = {}
    for name, need in drawn_edges(course):
        passing: list[Key] = [(need, name, r) for r in range(row[need] + 1, row[name])]
        for key in passing:
            rows[key[2]].append(key)
        chains[(need, name)] = [need, *passing, name]
    up: dict[Key, list[Key]] = defaultdict(list)
    down: dict[Key, list[Key]] = defaultdict(list)
    for chain in chains.values():
        for a, b in pairwise(chain):
            down[a].append(b)
            up[b].append(a)

    best, fewest = [list(r) for r in rows], _crossings(rows, down)
    for sweep in range(16):  # barycentre ordering, down then up
        downward = sweep % 2 == 0
        for i in range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1):
            ref = {k: j for j, k in enumerate(rows[i - 1] if downward else rows[i + 1])}
            near = up if downward else down
            now = {k: j for j, k in enumerate(rows[i])}
            rows[i].sort(
                key=lambda k: sum(ref[n] for n in near[k]) / len(near[k]) if near[k] else now[k]
            )
        if (count := _crossings(rows, down)) < fewest:
            best, fewest = [list(r) for r in rows], count
    rows = best

    def width(key: Key) -> float:
        return NODE_W if isinstance(key, str) else DUMMY_W

    x: dict[Key, float] = {}
    for r in rows:
        gaps = [(width(a) + width(b)) / 2 + GAP for a, b in pairwise(r)]
        for key, value in zip(r, _isotonic([0.0] * len(r), gaps), strict=True):
            x[key] = value
    for sweep in range(24):  # each point towards the mean of its neighbours, order kept
        for r in rows if sweep % 2 == 0 else rows[::-1]:
            targets = [
                sum(x[n] for n in up[k] + down[k]) / len(up[k] + down[k])
                if up[k] + down[k]
                else x[k]
                for k in r
            ]
            gaps = [(width(a) + width(b)) / 2 + GAP for a, b in pairwise(r)]
            for key, value in zip(r, _isotonic(targets, gaps), strict=True):
                x[key] = value
    left = min(x[k] - width(k) / 2 for k in x)
    point = {k: (x[k] - left, -ROW * (row[k] if isinstance(k, str) else k[2])) for k in x}
    centres = {nb.name: point[nb.name] for nb in course}
    return centres, {edge: [point[k] for k in chain] for edge, chain in chains.items()}


def _ports(
    paths: dict[tuple[str, str], list[tuple[float, float]]],
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Where along a box's bottom each edge leaves and along its top each arrives (offsets from
    the centre), spread in the order of the edges' other ends so that they do not cross there."""
    leave, arrive = {}, {}
    for end, offsets in ((0, leave), (-1, arrive)):
        ports = defaultdict(list)
        for edge, points in paths.items():
            ports[edge[end]].append((points[1 if end == 0 else -2][0], edge))
        for ends in ports.values():
            for i, (_, edge) in enumerate(sorted(ends)):
                offsets[edge] = (i - (len(ends) - 1) / 2) * min(0.25, 0.7 / len(ends)) * NODE_W
    return leave, arrive


def draw_prerequisites(course: Sequence[Notebook], path: Path) -> None:
    """Write the prerequisite graph of ``course`` to ``path`` as an SVG. Each notebook's box is
    the SVG group ``node-NN``, each edge ``edge-NN-MM`` (MM needs NN): tests read them back."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    centres, paths = layout(course)
    sources = sorted({need for _, need in drawn_edges(course)})
    palette = matplotlib.colormaps["tab10"].colors
    colour = {name: palette[i % len(palette)] for i, name in enumerate(sources)}
    right = max(x for x, _ in centres.values()) + NODE_W / 2 + MARGIN
    bottom = min(y for _, y in centres.values()) - NODE_H / 2 - 0.1
    top = NODE_H / 2 + 0.1
    with matplotlib.rc_context({"svg.hashsalt": "fedlab", "svg.fonttype": "path"}):
        fig = Figure(
            figsize=((right + MARGIN) * INCHES, (top - bottom) * INCHES), facecolor="white"
        )
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(-MARGIN, right)
        ax.set_ylim(bottom, top)
        ax.set_axis_off()
        leave, arrive = _ports(paths)
        for (need, name), points in paths.items():
            (x0, y0), (x1, y1) = points[0], points[-1]
            start = (x0 + leave[need, name], y0 - NODE_H / 2)
            points = [start, *points[1:-1], (x1 + arrive[need, name], y1 + NODE_H / 2 + 0.02)]
            vertices, codes = [points[0]], [MplPath.MOVETO]
            for (xa, ya), (xb, yb) in pairwise(points):
                bend = (ya - yb) / 2  # leave and arrive vertically
                vertices += [(xa, ya - bend), (xb, yb + bend), (xb, yb)]
                codes += [MplPath.CURVE4] * 3
            ax.add_patch(
                FancyArrowPatch(
                    path=MplPath(vertices, codes),
                    arrowstyle="-|>,head_length=0.5,head_width=0.25",
                    mutation_scale=12,
                    linewidth=1.3,
                    color=colour[need],
                    alpha=0.85,
                    zorder=1,
                    gid=f"edge-{need[:2]}-{name[:2]}",
                )
            )
        for nb in course:
            x, y = centres[nb.name]
            ax.add_patch(
                FancyBboxPatch(
                    (x - NODE_W / 2, y - NODE_H / 2),
                    NODE_W,
                    NODE_H,
                    boxstyle="round,pad=0,rounding_size=0.12",
                    facecolor="#f4f6fb",
                    edgecolor=colour.get(nb.name, "#555555"),
                    linewidth=2.2 if nb.name in colour else 1.2,
                    zorder=2,
                    gid=f"node-{nb.number}",
                )
            )
            label = "\n".join(textwrap.wrap(f"{nb.number} · {nb.short_title}", 20)[:3])
            ax.text(x, y, label, ha="center", va="center", fontsize=10.5, zorder=3)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="svg", metadata={"Date": None})


# -- the directives ------------------------------------------------------------------------------


class _CourseDirective(SphinxDirective):
    """A directive that reads the notebooks being built (and is re-read when one changes)."""

    def course(self) -> list[Notebook]:
        folder = Path(self.env.srcdir) / "notebooks"
        for path in sorted(folder.glob(NOTEBOOK_FILES)):
            self.env.note_dependency(str(path))
        try:
            course = read_course(folder)
        except ValueError as error:
            raise self.error(f"the notebooks' Goals / You will need lines: {error}") from None
        if not course:
            raise self.error(f"no notebooks {NOTEBOOK_FILES} in {folder}")
        return course

    def parse(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, self.env.docname), self.content_offset, container)
        return container.children


class CoursePlan(_CourseDirective):
    """``{course-plan}``: its lines (``week | notebooks | topic | assignments``) as a table."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        course = self.course()
        try:
            weeks = parse_plan(self.content)
        except ValueError as error:
            raise self.error(str(error)) from None
        problems = plan_problems(weeks, course)
        if problems:
            raise self.error("the course plan: " + "; ".join(problems))
        return self.parse(plan_table(weeks, course))


class NotebookObjectives(_CourseDirective):
    """``{notebook-objectives}``: every notebook's Goals, run time and class time."""

    def run(self) -> list[nodes.Node]:
        return self.parse(objectives_table(self.course()))


class PrerequisiteGraph(_CourseDirective):
    """``{prerequisite-graph}``: the graph of the "You will need" lines, and its table."""

    def run(self) -> list[nodes.Node]:
        course = self.course()
        draw_prerequisites(course, Path(self.env.srcdir) / GRAPH)
        drawn, implied = len(drawn_edges(course)), len(edges(course)) - len(drawn_edges(course))
        figure = [
            f":::{{figure}} /{GRAPH}",
            f":alt: The notebooks' prerequisite graph: {len(course)} notebooks and {drawn} "
            "arrows; the table below lists every link.",
            ":name: prerequisite-graph",
            ":figclass: fedlab-prerequisite-graph",
            ":width: 100%",
            "",
            "An arrow from A to B: B's **You will need** line names A. Where B also names a "
            "notebook that A rests on, that arrow is left out: the path through A shows it "
            f"({implied} of the {drawn + implied} links; the table lists them all). A box's "
            "border has the colour of the arrows that leave it.",
            ":::",
            "",
        ]
        return self.parse(figure + prerequisite_table(course))


def setup(app):
    app.add_directive("course-plan", CoursePlan)
    app.add_directive("notebook-objectives", NotebookObjectives)
    app.add_directive("prerequisite-graph", PrerequisiteGraph)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

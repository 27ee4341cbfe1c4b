"""The API reference's side of the course website (docs/api.md); loaded by docs/conf.py.

- **fedlab names link to their entry.** Inline code in any page that *is* a fedlab name —
  ``fedlab.stragglers.Stragglers``, a call such as ``fedlab.simulate(..., seed=0)`` or
  ``help(fedlab.personalization.FedPer)`` — becomes a link to that object's entry in the API
  reference. The notebooks stay plain Markdown (backticked names, readable in JupyterLab and on
  GitHub); only the site adds the links. A name fedlab re-exports is followed to where it is
  defined (``fedlab.simulate`` is ``fedlab.engine.simulate``, where autodoc documents it). A name
  that exists but has no entry (a module the reference leaves out) stays plain text; a name
  that names nothing in fedlab is a warning, so the build stops (a typo, or an API that changed).
- **Roles that name a re-export link too.** A docstring's ``:func:`fedlab.simulate``` names no
  entry of its own; when Sphinx finds no target for a ``py`` role, the name is followed to where
  it is defined, as above.
- **No "Bases: object"** under a class that derives from nothing else.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

logger = logging.getLogger(__name__)

DOTTED = r"fedlab(?:\.[A-Za-z_]\w*)+"
# the whole inline code: a name, a call of it (perhaps passed as ``keyword=``), or help() on it
NAME = re.compile(
    rf"(?:[A-Za-z_]\w*=)?(?P<name>{DOTTED})(?P<call>\(.*\))?|help\((?P<helped>{DOTTED})\)", re.S
)


def name_in(code: str) -> str | None:
    """The fedlab name that the inline ``code`` is (called, passed as an argument or to ``help``).

    Example:
        >>> name_in("fedlab.simulate(..., seed=0)"), name_in("help(fedlab.steps)")
        ('fedlab.simulate', 'fedlab.steps')
        >>> name_in("stragglers=fedlab.Stragglers(0.5, drop=True)")
        'fedlab.Stragglers'
        >>> name_in("fedlab.Stragglers(0.9).plan(...)") is None  # a chain is no one name
        True
    """
    code = code.strip()
    match = NAME.fullmatch(code)
    if match is None:
        return None
    if match.group("helped"):
        return match.group("helped")
    call = match.group("call") or ""
    return None if _closes_early(call) else match.group("name")


def _closes_early(call: str) -> bool:
    """Whether the parentheses of ``call`` close before its end: ``(a).g(b)`` is no one call."""
    depth = 0
    for i, char in enumerate(call):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(call) - 1:
            return True
    return False


def resolve(name: str) -> str | None:
    """Where ``name`` is defined, as autodoc names it; None when fedlab has no such object.

    Example:
        >>> resolve("fedlab.simulate"), resolve("fedlab.History.load")
        ('fedlab.engine.simulate', 'fedlab.history.History.load')
        >>> resolve("fedlab.stragglers.Stragglers.fraction")  # a field without a default
        'fedlab.stragglers.Stragglers.fraction'
        >>> resolve("fedlab.no_such_thing") is None
        True
    """
    parts = name.split(".")
    obj: object = importlib.import_module(parts[0])
    target = parts[0]
    for i, part in enumerate(parts[1:], start=2):
        if isinstance(obj, ModuleType) and not hasattr(obj, part):
            try:  # a submodule fedlab does not import itself (fedlab.ui.dashboard)
                importlib.import_module(".".join(parts[:i]))
            except ImportError:  # no such module (or one whose dependency is missing)
                return None
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif isinstance(obj, type) and part in getattr(obj, "__annotations__", {}):
            obj = None  # a dataclass field without a default: documented, not a class attribute
        else:
            return None
        if isinstance(obj, ModuleType):
            target = obj.__name__
        elif isinstance(getattr(obj, "__module__", None), str) and hasattr(obj, "__qualname__"):
            target = f"{obj.__module__}.{obj.__qualname__}"  # a class, function or method
        else:
            target = f"{target}.{part}"  # an attribute, a property, a constant
    return target


class LinkFedlabNames(SphinxPostTransform):
    """Inline code that is a fedlab name becomes a link to its API entry (see the module docstring)."""

    default_priority = 5  # before Sphinx resolves the pages' own cross-references (10)

    def run(self, **kwargs) -> None:
        objects = self.env.get_domain("py").objects
        for literal in list(self.document.findall(nodes.literal)):
            if _inside(literal, (nodes.reference, addnodes.pending_xref, nodes.title)):
                continue  # already a link (or a role Sphinx resolves next), or a heading
            name = name_in(literal.astext())
            if name is None:
                continue
            target = resolve(name)
            if target is None:
                logger.warning(
                    "`%s` names nothing in fedlab (a typo, or the API changed)",
                    literal.astext(),
                    location=literal,
                )
                continue
            entry = objects.get(target)
            if entry is None:  # in fedlab, but not in the API reference: stays plain
                continue
            reference = make_refnode(
                self.app.builder, self.env.docname, entry.docname, entry.node_id, literal.deepcopy()
            )
            reference["classes"].append("fedlab-api")
            reference["reftitle"] = f"{target} in the API reference"
            literal.replace_self(reference)


def _inside(node: nodes.Node, kinds: tuple[type, ...]) -> bool:
    """Whether one of ``node``'s ancestors is of one of ``kinds``."""
    while node.parent is not None:
        node = node.parent
        if isinstance(node, kinds):
            return True
    return False


def link_reexport(app, env, node, contnode):
    """Sphinx ``missing-reference``: a ``py`` role naming a fedlab re-export (``fedlab.simulate``)
    links to the definition's entry; anything else stays unresolved, as before."""
    if node.get("refdomain") != "py" or not node.get("reftarget", "").startswith("fedlab."):
        return None
    name = node["reftarget"]
    target = resolve(name) if NAME.fullmatch(name) else None
    entry = env.get_domain("py").objects.get(target) if target else None
    if entry is None:
        return None
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode)


def drop_object_base(app, doctree) -> None:
    """Sphinx ``doctree-read``: remove autodoc's "Bases: object" (it says nothing)."""
    for paragraph in list(doctree.findall(nodes.paragraph)):
        if paragraph.astext() == "Bases: object" and isinstance(
            paragraph.parent, addnodes.desc_content
        ):
            paragraph.parent.remove(paragraph)


def setup(app):
    app.add_post_transform(LinkFedlabNames)
    app.connect("missing-reference", link_reexport)
    app.connect("doctree-read", drop_object_base)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

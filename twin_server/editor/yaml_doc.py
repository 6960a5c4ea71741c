"""The site file as an editable document, written back with its comments and layout.

The editor works on the *plain* document: the mapping :func:`yaml.safe_load` gives (what
:func:`twin_server.site.load_site` validates), as JSON. Saving merges the edited document into
a ruamel.yaml round-trip tree of the old text: a subtree whose meaning did not change keeps
its exact text (comments, quotes, flow or block style); a changed scalar is replaced; new
list items copy the style of their siblings; lists of mappings with ``id`` keys are matched
by id, other lists by position. The result is checked to mean exactly the edited document
(read back with PyYAML, the project's reader); if the merge ever disagrees, the document is
written plainly instead, losing comments but never meaning.
"""

from __future__ import annotations

import io
import json
import logging
import math
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

__all__ = ["dump_document", "load_document", "merge_document", "plain", "same"]

log = logging.getLogger("twin_server.editor")

# Keys whose list items are written one per line as ``{...}`` in a new file (as the pilot's).
_FLOW_ITEMS = frozenset({"workers", "receivers", "floor_markings", "sensors", "breaks", "walks"})


def _float(representer: Any, value: float) -> Any:
    # YAML 1.1 (PyYAML) reads "1e-07" as text: an exponent needs a dot ("1.0e-07").
    if math.isnan(value):
        text = ".nan"
    elif math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mant, exp = text.split("e")
            text = f"{mant}.0e{exp}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _yaml() -> YAML:
    rt = YAML()  # round-trip
    rt.representer.add_representer(float, _float)
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long flow line
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def plain(value: Any) -> Any:
    """JSON-compatible copy of parsed YAML (dates and times as ISO text, tuples as lists)."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


def load_document(text: str) -> dict[str, Any]:
    """The plain document of a site file's text (``{}`` for an empty file).

    Raises
    ------
    yaml.YAMLError
        The text is not YAML.
    ValueError
        It is YAML but not a mapping.
    """
    data = yaml.safe_load(text) if text.strip() else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"a site file must be a YAML mapping, got {type(data).__name__}")
    return plain(data)


def same(a: Any, b: Any) -> bool:
    """Equal in meaning: numbers by value (``3 == 3.0``), containers element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _is_flat(value: Any) -> bool:
    """A list of scalars, or of lists of scalars (a point, a polygon): always written ``[...]``."""
    if not isinstance(value, list):
        return False
    return all(
        not isinstance(v, dict | list)
        or (isinstance(v, list) and _is_flat(v) and all(not isinstance(w, dict | list) for w in v))
        for v in value
    )


def _scalar(value: Any) -> Any:
    # PyYAML (YAML 1.1) reads some plain words as non-strings ("08:30" is 510, "yes" is True):
    # such text must be quoted so it reads back as the same string.
    if isinstance(value, str):
        try:
            back = yaml.safe_load(value)
        except yaml.YAMLError:
            back = None
        if back != value or "\n" in value:
            return DoubleQuotedScalarString(value)
    return value


def _build(value: Any, key: str | None = None, flow: bool | None = None) -> Any:
    """A new ruamel node for a plain value; ``flow`` forces the style of a mapping."""
    if isinstance(value, dict):
        node = CommentedMap()
        for k, v in value.items():
            node[k] = _build(v, k, True if flow else None)
        if flow or (key == "name" and all(not isinstance(v, dict | list) for v in value.values())):
            node.fa.set_flow_style()  # name: {ja: .., en: ..} on one line, as the pilot writes it
        return node
    if isinstance(value, list):
        node = CommentedSeq()
        item_flow = key in _FLOW_ITEMS
        for v in value:
            node.append(_build(v, None, item_flow or None))
        if _is_flat(value) or flow:
            node.fa.set_flow_style()
        return node
    return _scalar(value)


def _sibling_flow(seq: CommentedSeq, key: str | None) -> bool:
    for item in seq:
        if isinstance(item, CommentedMap):
            return bool(item.fa.flow_style())
    return key in _FLOW_ITEMS


def _match_by_id(old: list[Any], new: list[Any]) -> bool:
    def ids(items: list[Any]) -> list[Any] | None:
        got = [it.get("id") if isinstance(it, dict) else None for it in items]
        return got if all(isinstance(i, str) for i in got) and len(set(got)) == len(got) else None

    return ids(old) is not None and ids(new) is not None


def _merge(node: Any, old: Any, new: Any, key: str | None = None, in_flow: bool = False) -> Any:
    """The node to write for ``new`` where ``node`` (meaning ``old``) was."""
    if same(old, new):
        return node
    if isinstance(new, dict) and isinstance(old, dict) and isinstance(node, CommentedMap):
        for k in [k for k in node if k not in new]:
            del node[k]
        keys = list(node.keys())
        for k, v in new.items():
            if k in node:
                node[k] = _merge(node[k], old.get(k), v, k, bool(node.fa.flow_style()))
                continue
            built = _build(v, k, bool(node.fa.flow_style()) or None)
            # Insert after the key that precedes it in the edited document (schema order).
            before = list(new.keys())
            pos = 0
            for prev in reversed(before[: before.index(k)]):
                if prev in keys:
                    pos = list(node.keys()).index(prev) + 1
                    break
            node.insert(pos, k, built)
            keys = list(node.keys())
        return node
    if isinstance(new, list) and isinstance(old, list) and isinstance(node, CommentedSeq) and new:
        flow_items = _sibling_flow(node, key)
        if _match_by_id(old, new):
            by_id = {o["id"]: (n, o) for n, o in zip(list(node), old, strict=True)}
            items = [
                _merge(by_id[v["id"]][0], by_id[v["id"]][1], v)
                if v["id"] in by_id
                else _build(v, None, flow_items or None)
                for v in new
            ]
        else:
            items = [
                _merge(node[i], old[i], v) if i < len(old) else _build(v, None, flow_items or None)
                for i, v in enumerate(new)
            ]
        for i, item in enumerate(items):
            if i < len(node):
                node[i] = item
            else:
                node.append(item)
        while len(node) > len(items):
            del node[len(node) - 1]
        return node
    return _build(new, key, in_flow or None)


def dump_document(doc: dict[str, Any]) -> str:
    """A new file's text for a plain document (pilot-like layout: points and small items inline)."""
    out = io.StringIO()
    _yaml().dump(_build(doc), out)
    return out.getvalue()


def merge_document(text: str, new: dict[str, Any]) -> str:
    """The site file's text with the edited plain document ``new`` written into it.

    Parameters
    ----------
    text : str
        The current file (may be empty: a new site).
    new : dict
        The edited document (JSON types).

    Returns
    -------
    str
        YAML whose PyYAML reading equals ``new``; comments and layout of unchanged parts kept.
    """
    if not text.strip():
        return dump_document(new)
    rt = _yaml()
    tree = rt.load(text)
    old = load_document(text)
    if not isinstance(tree, CommentedMap):
        return dump_document(new)
    merged = _merge(tree, old, plain(new))
    out = io.StringIO()
    rt.dump(merged, out)
    result = out.getvalue()
    try:
        ok = same(load_document(result), plain(new))
    except (yaml.YAMLError, ValueError):
        ok = False
    if not ok:  # never write a file that means something else than what was edited
        log.warning("site file merge disagreed with the edited document; writing it without comments")
        result = dump_document(new)
    return result

"""Every parser of user or remote input, and the limits they keep, in one place.

JSON and YAML that hubpress did not write (refresh configs, training configs and metrics, adapter
configs, manifests and cards read back from a repo, safetensors metadata) are parsed here, never
with a bare `json.loads` or `yaml.safe_load`. A document over a limit is refused with one
ParseLimitError line naming the file and the limit; nothing is parsed further.

- size: MAX_DOCUMENT_BYTES for a file, MAX_ANSWER_BYTES for a JSON answer of the Hub (enforced
  while it is received, by hubpress.targets.hub_http);
- nesting: MAX_DEPTH levels of objects and lists (Python's own parser would recurse until it
  crashes on `[` nested 100,000 deep);
- numbers: only finite ones (`NaN`, `Infinity`, `1e400` are refused); a caller that wants a range
  (a probability) says so in its own model;
- text: UTF-8 only;
- YAML: safe loading only (no Python objects), at most MAX_YAML_NODES nodes once aliases are
  expanded (a billion-laughs document is a few hundred bytes), and no alias inside its own anchor
  (`&o {self: *o}` would be an infinite document).

safetensors headers keep their own limits in hubpress.lora.header (MAX_HEADER_SIZE, the depth
check below through `load_json`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from hubpress.errors import ConfigError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_METRICS_BYTES = 256 * 1024 * 1024  # a long run's metrics.jsonl / trainer_state.json
MAX_ANSWER_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_YAML_NODES = 100_000


class ParseLimitError(ConfigError, ValueError):
    """A JSON or YAML document is unusable or over one of hubpress's parser limits. A ValueError too:
    a caller that skips a document it cannot parse skips one over a limit the same way."""


def _text(data: bytes | str, where: str, max_bytes: int) -> str:
    size = len(data)
    if size > max_bytes:
        raise ParseLimitError(f"{where} is larger than the {max_bytes:,}-byte limit for a document.")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseLimitError(
            f"{where} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})."
        ) from None


def _depth_ok(value: Any, where: str, max_depth: int) -> None:
    """Walk containers without recursion; refuse the first one nested deeper than max_depth."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise ParseLimitError(
                f"{where} nests objects or lists deeper than the limit of {max_depth} levels."
            )
        stack.extend((child, depth + 1) for child in children)


def _refuse_constant(where: str):
    def refuse(name: str) -> float:
        raise ParseLimitError(f"{where} holds the number {name}; only finite numbers are accepted.")

    return refuse


def _finite_float(where: str):
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ParseLimitError(f"{where} holds the number {text}, beyond the range of a finite number.")
        return value

    return parse


def load_json(
    data: bytes | str,
    where: str,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook=None,
    non_finite: bool = False,
) -> Any:
    """A JSON document within the limits. A syntax error is a ParseLimitError too, naming line and
    column. `non_finite=True` keeps NaN and Infinity (a trainer logs a NaN loss as `NaN`)."""
    text = _text(data, where, max_bytes)
    finite = (
        {} if non_finite else {"parse_constant": _refuse_constant(where), "parse_float": _finite_float(where)}
    )
    try:
        value = json.loads(text, object_pairs_hook=object_pairs_hook, **finite)
    except RecursionError:
        raise ParseLimitError(
            f"{where} nests objects or lists deeper than the limit of {max_depth} levels."
        ) from None
    except json.JSONDecodeError as exc:
        raise ParseLimitError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    _depth_ok(value, where, max_depth)
    return value


def _yaml_size(node: yaml.Node, where: str, max_nodes: int) -> int:
    """Nodes in the document once every alias is expanded; an alias inside its own anchor is refused.
    Shared sub-documents are sized once (memo), so a billion-laughs document is sized in microseconds."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        item, done = stack.pop()
        key = id(item)
        children = (
            [part for pair in item.value for part in pair]
            if isinstance(item, yaml.MappingNode)
            else list(item.value)
            if isinstance(item, yaml.SequenceNode)
            else []
        )
        if done:
            open_nodes.discard(key)
            sizes[key] = min(1 + sum(sizes[id(child)] for child in children), max_nodes + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ParseLimitError(
                f"{where} refers to itself (an alias inside its own anchor); it cannot be read."
            )
        open_nodes.add(key)
        stack.append((item, True))
        for child in children:
            if id(child) in open_nodes:
                raise ParseLimitError(
                    f"{where} refers to itself (an alias inside its own anchor); it cannot be read."
                )
            if id(child) not in sizes:
                stack.append((child, False))
    total = sizes[id(node)]
    if total > max_nodes:
        raise ParseLimitError(
            f"{where} expands to more than {max_nodes:,} YAML nodes through its aliases (the limit); "
            "it is not read."
        )
    return total


def load_yaml(
    data: bytes | str,
    where: str,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_nodes: int = MAX_YAML_NODES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """One YAML document, safely (plain data only) and within the limits; None when it is empty."""
    text = _text(data, where, max_bytes)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _yaml_size(node, where, max_nodes)
        value = loader.construct_document(node)
    except RecursionError:
        raise ParseLimitError(f"{where} nests deeper than the limit of {max_depth} levels.") from None
    except yaml.YAMLError as exc:
        raise ParseLimitError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
    _depth_ok(value, where, max_depth)
    return value

"""Architecture documents: a model's layer tree as data, rebuilt only through a registry.

A document records, for each block, its registered type, its hyperparameters and its named
children. :func:`build` turns a document back into blocks by looking the type up in
:data:`REGISTRY` (our own layer and zoo classes) and calling it with the recorded keyword
arguments: nothing in a file is imported, evaluated or unpickled.

>>> from modelsurgeon.core import nn
>>> net = nn.HybridSequential(); net.add(nn.Dense(4, in_units=3, activation="relu"))
>>> doc = describe(net)
>>> doc["root"]["type"], doc["root"]["children"][0][1]["config"]["units"]
('HybridSequential', 4)
>>> build(doc)
HybridSequential(
  (0): Dense(3 -> 4, Activation(relu))
)
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidAttributeError, ModelSurgeonError
from . import nn
from .block import Block
from .model_zoo import vision

DOCUMENT_FORMAT = "modelsurgeon-architecture"
DOCUMENT_VERSION = 1
MAX_DEPTH = 64
MAX_INPUT_RANK = 8

REGISTRY: dict[str, type[Block]] = {cls.__name__: cls for cls in (
    nn.Sequential, nn.HybridSequential, nn.Concatenate, nn.HybridConcatenate, nn.Identity,
    nn.Activation, nn.Dense, nn.Dropout, nn.Flatten, nn.BatchNorm, nn.Conv2D, nn.MaxPool2D,
    nn.AvgPool2D, nn.GlobalAvgPool2D, nn.GlobalMaxPool2D,
    vision.AlexNet, vision.ResNetV1, vision.ResNetV2, vision.BasicBlockV1, vision.BasicBlockV2,
    vision.VGG, vision.SqueezeNet, vision.MobileNet,
)}


def _node(block: Block, path: str) -> dict[str, Any] | None:
    cls = type(block)
    if REGISTRY.get(cls.__name__) is not cls:
        return None
    config = block._arch_config() if hasattr(block, "_arch_config") else {}
    node: dict[str, Any] = {"type": cls.__name__, "config": config}
    if not block._arch_leaf:
        children = []
        for name, child in block._children.items():
            child_node = _node(child, f"{path}.{name}" if path else name)
            if child_node is None:
                return None
            children.append([name, child_node])
        node["children"] = children
    return node


def describe(block: Block, inputs: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The architecture document of ``block``, or None if any block in it is not registered.

    ``inputs`` lists the model's inputs (``{"name", "shape", "dtype"}``); by default the shapes
    of the last forward pass.
    """
    root = _node(block, "")
    if root is None:
        return None
    if inputs is None:
        specs = getattr(block, "_input_specs", None) or []
        names = ["data"] if len(specs) == 1 else [f"data{i}" for i in range(len(specs))]
        inputs = [{"name": n, "shape": list(shape), "dtype": str(dtype)}
                  for n, (shape, dtype) in zip(names, specs)]
    return {"format": DOCUMENT_FORMAT, "version": DOCUMENT_VERSION, "root": root, "inputs": inputs}


def unregistered(block: Block) -> list[str]:
    """Paths of blocks whose class is not in the registry (why a model has no architecture)."""
    return [f"{path or '(root)'}: {type(b).__name__}" for path, b in block.named_blocks()
            if REGISTRY.get(type(b).__name__) is not type(b)]


def build(document: dict[str, Any]) -> Block:
    """Rebuild the blocks a document describes (parameters uninitialised, shapes known)."""
    if not isinstance(document, dict) or document.get("format") != DOCUMENT_FORMAT:
        raise ModelSurgeonError("not a modelsurgeon architecture document")
    version = document.get("version")
    if not isinstance(version, int) or version > DOCUMENT_VERSION:
        raise ModelSurgeonError(f"architecture document version {version!r} is newer than this "
                                f"modelsurgeon understands ({DOCUMENT_VERSION})")
    return _build(document.get("root"), "", 0)


def _build(node: Any, path: str, depth: int) -> Block:
    where = path or "(root)"
    if depth > MAX_DEPTH:
        raise ModelSurgeonError(f"architecture nests deeper than {MAX_DEPTH} levels at {where}")
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise ModelSurgeonError(f"architecture node {where} has no type")
    cls = REGISTRY.get(node["type"])
    if cls is None:
        raise ModelSurgeonError(f"architecture node {where} has unknown layer type {node['type']!r}; "
                                f"known types: {', '.join(sorted(REGISTRY))}")
    config = node.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ModelSurgeonError(f"architecture node {where} has a malformed config")
    try:
        block = cls(**config)
    except InvalidAttributeError as exc:
        raise InvalidAttributeError(f"architecture node {where} ({node['type']})", exc.problem) from None
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError, ModelSurgeonError) as exc:
        raise ModelSurgeonError(f"cannot build {node['type']} at {where} from {config}: {exc}") from None
    if block._arch_leaf:
        return block
    children = node.get("children", [])
    if not isinstance(children, list) or not all(
            isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) for c in children):
        raise ModelSurgeonError(f"architecture node {where} has malformed children")
    wanted = [name for name, _ in children]
    if len(set(wanted)) != len(wanted):
        raise ModelSurgeonError(f"architecture node {where} names a child twice")
    for name, child in children:
        built = _build(child, f"{path}.{name}" if path else name, depth + 1)
        if name in block._children:
            block._replace_child(name, built)
        else:
            block.register_child(built, name)
            if not block._arch_chain and not hasattr(block, name):
                object.__setattr__(block, name, built)
    for name in [n for n in block._children if n not in wanted]:
        block._remove_child(name)
    ordered = {name: block._children[name] for name in wanted}
    block._children.clear()
    block._children.update(ordered)
    return block


def input_specs(document: dict[str, Any]) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of each recorded input; empty when the document has none."""
    specs = []
    for item in document.get("inputs") or []:
        try:
            specs.append((str(item["name"]), tuple(int(d) for d in item["shape"]), str(item["dtype"])))
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ModelSurgeonError("architecture document has a malformed input entry") from None
        name, shape, _ = specs[-1]
        if not shape or any(dim < 1 for dim in shape) or len(shape) > MAX_INPUT_RANK:
            raise InvalidAttributeError(f"architecture input '{name}'",
                                        f"shape {list(shape)} needs 1 to {MAX_INPUT_RANK} positive dimensions")
    return specs

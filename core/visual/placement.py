"""Placing a picture: a layered layout for graphs, a squarified treemap for key trees.

Our own code rather than Graphviz: model graphs are long chains with short side branches
(residual shortcuts, fire modules), which a small Sugiyama-style layout handles well, and
it keeps ``graph`` a pure-Python feature with no system package to install and the same
output bytes everywhere.

Layered layout, top to bottom:

1. rank = longest path from an input; edges spanning several ranks get one dummy point per rank;
2. order within ranks by barycenter sweeps, keeping the order with the fewest crossings;
3. x positions by repeated sweeps that pull each node towards the mean of its neighbours, then
   restore the minimum gaps with a weighted isotonic regression (pool adjacent violators),
   which moves nodes as little as possible while keeping their order;
4. edges are drawn through their dummy points; detached layers (a diff's removed layers,
   tensors no operator uses) stand in a column on the right.

>>> from .picture import Layer, Picture
>>> chain = Picture("t", "graph", [Layer("a", "a", "Conv"), Layer("b", "b", "Relu")], [("a", "b")])
>>> drawing = layout(chain)
>>> drawing.boxes["a"].x == drawing.boxes["b"].x, drawing.boxes["a"].y < drawing.boxes["b"].y
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from .picture import Layer, Picture, label_lines

MARGIN = 24
RANK_GAP = 30
NODE_GAP = 26
DUMMY_WIDTH = 10
LINE_HEIGHT = 15
SWEEPS = 24


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass
class Frame:
    """A labelled rectangle behind boxes: a treemap container, or the column of detached layers."""

    x: float
    y: float
    w: float
    h: float
    label: str
    depth: int = 0
    kind: str = "group"  # 'group', 'detached' or 'removed'


@dataclass
class Edge:
    source: str
    target: str
    points: list[tuple[float, float]]


@dataclass
class Drawing:
    style: str  # 'graph' or 'treemap'
    width: float
    height: float
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    #: treemap only: each big enough layer box split into its tensors (tensor key, box)
    cells: dict[str, list[tuple[str, Box]]] = field(default_factory=dict)
    #: treemap only: a layer's label inside its container (``body.0`` inside ``features.4.0``)
    labels: dict[str, str] = field(default_factory=dict)


def node_size(layer: Layer) -> tuple[float, float]:
    """Width and height of a layer's box, from an estimate of its text width."""
    lines = label_lines(layer)
    if layer.kind == "input":
        return max(110.0, len(lines[0]) * 7.0 + 32), 30.0
    widths = [len(lines[0]) * 7.4] + [len(line) * 6.4 for line in lines[1:]]
    width = min(340.0, max(150.0, max(widths) + 34))
    return round(width), 14.0 + LINE_HEIGHT * len(lines)


def layout(picture: Picture) -> Drawing:
    """Place every layer of ``picture`` (see the module docstring)."""
    if picture.source == "keys":
        return _treemap(picture)
    return _layered(picture)


# -- layered -------------------------------------------------------------------------------------

def _ranks(ids: list[str], preds: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from a source; edges that go backwards in the list order are ignored (cycles)."""
    position = {node: i for i, node in enumerate(ids)}
    rank: dict[str, int] = {}
    for node in ids:
        earlier = [rank[p] for p in preds[node] if position[p] < position[node]]
        rank[node] = max(earlier) + 1 if earlier else 0
    return rank


def _crossings(order: list[list[str]], down: dict[str, list[str]]) -> int:
    total = 0
    for upper, lower in pairwise(order):
        where = {node: i for i, node in enumerate(lower)}
        pairs = sorted((i, where[t]) for i, node in enumerate(upper) for t in down.get(node, []) if t in where)
        seconds = [b for _, b in pairs]
        for i in range(len(seconds)):
            for j in range(i + 1, len(seconds)):
                if seconds[j] < seconds[i]:
                    total += 1
    return total


def _order(ranks: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]]) -> list[list[str]]:
    best = [list(r) for r in ranks]
    best_cost = _crossings(best, down)
    order = [list(r) for r in ranks]
    for sweep in range(8):
        indices = range(1, len(order)) if sweep % 2 == 0 else range(len(order) - 2, -1, -1)
        for r in indices:
            neighbour_rank = order[r - 1] if sweep % 2 == 0 else order[r + 1]
            where = {node: i for i, node in enumerate(neighbour_rank)}
            links = up if sweep % 2 == 0 else down

            def key(item: tuple[int, str], where: dict[str, int] = where, links: dict[str, list[str]] = links) -> float:
                i, node = item
                near = [where[n] for n in links.get(node, []) if n in where]
                return sum(near) / len(near) if near else float(i)

            order[r] = [node for _, node in sorted(enumerate(order[r]), key=key)]
        cost = _crossings(order, down)
        if cost < best_cost:
            best, best_cost = [list(r) for r in order], cost
        if best_cost == 0:
            break
    return best


def _isotonic(targets: list[float], weights: list[float], gaps: list[float]) -> list[float]:
    """Positions closest (weighted least squares) to ``targets`` with ``x[i+1] - x[i] >= gaps[i]``."""
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for t, w, o in zip(targets, weights, offsets):
        blocks.append([(t - o) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, w2, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += w2
            blocks[-1][2] += c
    values: list[float] = []
    for s, w, c in blocks:
        values += [s / w] * int(c)
    return [v + o for v, o in zip(values, offsets)]


def _layered(picture: Picture) -> Drawing:
    """Longest-path ranks, dummy points on long edges, barycentre ordering, then x by sweeps."""
    main = [layer for layer in picture.layers if not layer.detached]
    detached = [layer for layer in picture.layers if layer.detached]
    ids = [layer.id for layer in main]
    sizes = _node_sizes(picture)
    preds, succs, edges = _adjacency(picture, ids)
    rank = _ranks(ids, preds)
    # inputs sit just above their first consumer rather than all at the top
    for node in ids:
        if not preds[node] and succs[node]:
            rank[node] = max(rank[node], min(rank[s] for s in succs[node]) - 1)
    width = {node: sizes[node][0] for node in ids}
    chains, up, down = _dummy_chains(ids, edges, rank, width)
    levels = max(rank.values(), default=-1) + 1
    ranks: list[list[str]] = [[] for _ in range(levels)]
    for node in ids:  # real nodes in picture order, each rank's dummies after them
        ranks[rank[node]].append(node)
    for chain in chains:
        for dummy in chain[1:-1]:
            ranks[rank[dummy]].append(dummy)
    ranks = _order(ranks, up, down)
    x = _positions(ranks, chains, up, down, width)
    return _drawn(ranks, chains, rank, x, width, sizes, detached)


def _node_sizes(picture: Picture) -> dict[str, tuple[float, float]]:
    """Each layer's box size; every operator box gets the widest one's width."""
    sizes = {layer.id: node_size(layer) for layer in picture.layers}
    common = max((sizes[layer.id][0] for layer in picture.layers if layer.kind != "input"), default=0)
    for layer in picture.layers:
        if layer.kind != "input":
            sizes[layer.id] = (common, sizes[layer.id][1])
    return sizes


def _adjacency(picture: Picture, ids: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]],
                                                          list[tuple[str, str]]]:
    known = set(ids)
    preds: dict[str, list[str]] = {node: [] for node in ids}
    succs: dict[str, list[str]] = {node: [] for node in ids}
    edges = []
    for source, target in dict.fromkeys(picture.edges):
        if source in known and target in known and source != target:
            preds[target].append(source)
            succs[source].append(target)
            edges.append((source, target))
    return preds, succs, edges


def _dummy_chains(ids: list[str], edges: list[tuple[str, str]], rank: dict[str, int], width: dict[str, float]
                  ) -> tuple[list[list[str]], dict[str, list[str]], dict[str, list[str]]]:
    """Each edge as a chain of nodes, with a dummy point on every rank it crosses (ranks and widths
    of the dummies are added to ``rank`` and ``width``)."""
    up: dict[str, list[str]] = {node: [] for node in ids}
    down: dict[str, list[str]] = {node: [] for node in ids}
    chains: list[list[str]] = []
    for number, (source, target) in enumerate(edges):
        chain = [source]
        for step in range(rank[source] + 1, rank[target]):
            dummy = f"\0{number}:{step}"
            rank[dummy] = step
            width[dummy] = DUMMY_WIDTH
            chain.append(dummy)
        chain.append(target)
        for a, b in pairwise(chain):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
        chains.append(chain)
    return chains, up, down


def _positions(ranks: list[list[str]], chains: list[list[str]], up: dict[str, list[str]],
               down: dict[str, list[str]], width: dict[str, float]) -> dict[str, float]:
    """x of every node: start packed, then pull towards neighbours and restore the gaps."""
    x: dict[str, float] = {}
    for nodes in ranks:
        cursor = 0.0
        for node in nodes:
            x[node] = cursor + width[node] / 2
            cursor += width[node] + NODE_GAP

    def gap(a: str, b: str) -> float:
        dummy = a.startswith("\0") or b.startswith("\0")
        return (width[a] + width[b]) / 2 + (NODE_GAP / 2 if dummy else NODE_GAP)

    lane_of = {dummy: chain for chain in chains for dummy in chain[1:-1]}
    for sweep in range(SWEEPS):
        going_down = sweep % 2 == 0
        for nodes in ranks if going_down else list(reversed(ranks)):
            targets, weights = [], []
            for node in nodes:
                if node.startswith("\0"):  # a long edge stays one straight lane
                    chain = lane_of[node]
                    lane = sum(x[n] for n in chain[1:-1]) / (len(chain) - 2)
                    targets.append((lane + (x[chain[0]] + x[chain[-1]]) / 2) / 2)
                    weights.append(0.02)
                    continue
                near = up.get(node, []) if going_down else down.get(node, [])
                if sweep >= SWEEPS - 4:
                    near = up.get(node, []) + down.get(node, [])
                real = [n for n in near if not n.startswith("\0")]
                near = real or near
                targets.append(sum(x[n] for n in near) / len(near) if near else x[node])
                weights.append(1.0)
            placed = _isotonic(targets, weights, [gap(a, b) for a, b in pairwise(nodes)])
            for node, value in zip(nodes, placed):
                x[node] = value
    rank = {node: r for r, nodes in enumerate(ranks) for node in nodes}
    _align_links(ranks, up, down, x, gap)
    _straighten(chains, ranks, rank, x, gap)
    for nodes in ranks:  # the gaps hold whatever the last two steps did
        placed = _isotonic([x[n] for n in nodes], [0.02 if n.startswith("\0") else 1.0 for n in nodes],
                           [gap(a, b) for a, b in pairwise(nodes)])
        for node, value in zip(nodes, placed):
            x[node] = value
    return x


def _drawn(ranks: list[list[str]], chains: list[list[str]], rank: dict[str, int], x: dict[str, float],
           width: dict[str, float], sizes: dict[str, tuple[float, float]], detached: list[Layer]) -> Drawing:
    """Boxes and edge points from ranks and x positions; detached layers in a column beside."""
    drawing = Drawing("graph", 0, 0)
    left = min((x[n] - width[n] / 2 for nodes in ranks for n in nodes), default=0.0)
    heights = [max((sizes[n][1] for n in nodes if not n.startswith("\0")), default=20.0) for nodes in ranks]
    tops: list[float] = []
    cursor = float(MARGIN)
    for h in heights:
        tops.append(cursor)
        cursor += h + RANK_GAP
    shift = MARGIN - left
    for r, nodes in enumerate(ranks):
        for node in nodes:
            if node.startswith("\0"):
                continue
            w, h = sizes[node]
            drawing.boxes[node] = Box(round(x[node] + shift - w / 2, 1), round(tops[r] + (heights[r] - h) / 2, 1), w, h)
    for chain in chains:
        points = []
        for node in chain[1:-1]:
            r = rank[node]
            points += [(round(x[node] + shift, 1), tops[r]), (round(x[node] + shift, 1), tops[r] + heights[r])]
        drawing.edges.append(Edge(chain[0], chain[-1], points))
    _ports(drawing)
    right = max((b.x + b.w for b in drawing.boxes.values()), default=MARGIN)
    bottom = max((b.y + b.h for b in drawing.boxes.values()), default=MARGIN)
    if detached:
        right, bottom = _detached_column(drawing, detached, sizes, right + 48, bottom)
    drawing.width = round(right + MARGIN)
    drawing.height = round(bottom + MARGIN)
    return drawing


def _align_links(ranks: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]], x: dict[str, float],
                 gap: Any) -> None:
    """Where a node is its predecessor's only successor and vice versa, put it right below, if it fits."""
    for nodes in ranks:
        for node in nodes:
            preds = up.get(node, [])
            if node.startswith("\0") or len(preds) != 1 or preds[0].startswith("\0"):
                continue
            if len([n for n in down.get(preds[0], []) if not n.startswith("\0")]) != 1:
                continue
            wanted = x[preds[0]]
            real = [n for n in nodes if not n.startswith("\0")]  # lanes move out of the way afterwards
            j = real.index(node)
            if j > 0 and wanted < x[real[j - 1]] + gap(real[j - 1], node):
                continue
            if j + 1 < len(real) and wanted > x[real[j + 1]] - gap(node, real[j + 1]):
                continue
            x[node] = wanted


def _straighten(chains: list[list[str]], ranks: list[list[str]], rank: dict[str, int], x: dict[str, float],
                gap: Any) -> None:
    """Put each long edge's dummies on one vertical line where that fits between their neighbours."""
    position = {node: i for nodes in ranks for i, node in enumerate(nodes)}
    for chain in chains:
        dummies = chain[1:-1]
        if len(dummies) < 2:
            continue
        low, high = -math.inf, math.inf
        for node in dummies:
            nodes, i = ranks[rank[node]], position[node]
            if i > 0:
                low = max(low, x[nodes[i - 1]] + gap(nodes[i - 1], node))
            if i + 1 < len(nodes):
                high = min(high, x[nodes[i + 1]] - gap(node, nodes[i + 1]))
        if low > high:
            continue
        wanted = sum(x[n] for n in dummies) / len(dummies)
        line = min(max(wanted, low), high)
        for node in dummies:
            x[node] = line


def _ports(drawing: Drawing) -> None:
    """Start each edge on its source's bottom and end it on its target's top, spread when several meet."""
    outgoing: dict[str, list[Edge]] = {}
    incoming: dict[str, list[Edge]] = {}
    for edge in drawing.edges:
        outgoing.setdefault(edge.source, []).append(edge)
        incoming.setdefault(edge.target, []).append(edge)

    def towards(edge: Edge, start: bool) -> float:
        if edge.points:
            return edge.points[0][0] if start else edge.points[-1][0]
        return drawing.boxes[edge.target if start else edge.source].cx

    for node, group in outgoing.items():
        box = drawing.boxes[node]
        group.sort(key=lambda e: towards(e, True))
        step = min(16.0, box.w / (len(group) + 1))
        for i, edge in enumerate(group):
            edge.points.insert(0, (round(box.cx + (i - (len(group) - 1) / 2) * step, 1), box.y + box.h))
    for node, group in incoming.items():
        box = drawing.boxes[node]
        group.sort(key=lambda e: e.points[-2][0] if len(e.points) > 1 else e.points[0][0])
        step = min(16.0, box.w / (len(group) + 1))
        for i, edge in enumerate(group):
            edge.points.append((round(box.cx + (i - (len(group) - 1) / 2) * step, 1), box.y))


def _detached_column(drawing: Drawing, layers: list[Layer], sizes: dict[str, tuple[float, float]],
                     left: float, bottom: float) -> tuple[float, float]:
    """Detached layers in a labelled column right of the graph; returns the new right and bottom."""
    right = left
    y = float(MARGIN)
    for kind in ("removed", "detached"):
        group = [layer for layer in layers if (layer.ghost if kind == "removed" else not layer.ghost)]
        if not group:
            continue
        w = max(sizes[layer.id][0] for layer in group) + 24
        top = y
        y += 26
        for layer in group:
            lw, lh = sizes[layer.id]
            drawing.boxes[layer.id] = Box(left + 12, y, lw, lh)
            y += lh + 14
        label = "only in A (removed)" if kind == "removed" else "not connected"
        drawing.frames.append(Frame(left, top, w, y - top, label, 0, kind))
        right = max(right, left + w)
        y += 20
    return right, max(bottom, y)


# -- treemap -------------------------------------------------------------------------------------

HEADER = 18
PAD = 4


@dataclass
class _Node:
    label: str
    path: str
    layer: Layer | None = None
    children: list[_Node] = field(default_factory=list)
    weight: float = 0.0


def _tree(layers: list[Layer]) -> _Node:
    """Containers for every proper prefix of a layer path; a layer goes into its own path's container if
    there is one (its tensors sit beside sub-blocks), else into its parent's."""
    root = _Node("", "")
    containers = {"": root}

    def container(path: str) -> _Node:
        node = containers.get(path)
        if node is None:
            parent_path, _, label = path.rpartition(".")
            node = _Node(label, path)
            containers[path] = node
            container(parent_path).children.append(node)
        return node

    for layer in layers:
        parts = layer.path.split(".") if layer.path else []
        if len(parts) > 1:
            container(_nested(".".join(parts[:-1])))
    for layer in layers:
        own = containers.get(layer.path) if layer.path else None
        if own is not None:
            parent, label = own, layer.path.rpartition(".")[2]
        else:
            parent_path = _nested(layer.path.rpartition(".")[0])
            parent = container(parent_path)
            label = layer.path[len(parent_path) + 1:] if parent_path else layer.path
        parent.children.append(_Node(label or layer.name, layer.path, layer))
    return root


#: Deepest nesting of containers drawn; the rest of a longer path is one label (a key of 5,000
#: dotted parts would otherwise recurse 5,000 deep here and in every walk of the tree).
MAX_NESTING = 32


def _nested(path: str) -> str:
    """``path`` cut to its first :data:`MAX_NESTING` parts."""
    parts = path.split(".", MAX_NESTING)
    return ".".join(parts[:MAX_NESTING]) if len(parts) > MAX_NESTING else path


def _collapse(node: _Node) -> _Node:
    """A container with a single child merges into it (``features`` + ``0`` -> ``features.0``)."""
    node.children = [_collapse(child) for child in node.children]
    if node.layer is None and node.path and len(node.children) == 1:
        child = node.children[0]
        if child.path != node.path:
            child.label = f"{node.label}.{child.label}"
        return child
    return node


def _weigh(node: _Node, floor: float) -> float:
    if node.layer is not None:
        node.weight = node.layer.nbytes + floor
    else:
        node.weight = sum(_weigh(child, floor) for child in node.children)
    return node.weight


def _worst(row: list[float], side: float) -> float:
    total = sum(row)
    if total <= 0 or side <= 0:
        return float("inf")
    return max(max(side * side * r / (total * total), (total * total) / (side * side * r)) for r in row)


def _squarify(items: list[_Node], x: float, y: float, w: float, h: float) -> list[tuple[_Node, Box]]:
    """Bruls, Huizing and van Wijk's squarified treemap of ``items`` (by weight) in the rectangle."""
    placed: list[tuple[_Node, Box]] = []
    items = sorted(items, key=lambda n: -n.weight)
    total = sum(n.weight for n in items)
    if total <= 0 or w <= 0 or h <= 0:
        return [(n, Box(x, y, 0, 0)) for n in items]
    scale = w * h / total
    areas = [n.weight * scale for n in items]
    i = 0
    while i < len(items):
        side = min(w, h)
        row = [areas[i]]
        j = i + 1
        while j < len(items) and _worst([*row, areas[j]], side) <= _worst(row, side):
            row.append(areas[j])
            j += 1
        thickness = sum(row) / side
        offset = 0.0
        for node, area in zip(items[i:j], row):
            length = area / thickness
            if w >= h:  # the row is a column on the left
                placed.append((node, Box(x, y + offset, thickness, length)))
            else:  # a row along the top
                placed.append((node, Box(x + offset, y, length, thickness)))
            offset += length
        if w >= h:
            x, w = x + thickness, w - thickness
        else:
            y, h = y + thickness, h - thickness
        i = j
    return placed


def _cells(layer: Layer, area: Box) -> list[tuple[str, Box]]:
    """A layer's tensors as a small treemap inside its box (area by bytes, every tensor visible)."""
    total = sum(row.nbytes for row in layer.tensors)
    items = [_Node(row.key, row.key, weight=row.nbytes + max(total * 0.04, 1.0)) for row in layer.tensors]
    return [(item.label, Box(round(b.x + 1, 1), round(b.y + 1, 1),
                             round(max(b.w - 2, 0), 1), round(max(b.h - 2, 0), 1)))
            for item, b in _squarify(items, area.x, area.y, area.w, area.h)]


def _treemap(picture: Picture) -> Drawing:
    main = [layer for layer in picture.layers if not layer.detached]
    detached = [layer for layer in picture.layers if layer.detached]
    count = max(1, len(main))
    width = 1120.0
    height = float(min(2400, max(420, round(count * 15000 / width))))
    drawing = Drawing("treemap", width + 2 * MARGIN, height + 2 * MARGIN)
    total = sum(layer.nbytes for layer in main)
    root = _collapse(_tree(main))
    _weigh(root, max(total * 0.25 / count, 1.0))

    def place(node: _Node, box: Box, depth: int) -> None:
        if node.layer is not None:
            drawing.boxes[node.layer.id] = Box(round(box.x + 1, 1), round(box.y + 1, 1),
                                               round(max(box.w - 2, 0), 1), round(max(box.h - 2, 0), 1))
            drawing.labels[node.layer.id] = node.label
            if box.w >= 90 and box.h >= 64 and len(node.layer.tensors) > 1:
                drawing.cells[node.layer.id] = _cells(node.layer, Box(box.x + 6, box.y + 38, box.w - 12, box.h - 44))
            return
        inner = box
        if node.path:
            drawing.frames.append(Frame(round(box.x, 1), round(box.y, 1), round(box.w, 1), round(box.h, 1),
                                        node.label, depth, "group"))
            header = HEADER if box.h > HEADER * 2.5 and box.w > 48 else 2
            inner = Box(box.x + PAD, box.y + header, box.w - 2 * PAD, box.h - header - PAD)
        for child, child_box in _squarify(node.children, inner.x, inner.y, inner.w, inner.h):
            place(child, child_box, depth + 1)

    place(root, Box(MARGIN, MARGIN, width, height), 0)
    if detached:
        sizes = {layer.id: node_size(layer) for layer in detached}
        right, bottom = _detached_column(drawing, detached, sizes, width + MARGIN + 32, height + MARGIN)
        drawing.width = right + MARGIN
        drawing.height = max(drawing.height, bottom + MARGIN)
    return drawing

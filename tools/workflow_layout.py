"""Node sizes as ComfyUI's frontend (LiteGraph, frontend 1.27) computes them, and a column layout built from them.

The frontend grows every loaded node to ``LGraphNode.computeSize()`` (``max(saved, computed)``): a workflow laid out
on a fixed grid then overlaps and hides widgets. :func:`node_size` reproduces that computation from the node's
object_info entry — one slot row per socket (inputs beside outputs), 20 px per widget plus 4 px spacing, DOM widgets
(multiline text, markdown) at their own height, 8 + 6 px of padding, the title bar (30 px) *above* ``pos`` — and
measures text with Arial's advance widths (what the canvas uses; Liberation Sans on Linux has the same metrics),
so a saved size is never smaller than the frontend's and nothing moves when a workflow loads.
:func:`layout` places nodes in columns, left to right, each column as wide as its widest node.
The browser test (tests/browser) loads every shipped workflow and checks the frontend kept these sizes and that no
two nodes overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# LiteGraph's metrics (src/lib/litegraph/src/LiteGraphGlobal.ts, LGraphNode.computeSize, BaseWidget).
TITLE_HEIGHT = 30  # NODE_TITLE_HEIGHT: the title bar sits above a node's pos
SLOT_HEIGHT = 20  # NODE_SLOT_HEIGHT: one row per socket, inputs beside outputs
WIDGET_HEIGHT = 20  # NODE_WIDGET_HEIGHT: number, combo, single-line text, toggle
WIDGET_SPACING = 4  # added after every widget
WIDGETS_PADDING = 8  # added once below the widgets
NODE_PADDING = 6  # the bottom margin computeSize adds
NODE_WIDTH = 140  # NODE_WIDTH: minimum width; ×1.5 for a node with widgets
TITLE_FONT_PX = 14  # NODE_TEXT_SIZE (title)
INNER_FONT_PX = 12  # NODE_SUBTEXT_SIZE (socket and widget labels)
WIDGET_PADDING = 42 + 2 * (15 + 6 + 10)  # BaseWidget.minValueWidth + 2·(margin + arrowMargin + arrowWidth)
DOM_MIN_HEIGHT = 50  # a DOM widget (multiline text, markdown, PreviewAny's text) without its own minimum
IMAGE_PREVIEW_HEIGHT = 220  # the image preview PreviewImage/SaveImage add after a run (useImagePreviewWidget)
#: The read-only text boxes web/js/evosearch.js adds (NODES[...].height there): planned cost, run summary.
INFO_HEIGHTS = {"EvoSearchSchedule": 100, "EvoSearchKSampler": 96, "EvoSearchResults": 96}

#: Arial advance widths (1/1000 em) of printable ASCII, from its published metrics (identical to Helvetica's and
#: Liberation Sans'). Anything else counts as a full em, so estimates only err on the wide side.
_ARIAL = dict(zip(
    " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
    [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, *[556] * 10, 278, 278, 584,
     584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722,
     667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556,
     222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584],
    strict=True,
))  # fmt: skip


def text_width(text: str, px: float) -> float:
    """Width of ``text`` in ``px``-pixel Arial, rounded up a little (kerning and rounding never make it wider)."""
    return sum(_ARIAL.get(ch, 1000) for ch in text) * px / 1000 * 1.02


@dataclass(frozen=True)
class Widget:
    """One widget as the frontend draws it: its label and height (``dom`` widgets are DOM elements)."""

    name: str
    height: float = WIDGET_HEIGHT
    has_input: bool = True  # ordinary widgets have an input slot too (its label sets the node's minimum width)


def node_size(
    title: str,
    sockets: Sequence[str],
    outputs: Sequence[str],
    widgets: Sequence[Widget],
    min_size: tuple[float, float] = (0, 0),
) -> tuple[int, int]:
    """``[width, height]`` of the node body (the title bar is above it): at least what ``computeSize`` gives."""
    rows = max(len(sockets), len(outputs), 1)
    title_width = TITLE_HEIGHT + text_width(title, TITLE_FONT_PX) + TITLE_HEIGHT * 0.33
    inputs_width = max((text_width(s, INNER_FONT_PX) for s in sockets), default=0)
    outputs_width = max((text_width(s, INNER_FONT_PX) for s in outputs), default=0)
    slots_width = inputs_width + outputs_width + 2 * SLOT_HEIGHT + (5 if inputs_width and outputs_width else 0)
    labels = [text_width(w.name, INNER_FONT_PX) for w in widgets if w.has_input]
    widget_width = max(labels) + WIDGET_PADDING if labels else 0
    width = max(slots_width, widget_width, title_width, NODE_WIDTH * (1.5 if widgets else 1), min_size[0])
    height = rows * SLOT_HEIGHT
    if widgets:
        height += sum(w.height + WIDGET_SPACING for w in widgets) + WIDGETS_PADDING
    height = max(height + NODE_PADDING, min_size[1])
    return int(-(-width // 1)), int(-(-height // 1))


@dataclass
class Box:
    """A node to place: its id, column, order in the column and body size; :func:`layout` fills ``pos``."""

    id: int
    col: int
    row: float
    size: tuple[int, int]
    pos: tuple[int, int] = (0, 0)


def layout(boxes: Iterable[Box], origin: tuple[int, int] = (40, 60), col_gap: int = 70, row_gap: int = 40) -> list[Box]:
    """Place ``boxes`` in columns left to right (each as wide as its widest box), stacked by ``row`` in a column,
    ``row_gap`` between one box's bottom and the next one's title bar. Returns them with ``pos`` set."""
    boxes = sorted(boxes, key=lambda b: (b.col, b.row, b.id))
    widths: dict[int, int] = {}
    for b in boxes:
        widths[b.col] = max(widths.get(b.col, 0), b.size[0])
    x, xs = origin[0], {}
    for col in sorted(widths):
        xs[col] = x
        x += widths[col] + col_gap
    y: dict[int, int] = {}
    for b in boxes:
        top = y.get(b.col, origin[1] - TITLE_HEIGHT)
        b.pos = (xs[b.col], top + TITLE_HEIGHT)
        y[b.col] = b.pos[1] + b.size[1] + row_gap
    return boxes


def overlaps(boxes: Sequence[Box]) -> list[tuple[int, int]]:
    """Pairs of box ids whose rectangles (title bar included) intersect."""

    def rect(b: Box) -> tuple[float, float, float, float]:
        return b.pos[0], b.pos[1] - TITLE_HEIGHT, b.pos[0] + b.size[0], b.pos[1] + b.size[1]

    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = rect(a), rect(b)
            if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                out.append((a.id, b.id))
    return out

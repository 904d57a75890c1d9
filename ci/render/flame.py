"""Flame graphs from collapsed stacks (``py-spy record --format raw``): one side's, and
the difference of two.

A side's graph merges the stacks of every process that served it (the gate restarts its
services between blocks, and py-spy draws one graph per process). No maintained PyPI
package draws the difference of two collapsed-stack files (``difflame`` wants ``git
blame``, ``flamegraph.pl``'s ``difffolded.pl`` is Perl), so this module draws both, in one
layout: each frame as wide as its share of the side's samples. In the differential graph
(the candidate's stacks) red marks a larger share of the candidate's samples than of the
base's, blue a smaller one, the depth of the colour the size of the difference. Shares,
not sample counts: the sides ran for the same windows but a profiler may draw a few more
samples from one. Frames narrower than ``MIN_SHARE`` are left out (their titles could not
be read anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

WIDTH = 1200.0
ROW = 16.0
MIN_SHARE = 0.002
FONT = 11
NO_PYTHON_FRAME = "(no Python frame)"  # a sample py-spy took between or outside Python frames


@dataclass
class _Node:
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def parse_collapsed(lines: Iterable[str]) -> dict[tuple[str, ...], int]:
    """``frame;frame;... count`` lines as stack -> samples (malformed lines are skipped).

    py-spy writes a sample that caught no Python frame as a bare `` count``; it is kept as the
    frame :data:`NO_PYTHON_FRAME`, so that a graph holds every sample its files hold."""
    stacks: dict[tuple[str, ...], int] = {}
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not count.isdigit():
            continue
        key = tuple(stack.split(";")) if stack.strip() else (NO_PYTHON_FRAME,)
        stacks[key] = stacks.get(key, 0) + int(count)
    return stacks


def _tree(stacks: dict[tuple[str, ...], int]) -> _Node:
    root = _Node()
    for stack, n in stacks.items():
        root.samples += n
        node = root
        for frame in stack:
            node = node.children.setdefault(frame, _Node())
            node.samples += n
    return root


def _share(root: _Node, path: tuple[str, ...]) -> float:
    node: _Node | None = root
    for frame in path:
        node = node.children.get(frame) if node is not None else None
    return node.samples / root.samples if node is not None and root.samples else 0.0


def _colour(delta: float) -> str:
    """Red for a larger share in the candidate, blue for a smaller one, white for none."""
    depth = min(abs(delta) / 0.05, 1.0)  # 5 points of the samples: the deepest colour
    fade = round(255 * (1 - depth))
    return f"rgb(255,{fade},{fade})" if delta > 0 else f"rgb({fade},{fade},255)"


def _warm(path: tuple[str, ...]) -> str:
    """A side's own graph: warm colours, one per frame name, so a frame keeps its colour."""
    h = sum(map(ord, path[-1])) if path else 0
    return f"rgb(255,{120 + h % 110},{40 + h % 50})"


def _svg(
    root: _Node,
    head: str,
    describe: Callable[[tuple[str, ...], float], tuple[str, str]],
) -> str:
    """``root``'s frames as rectangles; ``describe(path, share)`` gives each frame's fill
    and the words after its share in its title."""
    rects: list[str] = []
    depth_max = 0

    def walk(node: _Node, path: tuple[str, ...], x: float, depth: int) -> None:
        nonlocal depth_max
        for name, child in sorted(node.children.items()):
            share = child.samples / root.samples
            if share < MIN_SHARE:
                x += share * WIDTH
                continue
            here = (*path, name)
            fill, note = describe(here, share)
            w = share * WIDTH
            y = depth * ROW
            depth_max = max(depth_max, depth)
            title = escape(f"{name}: {share * 100:.1f} % of samples{note}")
            label = escape(name[: int(w / (FONT * 0.6))]) if w > 3 * FONT else ""
            rects.append(
                f'<g><title>{title}</title><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                f'height="{ROW - 1:.0f}" fill="{fill}" stroke="#ccc"/>'
                f'<text x="{x + 3:.1f}" y="{y + ROW - 4:.1f}">{label}</text></g>'
            )
            walk(child, here, x, depth + 1)
            x += w

    if root.samples:
        walk(root, (), 0.0, 1)
    height = (depth_max + 2) * ROW
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0f}" height="{height:.0f}" '
        f'font-family="monospace" font-size="{FONT}"><text x="3" y="{ROW - 4:.0f}">'
        f"{escape(head)}</text>" + "".join(rects) + "</svg>\n"
    )


def flame_svg(stacks: dict[tuple[str, ...], int], who: str) -> str:
    """The SVG text of one side's flame graph (``who``: whose stacks, for its heading)."""
    root = _tree(stacks)
    return _svg(root, f"{who}: {root.samples} samples", lambda path, _s: (_warm(path), ""))


def differential_svg(
    base: dict[tuple[str, ...], int], candidate: dict[tuple[str, ...], int]
) -> str:
    """The SVG text of the candidate's flame graph coloured by its difference to the base."""
    b, c = _tree(base), _tree(candidate)

    def describe(path: tuple[str, ...], share: float) -> tuple[str, str]:
        delta = share - _share(b, path)
        return _colour(delta), f" ({delta * 100:+.1f} pp)"

    head = (
        f"candidate against base: red, a larger share of the candidate's {c.samples} "
        f"samples; blue, a smaller share than in the base's {b.samples}"
    )
    return _svg(c, head, describe)

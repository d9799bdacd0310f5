"""Synthetic captioning data: coloured shapes on a dark canvas, one canonical caption each.

The data set is generated, never downloaded, and is a pure function of the seed: rendering
uses numpy masks (not a drawing library whose rasteriser could change between versions).

Each image has exactly one caption because scenes are built so only one description fits:
- ``count``: one to three objects of one colour and shape ("a red circle", "two red circles");
- ``above``: two objects that differ, stacked in one column; the top one is named first
  ("a red circle above a blue square" -- "below" is never generated);
- ``left_of``: two objects that differ, side by side in one row; the left one is named first
  ("a red circle left of a blue square" -- "right of" is never generated).
Stacked objects share a column within 3 px and are at least 11 px apart vertically (and the
reverse for side-by-side), so no image is both "above" and "left of". Related objects always
differ in colour or shape, so a relation is never confused with a count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "COLOURS",
    "IMAGE_SIZE",
    "SHAPES",
    "VOCABULARY",
    "Scene",
    "Shape",
    "Vocabulary",
    "generate",
    "render",
    "sample_scene",
]

IMAGE_SIZE = 32
"""Side of the square RGB images the model sees, in pixels."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 50, 50),
    "green": (50, 190, 70),
    "blue": (60, 90, 235),
    "yellow": (235, 215, 50),
}
"""Object colours and their base RGB values (jittered per object)."""

SHAPES = ("circle", "square", "triangle")
"""Object shapes; plurals add an "s"."""

COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
"""How a count is spelled at the start of a caption."""

KIND_WEIGHTS = {"count1": 0.2, "count2": 0.15, "count3": 0.15, "above": 0.25, "left_of": 0.25}
"""How often each kind of scene is drawn."""

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
VOCABULARY: tuple[str, ...] = (
    PAD, BOS, EOS, UNK, "a", "two", "three", *COLOURS, *SHAPES,
    *(f"{shape}s" for shape in SHAPES), "above", "left", "of",
)  # fmt: skip
"""Every token the grammar can produce, in id order; stored in each checkpoint."""

MAX_CAPTION_TOKENS = 10
"""Longest caption in tokens, BOS and EOS included ("<bos> a red circle left of a blue
square <eos>")."""

ImageArray = npt.NDArray[np.uint8]
_GRID = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) + 0.5


@dataclass(frozen=True)
class Shape:
    """One object: what it is and where it sits (centre and size in pixels)."""

    shape: str
    colour: str
    cx: float
    cy: float
    size: float


@dataclass(frozen=True)
class Scene:
    """A scene kind ("count", "above", "left_of") and its objects, in caption order."""

    kind: str
    objects: tuple[Shape, ...]

    def caption(self) -> str:
        """The single canonical caption of this scene."""
        first = self.objects[0]
        if self.kind == "count":
            noun = first.shape if len(self.objects) == 1 else f"{first.shape}s"
            return f"{COUNT_WORDS[len(self.objects)]} {first.colour} {noun}"
        second = self.objects[1]
        relation = "above" if self.kind == "above" else "left of"
        return f"a {first.colour} {first.shape} {relation} a {second.colour} {second.shape}"


class Vocabulary:
    """Maps caption words to ids and back; the token list travels inside each checkpoint."""

    def __init__(self, tokens: Sequence[str] = VOCABULARY) -> None:
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        self.pad, self.bos, self.eos = self.index[PAD], self.index[BOS], self.index[EOS]
        self.unk = self.index[UNK]

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, caption: str, length: int = MAX_CAPTION_TOKENS) -> list[int]:
        """Token ids of ``<bos> caption <eos>``, padded to ``length``."""
        ids = [self.bos, *(self.index.get(w, self.unk) for w in caption.split()), self.eos]
        return ids + [self.pad] * (length - len(ids))

    def decode(self, ids: Sequence[int]) -> str:
        """The caption for generated ids: stops at EOS, skips BOS and padding."""
        words: list[str] = []
        for i in ids:
            if i == self.eos:
                break
            if i not in (self.bos, self.pad):
                words.append(self.tokens[i])
        return " ".join(words)


def _pick_object(rng: np.random.Generator) -> tuple[str, str]:
    return SHAPES[rng.integers(len(SHAPES))], list(COLOURS)[rng.integers(len(COLOURS))]


def _relation(rng: np.random.Generator, kind: str) -> Scene:
    """Two different objects in one column (above) or one row (left_of), first one first."""
    combos = [(s, c) for s in SHAPES for c in COLOURS]
    i, j = rng.choice(len(combos), size=2, replace=False)
    sizes = rng.uniform(8.0, 11.0, size=2)
    line = rng.uniform(8.0, 24.0)
    across = line + rng.uniform(-1.5, 1.5, size=2)
    along = (rng.uniform(5.5, 10.0), rng.uniform(22.0, 26.5))
    objects = []
    for k, (shape, colour) in enumerate((combos[i], combos[j])):
        x, y = (across[k], along[k]) if kind == "above" else (along[k], across[k])
        objects.append(Shape(shape, colour, float(x), float(y), float(sizes[k])))
    return Scene(kind, tuple(objects))


def _apart(a: Shape, b: Shape) -> bool:
    """True when the two bounding boxes are at least one pixel apart."""
    gap = (a.size + b.size) / 2 + 1
    return max(abs(a.cx - b.cx), abs(a.cy - b.cy)) >= gap


def _count(rng: np.random.Generator, n: int) -> Scene:
    """n objects of one kind, none touching (rejection sampling, retried until it fits)."""
    shape, colour = _pick_object(rng)
    while True:
        objects: list[Shape] = []
        for _ in range(100):
            size = float(rng.uniform(7.0, 10.0) if n > 1 else rng.uniform(8.0, 12.0))
            cx, cy = rng.uniform(size / 2, IMAGE_SIZE - size / 2, size=2)
            candidate = Shape(shape, colour, float(cx), float(cy), size)
            if all(_apart(candidate, other) for other in objects):
                objects.append(candidate)
                if len(objects) == n:
                    return Scene("count", tuple(objects))


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draw one scene; the kind follows ``KIND_WEIGHTS``."""
    kinds = list(KIND_WEIGHTS)
    kind = kinds[rng.choice(len(kinds), p=list(KIND_WEIGHTS.values()))]
    if kind.startswith("count"):
        return _count(rng, int(kind[-1]))
    return _relation(rng, kind)


def _mask(obj: Shape) -> npt.NDArray[np.bool_]:
    yy, xx = _GRID
    half = obj.size / 2
    if obj.shape == "circle":
        return (xx - obj.cx) ** 2 + (yy - obj.cy) ** 2 <= half**2
    if obj.shape == "square":
        return (np.abs(xx - obj.cx) <= half) & (np.abs(yy - obj.cy) <= half)
    top = obj.cy - half
    depth = (yy - top) / obj.size  # 0 at the apex, 1 at the base
    return (depth >= 0) & (depth <= 1) & (np.abs(xx - obj.cx) <= depth * half)


def render(scene: Scene, rng: np.random.Generator) -> ImageArray:
    """The scene as a HxWx3 uint8 image: dark noisy background, colour-jittered objects."""
    base = rng.uniform(0, 40, size=3)
    noise = rng.normal(0, 6, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
    canvas = base + noise
    for obj in scene.objects:
        colour = np.array(COLOURS[obj.colour]) + rng.uniform(-25, 25, size=3)
        canvas[_mask(obj)] = colour
    return np.clip(canvas, 0, 255).astype(np.uint8)


def generate(n: int, seed: int) -> tuple[ImageArray, list[str], list[Scene]]:
    """n images (n x H x W x 3 uint8), their captions and scenes; a pure function of seed."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    scenes = []
    for i in range(n):
        scene = sample_scene(rng)
        images[i] = render(scene, rng)
        scenes.append(scene)
    return images, [s.caption() for s in scenes], scenes

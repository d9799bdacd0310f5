"""The generated data set: deterministic for a seed, one canonical caption per image."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from mobile_multimodal.data import (
    IMAGE_SIZE,
    MAX_CAPTION_TOKENS,
    VOCABULARY,
    Scene,
    Shape,
    Vocabulary,
    generate,
)


def test_same_seed_gives_identical_images_and_captions() -> None:
    images_a, captions_a, _ = generate(200, seed=7)
    images_b, captions_b, _ = generate(200, seed=7)
    assert np.array_equal(images_a, images_b)
    assert captions_a == captions_b
    assert images_a.shape == (200, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert images_a.dtype == np.uint8


def test_other_seed_gives_other_data() -> None:
    images_a, _, _ = generate(50, seed=1)
    images_b, _, _ = generate(50, seed=2)
    assert not np.array_equal(images_a, images_b)


def test_only_canonical_relations_are_ever_generated() -> None:
    _, captions, _ = generate(1500, seed=3)
    words = {w for c in captions for w in c.split()}
    assert "below" not in words and "right" not in words
    assert words <= set(VOCABULARY)
    assert {"above", "left", "two", "three"} <= words


def test_first_named_object_is_on_top_or_on_the_left() -> None:
    _, _, scenes = generate(1500, seed=4)
    for scene in scenes:
        if scene.kind == "above":
            top, bottom = scene.objects
            assert top.cy < bottom.cy and abs(top.cx - bottom.cx) <= 3
        elif scene.kind == "left_of":
            left, right = scene.objects
            assert left.cx < right.cx and abs(left.cy - right.cy) <= 3


def test_no_scene_is_both_above_and_left_of_nor_a_count() -> None:
    """Related objects differ and are separated along one axis only, so exactly one
    caption describes each image."""
    _, _, scenes = generate(1500, seed=5)
    for scene in scenes:
        if scene.kind == "count":
            assert len({(o.shape, o.colour) for o in scene.objects}) == 1
            continue
        a, b = scene.objects
        assert (a.shape, a.colour) != (b.shape, b.colour)
        dx, dy = abs(a.cx - b.cx), abs(a.cy - b.cy)
        assert (dy >= 11 and dx <= 3) if scene.kind == "above" else (dx >= 11 and dy <= 3)


def test_identical_images_never_carry_two_captions() -> None:
    images, captions, _ = generate(3000, seed=6)
    seen: dict[str, set[str]] = defaultdict(set)
    for image, caption in zip(images, captions, strict=True):
        seen[hashlib.sha256(image.tobytes()).hexdigest()].add(caption)
    assert all(len(c) == 1 for c in seen.values())


def test_captions_read_as_expected() -> None:
    red = Shape("circle", "red", 10, 8, 9)
    blue = Shape("square", "blue", 10, 24, 9)
    assert Scene("above", (red, blue)).caption() == "a red circle above a blue square"
    assert Scene("left_of", (red, blue)).caption() == "a red circle left of a blue square"
    assert Scene("count", (red,)).caption() == "a red circle"
    assert Scene("count", (red, red, red)).caption() == "three red circles"


def test_vocabulary_round_trips_every_generated_caption() -> None:
    vocabulary = Vocabulary()
    _, captions, _ = generate(500, seed=8)
    for caption in captions:
        ids = vocabulary.encode(caption)
        assert len(ids) == MAX_CAPTION_TOKENS
        assert vocabulary.decode(ids) == caption

"""Inpainting masks as float32 (1, S, S) certainty maps C⁰ (the paper's M, §3.2): 1 = known pixel, 0 = to inpaint."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

# Yu et al. (DeepFill v2, "free-form") stroke parameters, stated for 256×256 images.
STROKE_REFERENCE_SIZE = 256
MIN_STROKE_WIDTH, MAX_STROKE_WIDTH = 12, 40
MIN_VERTICES, MAX_VERTICES = 4, 11
MEAN_ANGLE, ANGLE_RANGE = 2 * math.pi / 5, 2 * math.pi / 15


def box_mask(size: int, box: np.ndarray) -> torch.Tensor:
    """1 outside the pixel box (x0, y0, x1, y1), 0 inside; the box is rounded to whole pixels and clipped."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    mask = torch.ones(1, size, size)
    mask[:, max(y0, 0) : max(min(y1, size), 0), max(x0, 0) : max(min(x1, size), 0)] = 0
    return mask


def center_mask(size: int) -> torch.Tensor:
    """The fixed validation hole: the centre square W/4…3W/4."""
    q = size // 4
    return box_mask(size, np.array([q, q, size - q, size - q]))


def free_form_mask(size: int, rng: np.random.Generator) -> torch.Tensor:
    """A random rectangle plus 1–3 brush strokes of 4–11 vertices each (Yu et al., ICCV 2019, Alg. 1).

    Stroke widths are drawn from 12–40 px at 256² and scaled by ``size / 256``; the rectangle's sides are
    S/8…S/2 at a random position.
    """
    hole = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(hole)
    w, h = rng.integers(size // 8, size // 2 + 1, size=2)
    x, y = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
    draw.rectangle([int(x), int(y), int(x + w - 1), int(y + h - 1)], fill=255)
    scale = size / STROKE_REFERENCE_SIZE
    average_radius = math.hypot(size, size) / 8
    for _ in range(rng.integers(1, 4)):
        vertices = int(rng.integers(MIN_VERTICES, MAX_VERTICES + 1))
        width = max(1, int(round(rng.uniform(MIN_STROKE_WIDTH, MAX_STROKE_WIDTH) * scale)))
        angle_min, angle_max = MEAN_ANGLE - rng.uniform(0, ANGLE_RANGE), MEAN_ANGLE + rng.uniform(0, ANGLE_RANGE)
        points = [(float(rng.integers(0, size)), float(rng.integers(0, size)))]
        for i in range(vertices - 1):
            angle = rng.uniform(angle_min, angle_max)
            angle = 2 * math.pi - angle if i % 2 == 0 else angle
            length = float(np.clip(rng.normal(average_radius, average_radius / 2), 0, 2 * average_radius))
            px, py = points[-1]
            points.append(
                (float(np.clip(px + length * math.cos(angle), 0, size - 1)),
                 float(np.clip(py + length * math.sin(angle), 0, size - 1)))
            )
        draw.line(points, fill=255, width=width)
        r = width / 2
        for px, py in points:
            draw.ellipse([px - r, py - r, px + r, py + r], fill=255)
    hole_array = np.asarray(hole)
    if rng.random() < 0.5:
        hole_array = hole_array[:, ::-1]
    if rng.random() < 0.5:
        hole_array = hole_array[::-1, :]
    return torch.from_numpy((hole_array == 0).astype(np.float32).copy())[None]

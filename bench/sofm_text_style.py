"""The text-style article ("Create unique text-style with SOFM", NeuPy, 2017), reproduced.

Text drawn by matplotlib (fontsize 120, as the article) becomes a set of
points, one per dark pixel; a 2 x 1000 map laid along a sine wave over the
text (the article's initialization: 16 periods, both grid rows alike) is
trained as the article trains it: 30 calls of one epoch each, one sample at
a time, step 0.05 / (1 + epoch / 10) (NeuPy's reduce_step_after=10), a
radius of 10 reduced by 1 every epoch down to 0 (reduce_radius_after=1).
NeuPy scales the step inside the radius by a Gaussian of each grid axis'
distance (between 0.5 and 1 of the winner's step); here the neighbourhood
is the flat bubble.

Prints how well the string of units covers the text (each dark pixel's
distance to its nearest unit, each unit's to the nearest dark pixel, in
pixels) after epochs 1, 5, 10, 15 and 30, and the time; draws the map
after epochs 0, 1, 10 and 30.

    python bench/sofm_text_style.py                                  # "NeuPy"
    python bench/sofm_text_style.py --text hpo --figure docs/figures/sofm-text-style.png
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from models.sofm import SOFM, InverseTime, StepDown, euclidean
from models.sofm_data import sine_wave

ROWS, COLS, EPOCHS = 2, 1000, 30
TURNS = 100 / (2 * np.pi)  # the article's sin(linspace(0, 100, 1000)): 15.9 periods
SHOWN = (1, 10, 30)  # epochs drawn after the initial map
REPORTED = (1, 5, 10, 15, 30)


def text_points(text: str, fontsize: int = 120) -> np.ndarray:
    """(n, 2) coordinates (x right, y up, in pixels) of the dark pixels of `text`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.0 * len(text) + 1, 2.4), dpi=100)
    canvas = FigureCanvasAgg(figure)
    figure.text(0.02, 0.25, text, fontsize=fontsize)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].mean(axis=2)  # (h, w) grey levels
    rows, cols = np.nonzero(pixels < 128)  # binarized: grey edge pixels go either way
    return np.column_stack([cols, len(pixels) - rows]).astype(float)


def coverage(x: np.ndarray, weights: np.ndarray) -> str:
    to_units = euclidean(x, weights).min(axis=1)  # (n,) each pixel's nearest unit
    to_text = euclidean(weights, x).min(axis=1)  # (m,) each unit's nearest pixel
    return (
        f"pixel to unit mean {to_units.mean():.2f} max {to_units.max():.1f}; "
        f"unit to text mean {to_text.mean():.2f} 95th percentile {np.percentile(to_text, 95):.1f}"
    )


def draw(x: np.ndarray, maps: dict[int, np.ndarray], path: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 2.6 * len(maps)))
    axes = figure.subplots(len(maps), 1)
    for ax, (epoch, weights) in zip(axes, maps.items(), strict=True):
        ax.scatter(*x.T, s=1, color="#E24A33", alpha=0.05, linewidths=0)
        grid = weights.reshape(ROWS, COLS, 2)
        for row in grid:  # the two long strings
            ax.plot(*row.T, color="#348ABD", lw=0.6)
        ax.plot(*np.stack([grid[0], grid[1]], axis=1).reshape(-1, 2).T, color="#348ABD", lw=0.2)
        ax.set_title("initial weights" if epoch == 0 else f"after epoch {epoch}", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default="NeuPy")
    parser.add_argument("--figure", help="where to draw the maps (a .png)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x = text_points(args.text)
    init = sine_wave(ROWS, COLS, x.min(axis=0), x.max(axis=0), TURNS)
    som = SOFM(ROWS, COLS, neighbourhood="bubble", init=init)
    rng, step, radius = np.random.default_rng(args.seed), InverseTime(0.05, 10), StepDown(10, 1)
    print(f"{args.text!r}: {len(x)} points, a {ROWS} x {COLS} map")
    print(f"  initial: {coverage(x, init)}")
    maps, start = {0: init}, time.perf_counter()
    for epoch in range(1, EPOCHS + 1):  # the article's loop: train(data, epochs=1)
        som.fit(x, 1, rng, step=step, radius=radius, batch_size=1, resume=True)
        weights = som.weights if som.weights is not None else init
        if epoch in SHOWN:
            maps[epoch] = weights
        if epoch in REPORTED:
            print(f"  epoch {epoch:2d}: {coverage(x, weights)}")
    print(f"  {EPOCHS} epochs in {time.perf_counter() - start:.0f} s")
    if args.figure:
        draw(x, maps, args.figure)


if __name__ == "__main__":
    main()

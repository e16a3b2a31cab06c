"""The bundled data sets: MNIST digits and Boston house prices, read from ``models/data``.

Every file is checked against its sha256 the first time a process reads it
(the figures are those of ``models/data/README.md``), so a truncated install
fails loudly instead of training on garbage. Decoded raw arrays are cached per
process and read-only; every loader call returns fresh float32 arrays that the
caller owns.

Features are always ``x = (raw - x_mean) / x_std`` with ``x_mean`` and
``x_std`` computed on the training split actually returned, and kept in the
``Dataset`` so the mapping can be undone. "raw" is pixel intensity in [0, 1]
for MNIST (``x_std`` is all ones: centred only) and the CSV's own units for
Boston (standardized by default; min-max scaled or raw on request, when
``x_mean`` and ``x_std`` hold the minimum and range, or zeros and ones).
Targets are never scaled.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"

# sha256 of each file as shipped (the .gz for MNIST), from models/data/README.md
CHECKSUMS = {
    "mnist/train-images-idx3-ubyte.gz": (
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"
    ),
    "mnist/train-labels-idx1-ubyte.gz": (
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203"
    ),
    "mnist/t10k-images-idx3-ubyte.gz": (
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be"
    ),
    "mnist/t10k-labels-idx1-ubyte.gz": (
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b"
    ),
    "boston/boston_house_prices.csv": (
        "04ea3ed0aa63691cfedf388349eafc1213e91e00f8e4d31747534692c0f1ce02"
    ),
}

IDX_IMAGES = 2051  # magic: 0x00000803, uint8 data with 3 dimensions (count, rows, cols)
IDX_LABELS = 2049  # magic: 0x00000801, uint8 data with 1 dimension (count)
MNIST_TRAIN = 60_000
MNIST_SIDE = 28
BOSTON_ROWS = 506


class DatasetError(ValueError):
    """A bundled data file is missing, corrupted or not in the expected format."""


@dataclass(frozen=True, eq=False)
class Split:
    x: np.ndarray  # (n, d) float32
    y: np.ndarray  # (n,) int64 class labels (MNIST) or float32 targets (Boston)

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, eq=False)
class Dataset:
    train: Split
    valid: Split  # may be empty (0 rows), never None
    test: Split | None  # None where the data set has no standard test split (Boston)
    feature_names: tuple[str, ...]  # (d,)
    x_mean: np.ndarray  # (d,) float64, subtracted from raw features (training split; the
    # minimum under min-max scaling)
    x_std: np.ndarray  # (d,) float64, then divided by (the range under min-max scaling);
    # ones where features are only centred


# -- checksums ---------------------------------------------------------------


def verify(path: str | Path, sha256: str) -> None:
    """Raise DatasetError unless the file's sha256 is `sha256`; each file is hashed once."""
    _verify(Path(path).resolve(), sha256.lower())


@functools.cache  # a failed check raises, and exceptions are not cached: it is retried
def _verify(path: Path, sha256: str) -> None:
    try:
        with path.open("rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error}; reinstall the package") from error
    if actual != sha256:
        raise DatasetError(
            f"checksum mismatch for {path}: expected sha256 {sha256}, got {actual}; "
            "the file is corrupted or truncated, reinstall the package"
        )


def _bundled(name: str) -> Path:
    path = DATA / name
    verify(path, CHECKSUMS[name])
    return path


# -- MNIST -------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Decode a gzipped IDX file of uint8: (count, rows, cols) images or (count,) labels.

    The header is big-endian: a 4-byte magic, then one 4-byte size per dimension.
    The returned array is a read-only view of the decompressed bytes.
    """
    buffer = gzip.decompress(Path(path).read_bytes())
    magic = int.from_bytes(buffer[:4], "big")
    if magic not in (IDX_IMAGES, IDX_LABELS):
        raise DatasetError(f"{path}: IDX magic {magic}, expected {IDX_IMAGES} or {IDX_LABELS}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    shape = tuple(int(size) for size in np.frombuffer(buffer, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape))
    if len(buffer) != expected:
        raise DatasetError(f"{path}: {len(buffer)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(buffer, np.uint8, offset=header).reshape(shape)


@functools.cache
def _mnist_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train images (60000, 784), train labels, test images (10000, 784), test labels: uint8."""
    arrays = []
    for part in ("train", "t10k"):
        images = read_idx(_bundled(f"mnist/{part}-images-idx3-ubyte.gz"))
        labels = read_idx(_bundled(f"mnist/{part}-labels-idx1-ubyte.gz"))
        if images.ndim != 3 or images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
            raise DatasetError(f"MNIST {part} images have shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images) or labels.max() > 9:
            raise DatasetError(f"MNIST {part} labels do not match the images")
        arrays += [images.reshape(len(images), -1), labels]  # views of read-only bytes
    train_images, train_labels, test_images, test_labels = arrays
    return train_images, train_labels, test_images, test_labels


def _mnist_indices(validation: int, seed: int, subset: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the training and validation images, both sorted."""
    if not 0 <= validation < MNIST_TRAIN:
        raise ValueError(f"validation must be in [0, {MNIST_TRAIN}), got {validation}")
    available = MNIST_TRAIN - validation
    if subset is not None and not 1 <= subset <= available:
        raise ValueError(f"subset must be in [1, {available}], got {subset}")
    order = np.random.default_rng(seed).permutation(MNIST_TRAIN)
    # the validation images come first, so `subset` never changes the validation split
    valid, train = order[:validation], order[validation:]
    if subset is not None:
        train = train[:subset]
    return np.sort(train), np.sort(valid)


def _pixels(images: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """uint8 images (n, 784) -> float32 in [0, 1], centred by `mean`; one float copy."""
    x = images.astype(np.float32)
    x /= 255  # division, not * (1/255): 255/255 must be exactly 1
    x -= mean.astype(np.float32)
    return x


def load_mnist(validation: int = 10_000, seed: int = 0, subset: int | None = None) -> Dataset:
    """MNIST digits, flattened to 784 features centred by the training split's pixel means.

    `validation` images of the 60,000 go to a seeded random validation split
    (0 -> empty); `subset` keeps only that many of the remaining training
    images (random, same seed) for quick runs. The test split is the standard
    10,000. Labels are int64.
    """
    train_images, train_labels, test_images, test_labels = _mnist_raw()
    train, valid = _mnist_indices(validation, seed, subset)
    images = train_images[train]  # (n, 784) uint8
    # exact integer sum: a float32 running sum over 50,000 rows would drift
    mean = images.sum(axis=0, dtype=np.int64) / (255 * len(images))  # (784,) float64
    return Dataset(
        train=Split(_pixels(images, mean), train_labels[train].astype(np.int64)),
        valid=Split(_pixels(train_images[valid], mean), train_labels[valid].astype(np.int64)),
        test=Split(_pixels(test_images, mean), test_labels.astype(np.int64)),
        feature_names=tuple(f"pixel{i}" for i in range(1, MNIST_SIDE**2 + 1)),
        x_mean=mean,
        x_std=np.ones_like(mean),
    )


# -- Boston house prices -----------------------------------------------------


@functools.cache
def _boston_raw() -> tuple[tuple[str, ...], np.ndarray]:
    """Column names and the (506, 14) float64 table, target MEDV last; read-only."""
    path = _bundled("boston/boston_house_prices.csv")
    with path.open(newline="") as f:
        names = tuple(next(csv.reader(f)))
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if table.shape != (BOSTON_ROWS, len(names)) or names[-1] != "MEDV":
        raise DatasetError(f"{path}: table of shape {table.shape} with columns {names}")
    table.setflags(write=False)
    return names, table


SCALINGS = ("standard", "minmax", "none")


def load_boston(
    validation: float = 0.15,
    seed: int = 0,
    drop_b: bool = False,
    scaling: str = "standard",
    test: float = 0.0,
) -> Dataset:
    """Boston house prices: 13 features (12 with `drop_b`), target MEDV in $1000s.

    Seeded random fractions of the 506 rows are held out: first `test` (the
    test split, None when 0), then `validation` (the article used 85/15 and
    no test split). The test rows do not depend on `validation`, and with
    `test` 0 the validation rows are those `test` would hold: the rows a
    model is scored on can stay the same while an inner validation split is
    carved out for early stopping.

    Features are scaled by the training rows' statistics: "standard" (mean
    and std), "minmax" (to [0, 1] by their minimum and maximum; the article
    fitted its scaler on all 506 rows) or "none". Feature B encodes the
    proportion of Black residents by town: see models/data/README.md.
    """
    n_test, n_valid = _boston_sizes(validation, test)
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; expected one of {', '.join(SCALINGS)}")
    names, table = _boston_raw()
    features = [i for i, name in enumerate(names[:-1]) if not (drop_b and name == "B")]
    order = np.random.default_rng(seed).permutation(BOSTON_ROWS)
    test_rows = np.sort(order[:n_test])
    valid = np.sort(order[n_test : n_test + n_valid])
    train = np.sort(order[n_test + n_valid :])
    x = table[:, features]  # (506, d) float64, a fresh copy
    y = table[:, -1].astype(np.float32)  # (506,) MEDV in $1000s
    shift, scale = _feature_scaling(x[train], scaling)  # (d,), (d,)
    x = ((x - shift) / scale).astype(np.float32)
    return Dataset(
        train=Split(x[train], y[train]),
        valid=Split(x[valid], y[valid]),
        test=Split(x[test_rows], y[test_rows]) if n_test else None,
        feature_names=tuple(names[i] for i in features),
        x_mean=shift,
        x_std=scale,
    )


def _boston_sizes(validation: float, test: float) -> tuple[int, int]:
    """Rows of the test and validation splits; at least one row is left to train on."""
    for name, fraction in (("validation", validation), ("test", test)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {fraction}")
    n_test, n_valid = round(test * BOSTON_ROWS), round(validation * BOSTON_ROWS)
    if n_test + n_valid >= BOSTON_ROWS:
        raise ValueError(
            f"validation + test must leave rows to train on, got {validation} + {test}"
        )
    return n_test, n_valid


def _feature_scaling(x: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) (d,) each from the training rows x (n, d): x -> (x - shift) / scale."""
    d = x.shape[1]
    if scaling == "none":
        return np.zeros(d), np.ones(d)
    if scaling == "minmax":
        shift, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
    else:
        shift, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1  # a feature constant on the training rows is only shifted
    return shift, scale

"""models.datasets against the figures in models/data/README.md: checksums, shapes, counts."""

from __future__ import annotations

import ast
import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from models import datasets
from models.datasets import CHECKSUMS, DATA, Dataset, DatasetError, load_boston, load_mnist

README = (DATA / "README.md").read_text()
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
BOSTON_NAMES = (
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
)


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_mnist()  # decoding takes a fraction of a second: once per module


def write_idx(path: Path, magic: int, shape: tuple[int, ...], data: bytes) -> Path:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    path.write_bytes(gzip.compress(header + data))
    return path


# -- checksums and the IDX reader ---------------------------------------------


@pytest.mark.parametrize("name", sorted(CHECKSUMS))
def test_shipped_files_match_their_checksums(name: str) -> None:
    datasets.verify(DATA / name, CHECKSUMS[name])
    assert CHECKSUMS[name] in README  # the code and the README state the same figure


def test_corrupted_copy_raises_dataset_error(tmp_path: Path) -> None:
    name = "mnist/t10k-labels-idx1-ubyte.gz"
    copy = tmp_path / "t10k-labels-idx1-ubyte.gz"
    shutil.copyfile(DATA / name, copy)
    corrupted = bytearray(copy.read_bytes())
    corrupted[100] ^= 0xFF
    copy.write_bytes(bytes(corrupted))
    with pytest.raises(DatasetError, match=r"t10k-labels.*expected sha256.*reinstall") as info:
        datasets.verify(copy, CHECKSUMS[name])
    assert CHECKSUMS[name] in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_raises_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="reinstall"):
        datasets.verify(tmp_path / "absent.gz", "0" * 64)


def test_read_idx_decodes_images_and_labels(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "i.gz", 2051, (2, 3, 4), bytes(range(24)))
    labels = write_idx(tmp_path / "l.gz", 2049, (3,), bytes([7, 0, 9]))
    np.testing.assert_array_equal(datasets.read_idx(images), np.arange(24).reshape(2, 3, 4))
    np.testing.assert_array_equal(datasets.read_idx(labels), [7, 0, 9])


def test_read_idx_rejects_bad_magic_and_truncated_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="magic"):
        datasets.read_idx(write_idx(tmp_path / "m.gz", 2052, (1,), b"\x00"))
    with pytest.raises(DatasetError, match="expected"):
        datasets.read_idx(write_idx(tmp_path / "t.gz", 2051, (2, 3, 4), bytes(23)))


def test_datasets_module_does_not_import_hpo() -> None:
    tree = ast.parse(Path(datasets.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name and name.split(".")[0] == "hpo" for name in imported)


# -- MNIST ----------------------------------------------------------------------


def test_mnist_shapes_and_dtypes(mnist: Dataset) -> None:
    for split, n in ((mnist.train, 50_000), (mnist.valid, 10_000), (mnist.test, 10_000)):
        assert split.x.shape == (n, 784)
        assert split.x.dtype == np.float32
        assert split.y.shape == (n,)
        assert split.y.dtype == np.int64
        assert len(split) == n
    assert len(mnist.feature_names) == 784
    assert mnist.x_mean.shape == mnist.x_std.shape == (784,)


def test_mnist_class_counts_match_the_readme(mnist: Dataset) -> None:
    assert re.search(" ".join(map(str, TRAIN_COUNTS)), " ".join(README.split()))
    train_and_valid = np.concatenate([mnist.train.y, mnist.valid.y])
    assert np.bincount(train_and_valid).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test.y).tolist() == TEST_COUNTS


def test_mnist_pixels_in_unit_range_and_centred_by_training_mean(mnist: Dataset) -> None:
    np.testing.assert_array_equal(mnist.x_std, 1)
    assert mnist.x_mean.min() >= 0
    assert mnist.x_mean.max() <= 1
    for split in (mnist.train, mnist.valid, mnist.test):
        raw = split.x + mnist.x_mean.astype(np.float32)  # (n, 784) back in [0, 1]
        assert raw.min() >= -1e-6
        assert raw.max() <= 1 + 1e-6
    assert np.abs(mnist.train.x.mean(axis=0, dtype=np.float64)).max() < 1e-6
    # the mean is the training split's only: the valid split's differs measurably
    assert np.abs(mnist.valid.x.mean(axis=0, dtype=np.float64)).max() > 1e-3


def test_mnist_returns_fresh_arrays_and_keeps_its_cache_read_only(mnist: Dataset) -> None:
    for raw in datasets._mnist_raw():
        assert not raw.flags.writeable
    again = load_mnist(subset=10)
    again.valid.x[:] = 99
    again.valid.y[:] = 99
    np.testing.assert_array_equal(load_mnist(subset=10).valid.y, mnist.valid.y)
    assert mnist.valid.x.max() < 2


def test_mnist_validation_split_is_seeded_and_disjoint_from_train() -> None:
    train, valid = datasets._mnist_indices(10_000, 0, None)
    assert len(np.intersect1d(train, valid)) == 0
    assert len(np.union1d(train, valid)) == 60_000
    same = load_mnist(seed=3, subset=20)
    np.testing.assert_array_equal(same.valid.y, load_mnist(seed=3, subset=20).valid.y)
    np.testing.assert_array_equal(same.train.x, load_mnist(seed=3, subset=20).train.x)
    other = load_mnist(seed=4, subset=20)
    assert not np.array_equal(same.valid.y, other.valid.y)


def test_mnist_subset_keeps_the_validation_split(mnist: Dataset) -> None:
    small = load_mnist(subset=500)
    assert small.train.x.shape == (500, 784)
    assert len(np.unique(small.train.y)) == 10
    np.testing.assert_array_equal(small.valid.y, mnist.valid.y)
    assert np.abs(small.train.x.mean(axis=0, dtype=np.float64)).max() < 1e-6


def test_mnist_without_validation_has_an_empty_valid_split() -> None:
    full = load_mnist(validation=0, subset=100)  # subset keeps it fast; valid is what we check
    assert full.valid.x.shape == (0, 784)
    assert full.valid.y.shape == (0,)
    assert len(datasets._mnist_indices(0, 0, None)[0]) == 60_000


@pytest.mark.parametrize(
    "kwargs", [{"validation": -1}, {"validation": 60_000}, {"subset": 0}, {"subset": 50_001}]
)
def test_mnist_rejects_impossible_splits(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be in"):
        load_mnist(**kwargs)


# -- Boston ---------------------------------------------------------------------


def test_boston_shapes_names_and_target() -> None:
    data = load_boston()
    assert len(data.train) + len(data.valid) == 506
    assert len(data.valid) == round(0.15 * 506)
    assert data.test is None
    assert data.feature_names == BOSTON_NAMES
    for split in (data.train, data.valid):
        assert split.x.dtype == split.y.dtype == np.float32
        assert split.x.shape == (len(split), 13)
        assert split.y.shape == (len(split),)
    medv = np.concatenate([data.train.y, data.valid.y])  # median value in $1000s
    assert medv.min() == pytest.approx(5.0)
    assert medv.max() == pytest.approx(50.0)
    assert 20 < medv.mean() < 25


def test_boston_drop_b_removes_the_b_column_by_name() -> None:
    full, dropped = load_boston(scaling="none"), load_boston(drop_b=True, scaling="none")
    assert "B" not in dropped.feature_names
    assert dropped.feature_names == tuple(n for n in BOSTON_NAMES if n != "B")
    keep = [BOSTON_NAMES.index(n) for n in dropped.feature_names]
    np.testing.assert_array_equal(dropped.train.x, full.train.x[:, keep])
    assert dropped.x_mean.shape == (12,)


def test_boston_standardizes_with_training_statistics_only() -> None:
    raw, scaled = load_boston(scaling="none"), load_boston()
    np.testing.assert_array_equal(raw.x_mean, 0)
    np.testing.assert_array_equal(raw.x_std, 1)
    np.testing.assert_allclose(scaled.x_mean, raw.train.x.mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(scaled.x_std, raw.train.x.std(axis=0, dtype=np.float64), rtol=1e-5)
    np.testing.assert_allclose(scaled.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.train.x.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(
        scaled.valid.x * scaled.x_std + scaled.x_mean, raw.valid.x, rtol=1e-5, atol=1e-4
    )
    np.testing.assert_array_equal(scaled.train.y, raw.train.y)  # the target is never scaled


def test_boston_split_is_seeded() -> None:
    np.testing.assert_array_equal(load_boston(seed=1).valid.y, load_boston(seed=1).valid.y)
    assert not np.array_equal(load_boston(seed=1).valid.y, load_boston(seed=2).valid.y)
    assert len(load_boston(validation=0).valid) == 0
    with pytest.raises(ValueError, match="fraction"):
        load_boston(validation=1.0)


def test_boston_min_max_scales_the_training_rows_into_the_unit_interval() -> None:
    raw, scaled = load_boston(scaling="none"), load_boston(scaling="minmax")
    np.testing.assert_allclose(scaled.train.x.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled.train.x.max(axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(scaled.x_mean, raw.train.x.min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        scaled.valid.x * scaled.x_std + scaled.x_mean, raw.valid.x, rtol=1e-5, atol=1e-4
    )
    with pytest.raises(ValueError, match="unknown scaling 'robust'"):
        load_boston(scaling="robust")


def test_boston_test_split_keeps_the_scored_rows_apart_from_train_and_validation() -> None:
    """With `test`, the rows the default split validates on become the test rows, and a
    validation split (for early stopping) comes out of the rest: three disjoint splits."""
    default, inner = load_boston(), load_boston(validation=0.15, test=0.15)
    assert inner.test is not None and len(inner.test) == len(default.valid) == 76
    np.testing.assert_array_equal(inner.test.y, default.valid.y)  # the same scored rows
    assert len(inner.train) + len(inner.valid) + len(inner.test) == 506
    assert len(inner.valid) == 76 and len(inner.train) == 354
    raw = load_boston(validation=0.15, test=0.15, scaling="none")
    assert raw.test is not None
    rows = [tuple(r) for split in (raw.train, raw.valid, raw.test) for r in split.x]
    assert len(set(rows)) == len(rows) == 506  # disjoint (Boston has no duplicate rows)
    # statistics from the 354 training rows only
    np.testing.assert_allclose(inner.x_mean, raw.train.x.mean(axis=0, dtype=np.float64), rtol=1e-6)
    assert load_boston(test=0.2).test is not None and len(load_boston(test=0.2).test) == 101


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"test": 1.0}, "test must be a fraction"),
        ({"test": -0.1}, "test must be a fraction"),
        ({"validation": 0.5, "test": 0.5}, "must leave rows to train on"),
    ],
)
def test_boston_impossible_splits_raise(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        load_boston(**options)

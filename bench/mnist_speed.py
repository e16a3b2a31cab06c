"""Speed and memory of the MNIST network: models.MLP against PyTorch, in one run.

One epoch of 784-500-300-10 ReLU, softmax cross-entropy, Nesterov momentum
0.99, step 0.01, batch 128 over the 60,000 MNIST training images, timed for
NumPy (`models`) and for the same network in PyTorch on the CPU, in turns
(NumPy, PyTorch, NumPy, ...) so that both see the same machine; the medians
and the median of the run-by-run ratios are printed. PyTorch is only the
yardstick (pip install torch); without it the ratio is skipped with a note.
Then the peak resident memory of a fresh process that loads MNIST and trains
one epoch.

Targets (issue 5): NumPy at most 1.15x PyTorch's epoch time; peak below 1 GiB.

    python bench/mnist_speed.py              # 5 epochs each
    python bench/mnist_speed.py --runs 3
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time

import numpy as np

from models.datasets import load_mnist
from models.mlp import MLP
from models.optimizers import Momentum
from models.training import train

SIZES = [784, 500, 300, 10]
TARGET_RATIO = 1.15
TARGET_PEAK_MIB = 1024


def numpy_epoch(
    x: np.ndarray, y: np.ndarray, net: MLP, optimizer: Momentum, rng: np.random.Generator
) -> float:
    start = time.perf_counter()
    train(net, x, y, optimizer, 1, rng, batch_size=128)
    return time.perf_counter() - start


def torch_setup(x: np.ndarray, y: np.ndarray) -> tuple:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 500),
        torch.nn.ReLU(),
        torch.nn.Linear(500, 300),
        torch.nn.ReLU(),
        torch.nn.Linear(300, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.99, nesterov=True)
    return torch, model, optimizer, torch.from_numpy(x), torch.from_numpy(y)


def torch_epoch(setup: tuple) -> float:
    torch, model, optimizer, x, y = setup
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    order = torch.randperm(len(x))
    for first in range(0, len(x), 128):
        batch = order[first : first + 128]
        optimizer.zero_grad()
        loss_fn(model(x[batch]), y[batch]).backward()
        optimizer.step()
    return time.perf_counter() - start


PEAK_CHILD = """
import resource, numpy as np
from models.datasets import load_mnist
from models.mlp import MLP
from models.optimizers import Momentum
from models.training import train
data = load_mnist(validation=0)
rng = np.random.default_rng(0)
net = MLP([784, 500, 300, 10], rng)
train(net, data.train.x, data.train.y, Momentum(0.01, 0.99, nesterov=True), 1, rng,
      valid=(data.test.x, data.test.y))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_mib() -> float:
    """Peak resident memory (MiB) of a process that loads MNIST and trains an epoch."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[-1]) / 1024  # Linux reports kilobytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="epochs timed for each")
    args = parser.parse_args()

    data = load_mnist(validation=0)
    x, y = data.train.x, data.train.y
    rng = np.random.default_rng(0)
    net = MLP(SIZES, rng)
    optimizer = Momentum(0.01, 0.99, nesterov=True)
    has_torch = importlib.util.find_spec("torch") is not None
    setup = torch_setup(x, y) if has_torch else None
    if not has_torch:
        print("torch is not installed: no PyTorch yardstick (pip install torch)", file=sys.stderr)
    numpy_epoch(x, y, net, optimizer, rng)  # warm-up: buffers, BLAS threads
    if setup:
        torch_epoch(setup)
    ours, theirs = [], []
    for run in range(args.runs):
        ours.append(numpy_epoch(x, y, net, optimizer, rng))
        if setup:
            theirs.append(torch_epoch(setup))
        print(
            f"  run {run + 1}/{args.runs}: numpy {ours[-1]:.2f} s"
            + (f", torch {theirs[-1]:.2f} s" if setup else ""),
            file=sys.stderr,
        )

    ok = True
    print(
        f"\nOne MNIST epoch, 784-500-300-10 ReLU, Nesterov momentum, batch 128 "
        f"({args.runs} runs, median [min - max]):"
    )
    print(f"  numpy (models)  {statistics.median(ours):.3f} s  [{min(ours):.3f} - {max(ours):.3f}]")
    if setup:
        print(
            f"  pytorch         {statistics.median(theirs):.3f} s  "
            f"[{min(theirs):.3f} - {max(theirs):.3f}]  (torch {setup[0].__version__}, "
            f"{setup[0].get_num_threads()} threads)"
        )
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        ok &= ratio <= TARGET_RATIO
        print(
            f"  numpy / pytorch, run by run: median {ratio:.3f} "
            f"({'meets' if ratio <= TARGET_RATIO else 'MISSES'} the target of "
            f"{TARGET_RATIO})"
        )
    peak = peak_mib()
    ok &= peak < TARGET_PEAK_MIB
    print(
        f"Peak resident memory, loading MNIST and training one epoch: {peak:.0f} MiB "
        f"({'meets' if peak < TARGET_PEAK_MIB else 'MISSES'} the target of "
        f"{TARGET_PEAK_MIB} MiB)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy of the bundled networks against the source articles' results.

- MNIST: 784-500-300-10 ReLU, Nesterov momentum 0.99, step 0.01, batch 128,
  trained on the 60,000 training images for 10 epochs; test accuracy after
  each epoch. Target: at least 98.0% within 10 epochs (the article: 98.37%).
- Boston: 13-50-1 sigmoid network, Levenberg-Marquardt, 85/15 split,
  standardized targets, early stopping on the validation loss, at most 30
  epochs; validation RMSLE on prices in $1000s, for the default split and
  over ten seeded splits. Target: at most 0.18 (the article: ~0.18).

    python bench/network_accuracy.py
    python bench/network_accuracy.py --skip-mnist --mu 0.01   # Hagan & Menhaj's damping
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

from models.datasets import load_boston, load_mnist
from models.lm import LevenbergMarquardt
from models.mlp import MLP
from models.optimizers import Momentum
from models.training import EarlyStopping, Epoch, train

TARGET_MNIST = 0.980
TARGET_RMSLE = 0.18


def mnist(epochs: int = 10, seed: int = 0) -> list[float]:
    """Test accuracy after each epoch."""
    data = load_mnist(validation=0)
    rng = np.random.default_rng(seed)
    net = MLP([784, 500, 300, 10], rng)
    accuracies: list[float] = []

    def evaluate(epoch: Epoch) -> None:
        accuracies.append(float(np.mean(net.predict(data.test.x).argmax(1) == data.test.y)))
        print(
            f"  epoch {epoch.epoch}: train loss {epoch.train_loss:.4f}, "
            f"test accuracy {accuracies[-1]:.4f} ({epoch.seconds:.2f} s)",
            file=sys.stderr,
        )

    train(
        net,
        data.train.x,
        data.train.y,
        Momentum(0.01, 0.99, nesterov=True),
        epochs,
        rng,
        batch_size=128,
        callback=evaluate,
    )
    return accuracies


def boston_rmsle(seed: int, mu: float, epochs: int = 30) -> tuple[float, int]:
    """Validation RMSLE of the LM-trained 13-50-1 sigmoid network, and its best epoch."""
    data = load_boston(seed=seed)
    mean, scale = data.train.y.mean(), data.train.y.std()
    rng = np.random.default_rng(seed)
    net = MLP([data.train.x.shape[1], 50, 1], rng, activation="sigmoid", loss="mse")
    history = train(
        net,
        data.train.x,
        (data.train.y - mean) / scale,
        LevenbergMarquardt(mu),
        epochs,
        rng,
        valid=(data.valid.x, (data.valid.y - mean) / scale),
        early_stopping=EarlyStopping(patience=5),
    )
    predicted = net.predict(data.valid.x)[:, 0] * scale + mean
    rmsle = np.sqrt(np.mean((np.log1p(np.maximum(predicted, 0)) - np.log1p(data.valid.y)) ** 2))
    return float(rmsle), history.best_epoch or 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--mu", type=float, default=1.0, help="initial LM damping")
    args = parser.parse_args()
    ok = True
    if not args.skip_mnist:
        accuracies = mnist()
        best = max(accuracies)
        ok &= best >= TARGET_MNIST
        print(
            f"MNIST 784-500-300-10: test accuracy by epoch "
            f"{' '.join(f'{a:.4f}' for a in accuracies)}; best {best:.4f} at epoch "
            f"{accuracies.index(best) + 1} ({'meets' if best >= TARGET_MNIST else 'MISSES'} "
            f"the target of {TARGET_MNIST})"
        )
    results = [boston_rmsle(seed, args.mu) for seed in range(10)]
    default, best_epoch = results[0]
    values = [r for r, _ in results]
    ok &= default <= TARGET_RMSLE
    print(
        f"Boston 13-50-1 sigmoid, Levenberg-Marquardt (mu {args.mu:g}): validation RMSLE "
        f"{default:.3f} on the "
        f"default split (best epoch {best_epoch}); over splits 0-9 mean "
        f"{statistics.fmean(values):.3f}, median {statistics.median(values):.3f}, "
        f"range {min(values):.3f}-{max(values):.3f} "
        f"({'meets' if default <= TARGET_RMSLE else 'MISSES'} the target of {TARGET_RMSLE})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

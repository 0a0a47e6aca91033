"""A multilayer perceptron trained in plain NumPy on scikit-learn's digits, with fastact's activations.

The network is 64 -> 256 -> 256 -> 10 with GELU hidden layers, trained with
mini-batch SGD and momentum on a cross-entropy loss. NumPy does the matrix
products; fastact does every activation, forward and backward, and the loss
(``log_softmax`` and ``log_softmax_backward`` from its output). The same
training is then run again with ``fastact.use_backend("numpy")`` -- the NumPy
reference -- to time it against the default (fastest available) backend.

The digits dataset ships inside scikit-learn (no download)::

    pip install scikit-learn
    python examples/mlp_digits.py              # 20 epochs, both backends: ~15 s on 2 cores
    python examples/mlp_digits.py --epochs 5   # a quick one

It prints the test accuracy, and the training time and the time spent in
fastact calls for both backends.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastact


def load(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel values 0..16
    x -= x.mean(axis=0)
    return train_test_split(x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)


class Timer:
    """Adds up the wall time spent inside fastact calls."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, fn, *args, **kwargs):
        t0 = time.perf_counter()
        r = fn(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        return r


def init(sizes, rng):
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.standard_normal((n_in, n_out)).astype(np.float32) * np.float32(np.sqrt(2.0 / n_in))
        params.append([w, np.zeros(n_out, np.float32)])
    return params


def forward(params, x, act: str, t: Timer):
    """Returns the log-probabilities and what the backward needs (each layer's input and pre-activation)."""
    cache = []
    h = x
    for i, (w, b) in enumerate(params):
        z = h @ w + b
        cache.append((h, z))
        h = t(fastact.forward, act, z) if i < len(params) - 1 else z
    logp = t(fastact.log_softmax, h, axis=-1)
    return logp, cache


def train(x_tr, y_tr, epochs: int, batch: int, lr: float, act: str, seed: int):
    rng = np.random.default_rng(seed)
    params = init([x_tr.shape[1], 256, 256, 10], rng)
    velocity = [[np.zeros_like(w), np.zeros_like(b)] for w, b in params]
    t = Timer()
    n = len(x_tr)
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            xb, yb = x_tr[idx], y_tr[idx]
            logp, cache = forward(params, xb, act, t)
            # cross-entropy: L = -mean(logp[i, y_i]); dL/dlogp = -onehot / batch
            g = np.zeros_like(logp)
            g[np.arange(len(yb)), yb] = -1.0 / len(yb)
            g = t(fastact.log_softmax_backward, g, y=logp, axis=-1)
            for i in range(len(params) - 1, -1, -1):
                h, z = cache[i]
                if i < len(params) - 1:
                    g = t(fastact.backward, act, g, z)
                w, b = params[i]
                gw, gb = h.T @ g, g.sum(axis=0)
                g = g @ w.T
                for p, v, d in ((w, velocity[i][0], gw), (b, velocity[i][1], gb)):
                    v *= 0.9
                    v -= lr * d
                    p += v
    return params, t.seconds


def accuracy(params, x, y, act: str) -> float:
    logp, _ = forward(params, x, act, Timer())
    return float((logp.argmax(axis=1) == y).mean())


def run(backend: str | None, args, data):
    x_tr, x_te, y_tr, y_te = data
    ctx = fastact.use_backend(backend) if backend else fastact.use_backend(fastact.get_backend())
    with ctx:
        name = fastact.get_backend()
        # one untimed step so that JIT compilation (numba) is not counted
        train(x_tr[:64], y_tr[:64], 1, 64, args.lr, args.activation, args.seed)
        t0 = time.perf_counter()
        params, act_seconds = train(x_tr, y_tr, args.epochs, args.batch, args.lr, args.activation, args.seed)
        total = time.perf_counter() - t0
        acc = accuracy(params, x_te, y_te, args.activation)
    return name, acc, total, act_seconds


def _one_blas_thread():
    """The matrices here are small: BLAS threads gain nothing and, on a busy
    machine, spinning BLAS threads competing with fastact's made training 5x
    slower in our runs. threadpoolctl comes with scikit-learn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return None
    return threadpool_limits(1, user_api="blas")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--activation", default="gelu", help="any elementwise fastact activation (default gelu)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-compare", action="store_true", help="skip the second run with the NumPy reference")
    args = ap.parse_args(argv)

    limits = _one_blas_thread()  # noqa: F841 - held for the run
    data = load(args.seed)
    print(f"digits: {len(data[0])} train, {len(data[1])} test images; MLP 64-256-256-10, "
          f"{args.activation}, {args.epochs} epochs, batch {args.batch}")
    runs = [run(None, args, data)]
    if not args.no_compare:
        runs.append(run("numpy", args, data))
    for name, acc, total, act in runs:
        print(f"backend {name:>6}: test accuracy {acc:.4f}   training {total:6.2f} s, of which fastact calls {act:6.2f} s")
    if len(runs) == 2:
        (_, _, t_fast, a_fast), (_, _, t_ref, a_ref) = runs
        print(f"speed-up over the NumPy reference: training x{t_ref / t_fast:.2f}, activations x{a_ref / a_fast:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

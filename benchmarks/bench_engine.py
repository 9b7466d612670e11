"""Engine benchmark: tinyprune against an equivalent PyTorch CPU model, same process, same threads.

Cases (float32, random data; medians of ``--repeats`` timed runs after warm-up; tinyprune and
torch are timed in alternating blocks so that drift in the machine's speed affects both alike):

* ``train_b64`` / ``train_b128``: one training step of the lecture net (forward in training mode,
  softmax cross-entropy, backward without the input gradient, SGD with momentum 0.9).
* ``infer_b1000``: lecture net forward pass in inference mode on 1000 images.
* ``mlp_train_b128``: one training step of LeNet-300-100.

The torch models are ``torch.nn`` modules with PyTorch's default (NCHW) layout and
``torch.optim.SGD``; ``torch.set_num_threads(threads)``. NumPy's BLAS is limited with threadpoolctl.
A ratio is ``tinyprune_ms / torch_ms`` (below 1 means tinyprune is faster). Each case also reports
``ratio_of_minima`` (fastest run against fastest run), which a noisy machine disturbs less.

Usage::

    python benchmarks/bench_engine.py [--json] [--repeats 40] [--rounds 8] [--quick] [--threads 2]

``--json`` prints one JSON object with the ratios under ``train_b64_ratio``, ``train_b128_ratio``,
``infer_b1000_ratio`` and ``mlp_train_b128_ratio``, plus the raw times and images per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from tinyprune.nn import lecture_net, lenet_300_100
from tinyprune.nn.losses import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from tinyprune.nn.optim import SGD

LR, MOMENTUM = 0.01, 0.9


# ------------------------------------------------------------------------------------- tinyprune


def tp_train_step(model, opt):
    def step(x, y):
        logits = model.forward(x, train=True)  # (N, 10)
        _, cache = softmax_cross_entropy_forward(logits, y)
        model.backward(softmax_cross_entropy_backward(cache), need_input_grad=False)
        opt.step(model.grads)
    return step


def tp_cases(data):
    net = lecture_net(seed=0)
    mlp = lenet_300_100(seed=0)
    net_step = tp_train_step(net, SGD(net.params, lr=LR, momentum=MOMENTUM))
    mlp_step = tp_train_step(mlp, SGD(mlp.params, lr=LR, momentum=MOMENTUM))
    return {
        "train_b64": lambda: net_step(*data["train_b64"]),
        "train_b128": lambda: net_step(*data["train_b128"]),
        "infer_b1000": lambda: net.forward(data["infer_b1000"][0], train=False),
        "mlp_train_b128": lambda: mlp_step(*data["mlp_train_b128"]),
    }


# ----------------------------------------------------------------------------------------- torch


def torch_cases(data, threads):
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                        nn.ReLU(), nn.Linear(100, 10))
    tdata = {k: (torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))
             for k, (x, y) in data.items()}

    def train_step(model):
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

        def step(x, y):
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return step

    def infer(x):
        net.eval()
        with torch.no_grad():
            return net(x)

    net_step, mlp_step = train_step(net), train_step(mlp)
    return {
        "train_b64": lambda: net_step(*tdata["train_b64"]),
        "train_b128": lambda: net_step(*tdata["train_b128"]),
        "infer_b1000": lambda: infer(tdata["infer_b1000"][0]),
        "mlp_train_b128": lambda: mlp_step(*tdata["mlp_train_b128"]),
    }


# ------------------------------------------------------------------------------------- harness


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    sizes = {"train_b64": 64, "train_b128": 128, "infer_b1000": 1000, "mlp_train_b128": 128}
    return {k: (rng.standard_normal((n, 1, 28, 28)).astype(np.float32),
                rng.integers(0, 10, size=n))
            for k, n in sizes.items()}


def _time_ms(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _block(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    return [_time_ms(fn) for _ in range(repeats)]


def run(repeats, warmup, threads, rounds=8):
    """Time every case in alternating blocks: tinyprune, torch, tinyprune, torch...

    Blocks rather than single runs interleaved: NumPy's OpenBLAS threads and torch's OpenMP threads
    both spin for a while after a call, and alternating every call would make them fight over the
    cores and slow both down. Each block starts with its own warm-up.
    """
    data = make_data()
    tp = tp_cases(data)
    th = torch_cases(data, threads)
    per_round = max(1, -(-repeats // rounds))
    results = {}
    for case, batch in (("train_b64", 64), ("train_b128", 128), ("infer_b1000", 1000),
                        ("mlp_train_b128", 128)):
        t_tp, t_th = [], []
        for _ in range(rounds):
            t_tp += _block(tp[case], warmup, per_round)
            if th is not None:
                t_th += _block(th[case], warmup, per_round)
        ms_tp = statistics.median(t_tp)
        ms_th = statistics.median(t_th) if t_th else None
        results[case] = {
            "batch": batch,
            "tinyprune_ms": round(ms_tp, 3),
            "torch_ms": None if ms_th is None else round(ms_th, 3),
            "tinyprune_images_per_s": round(batch / ms_tp * 1e3, 1),
            "torch_images_per_s": None if ms_th is None else round(batch / ms_th * 1e3, 1),
            "ratio": None if ms_th is None else round(ms_tp / ms_th, 3),
            # the fastest run of each: less sensitive to a noisy neighbour than the median
            "tinyprune_min_ms": round(min(t_tp), 3),
            "torch_min_ms": round(min(t_th), 3) if t_th else None,
            "ratio_of_minima": round(min(t_tp) / min(t_th), 3) if t_th else None,
        }
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--repeats", type=int, default=40, help="timed runs per case (median)")
    p.add_argument("--quick", action="store_true", help="4 repeats, 1 warm-up (smoke run)")
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads")
    p.add_argument("--rounds", type=int, default=8,
                   help="alternating blocks per case (tinyprune, torch, tinyprune, ...)")
    args = p.parse_args(argv)
    repeats, warmup = (4, 1) if args.quick else (max(1, args.repeats), 3)

    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(args.threads):
        blas = [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads", "version")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
        results = run(repeats, warmup, args.threads, rounds=max(1, args.rounds))
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None

    report = {
        "threads": args.threads, "repeats": repeats, "numpy": np.__version__,
        "torch": torch_version, "blas": blas,
        **{f"{case}_ratio": r["ratio"] for case, r in results.items()},
        "cases": results,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"numpy {np.__version__}, torch {torch_version}, {args.threads} threads, "
          f"BLAS {blas}, median of {repeats}")
    print(f"{'case':<16} {'tinyprune ms':>13} {'torch ms':>10} {'tp img/s':>10} "
          f"{'torch img/s':>12} {'ratio':>7} {'ratio of minima':>16}")
    for case, r in results.items():
        def fmt(v, spec):
            return format(v, spec) if v is not None else "-"
        print(f"{case:<16} {r['tinyprune_ms']:>13.2f} {fmt(r['torch_ms'], '>10.2f')} "
              f"{r['tinyprune_images_per_s']:>10.0f} {fmt(r['torch_images_per_s'], '>12.0f')} "
              f"{fmt(r['ratio'], '>7.3f')} {fmt(r['ratio_of_minima'], '>16.3f')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

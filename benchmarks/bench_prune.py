"""Pruning benchmark: mask computation speed, and what physical channel removal buys.

1. Time to compute a mask for the lecture net's ``fc1`` weight (128 x 9216 = 1.18M weights) at every
   granularity (kernel granularity needs a conv weight: it is timed on a (128, 1024, 3, 3) conv
   weight of the same size), L1/L2 scores, median of repeats after warm-up.
2. Inference time of the lecture net against its thinned copy with 50% of the channels of conv1,
   conv2 and fc1 removed (batch of ``--batch`` images, 2 threads), and the ratio of the measured
   speed-up to the reduction in multiply-accumulates (``thinning_speedup_vs_mac_ratio``; 1.0 means
   the time fell exactly as much as the arithmetic). Dense and thin are timed in alternating
   blocks, so that drift in the machine's speed affects both alike. When PyTorch is installed, the
   same two networks (same weights) are timed in torch too, as a peer figure:
   ``torch_thinning_speedup_vs_mac_ratio`` says what a mature library gets from the same cut.
3. The N:M compressed matmul (2:4) against the dense matmul on fc1, reported honestly.

Usage: ``python benchmarks/bench_prune.py [--json] [--repeats 15] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")


def _median_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench_masks(repeats):
    from tinyprune.prune import nm_mask, prune_weight

    rng = np.random.default_rng(0)
    fc1 = rng.standard_normal((128, 9216)).astype(np.float32)
    conv = rng.standard_normal((128, 1024, 3, 3)).astype(np.float32)
    cases = {
        "element": lambda: prune_weight(fc1, 0.9, criterion="magnitude", granularity="element"),
        "vector": lambda: prune_weight(fc1, 0.5, criterion="l2", granularity="vector"),
        "kernel": lambda: prune_weight(conv, 0.5, criterion="l1", granularity="kernel"),
        "channel": lambda: prune_weight(fc1, 0.5, criterion="l1", granularity="channel"),
        "input_channel": lambda: prune_weight(fc1, 0.5, criterion="l2",
                                              granularity="input_channel"),
        "nm_2_4": lambda: nm_mask(fc1, n_pruned=2, m=4),
    }
    return {name: _median_ms(fn, repeats) for name, fn in cases.items()}


def _channel_masks(model, layers, fraction):
    from tinyprune.prune import prune_weight
    masks = {}
    for ln in layers:
        w = model.params[f"{ln}.weight"]
        m = prune_weight(w, fraction, criterion="l1", granularity="channel")
        masks[f"{ln}.weight"] = m
        masks[f"{ln}.bias"] = m.reshape(m.shape[0], -1).any(axis=1)
    return masks


def _alternating_ms(fn_a, fn_b, repeats, rounds=3):
    """Medians of ``fn_a`` and ``fn_b`` timed in alternating blocks (a, b, a, b...)."""
    per_round = max(1, -(-repeats // rounds))
    ta, tb = [], []
    for _ in range(rounds):
        for fn, acc in ((fn_a, ta), (fn_b, tb)):
            fn()  # warm-up of this block
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3


def _torch_net(model):
    """The same network in torch.nn (inference mode), weights copied; None without torch."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.set_num_threads(2)
    p = model.params
    c1, c2, f1 = p["conv1.weight"].shape[0], p["conv2.weight"].shape[0], p["fc1.weight"].shape[0]
    net = nn.Sequential(nn.Conv2d(1, c1, 3), nn.ReLU(), nn.Conv2d(c1, c2, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 144, f1), nn.ReLU(),
                        nn.Linear(f1, 10)).eval()
    names = ["conv1", None, "conv2", None, None, None, "fc1", None, "fc2"]
    with torch.no_grad():
        for layer, name in zip(net, names, strict=True):
            if name is not None:
                layer.weight.copy_(torch.from_numpy(p[f"{name}.weight"]))
                layer.bias.copy_(torch.from_numpy(p[f"{name}.bias"]))
    return net


def bench_thinning(repeats, batch):
    from tinyprune.nn import lecture_net
    from tinyprune.prune.masked import set_masks_
    from tinyprune.prune.thinning import thin_model
    from tinyprune.report import sparsity_report

    model = lecture_net(seed=0)
    set_masks_(model, _channel_masks(model, ["conv1", "conv2", "fc1"], 0.5))
    thin, _ = thin_model(model)
    x = np.random.default_rng(1).random((batch, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(thin.forward(x), model.forward(x), rtol=1e-4, atol=1e-4)
    dense_ms, thin_ms = _alternating_ms(lambda: model.forward(x), lambda: thin.forward(x), repeats)
    macs_dense = sum(model.macs().values())
    macs_thin = sum(thin.macs().values())
    speedup = dense_ms / thin_ms
    mac_reduction = macs_dense / macs_thin
    peer = {}
    t_dense, t_thin = _torch_net(model), _torch_net(thin)
    if t_dense is not None:
        import torch
        tx = torch.from_numpy(x)
        with torch.no_grad():
            np.testing.assert_allclose(t_thin(tx).numpy(), thin.forward(x), rtol=1e-3, atol=1e-3)
            td, tt = _alternating_ms(lambda: t_dense(tx), lambda: t_thin(tx), repeats)
        peer = {"torch_dense_ms": td, "torch_thin_ms": tt, "torch_speedup": td / tt,
                "torch_thinning_speedup_vs_mac_ratio": td / tt / mac_reduction}
    return {
        "batch": batch,
        "dense_ms": dense_ms,
        "thin_ms": thin_ms,
        "speedup": speedup,
        "macs_dense": macs_dense,
        "macs_thin": macs_thin,
        "mac_reduction": mac_reduction,
        "thinning_speedup_vs_mac_ratio": speedup / mac_reduction,
        "params_dense": model.num_parameters(),
        "params_thin": thin.num_parameters(),
        "masked_model_macs_remaining": sparsity_report(model)["total"]["macs_remaining"],
        **peer,
    }


def bench_nm_matmul(repeats):
    from tinyprune.prune import NMSparse, nm_mask

    rng = np.random.default_rng(2)
    w = rng.standard_normal((128, 9216)).astype(np.float32)
    w *= nm_mask(w, n_pruned=2, m=4)
    x = rng.standard_normal((64, 9216)).astype(np.float32)
    packed = NMSparse.compress(w, n_pruned=2, m=4)
    np.testing.assert_allclose(packed.matmul(x), x @ w.T, rtol=1e-4, atol=1e-3)
    dense_ms = _median_ms(lambda: x @ w.T, repeats)
    nm_ms = _median_ms(lambda: packed.matmul(x), repeats)
    return {"dense_ms": dense_ms, "nm_ms": nm_ms, "nm_over_dense": nm_ms / dense_ms,
            "dense_bytes": int(w.nbytes), "nm_bytes": int(packed.nbytes)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--quick", action="store_true", help="3 repeats (smoke run)")
    args = p.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(2)
    except ImportError:  # pragma: no cover
        limiter = None
    result = {"threads": 2, "repeats": repeats,
              "mask_ms": bench_masks(repeats),
              "thinning": bench_thinning(repeats, args.batch),
              "nm_matmul": bench_nm_matmul(repeats)}
    result["mask_max_ms"] = max(result["mask_ms"].values())
    result["thinning_speedup_vs_mac_ratio"] = result["thinning"]["thinning_speedup_vs_mac_ratio"]
    if "torch_thinning_speedup_vs_mac_ratio" in result["thinning"]:
        result["torch_thinning_speedup_vs_mac_ratio"] = (
            result["thinning"]["torch_thinning_speedup_vs_mac_ratio"])
    if limiter is not None:
        limiter.restore_original_limits()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("mask computation, fc1 (128 x 9216), median ms:")
    for k, v in result["mask_ms"].items():
        print(f"  {k:<14} {v:8.2f}")
    t = result["thinning"]
    print(f"lecture net, batch {t['batch']}, 50% channels of conv1/conv2/fc1 removed:")
    print(f"  dense {t['dense_ms']:.2f} ms, thin {t['thin_ms']:.2f} ms, speed-up "
          f"{t['speedup']:.2f}x, MAC reduction {t['mac_reduction']:.2f}x, ratio "
          f"{t['thinning_speedup_vs_mac_ratio']:.2f}")
    if "torch_speedup" in t:
        print(f"  torch (same networks): dense {t['torch_dense_ms']:.2f} ms, thin "
              f"{t['torch_thin_ms']:.2f} ms, speed-up {t['torch_speedup']:.2f}x, ratio "
              f"{t['torch_thinning_speedup_vs_mac_ratio']:.2f}")
    n = result["nm_matmul"]
    print(f"2:4 matmul on fc1 (batch 64): dense {n['dense_ms']:.2f} ms, compressed "
          f"{n['nm_ms']:.2f} ms ({n['nm_over_dense']:.1f}x dense), bytes {n['dense_bytes']:,} -> "
          f"{n['nm_bytes']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

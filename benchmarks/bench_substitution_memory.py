"""Peak extra host memory of ONE PR1S substitution of one matrix (what a sharded run adds per matrix on top of
its shards), measured with the process's peak RSS in a fresh interpreter:

    python benchmarks/bench_substitution_memory.py [ROWS COLS] [--dtype bfloat16] [--method auto|exact]

Defaults: 18944 x 3584 (the largest target matrix of Qwen2.5-7B, mlp.down_proj/up_proj/gate_proj), bf16
parameter, the callback's default method ("auto" = the checked fast top-1 path for a matrix this size).
Prints one JSON line. Compare with the formula in docs/sharded_training.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from rlvr_lowrank.training import pr1s


def rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", nargs="*", type=int, default=[18944, 3584])
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--quick", action="store_true", help="a 2048 x 512 matrix (make bench), not the 7B down_proj shape")
    a = ap.parse_args()
    m, n = (2048, 512) if a.quick else a.shape
    torch.manual_seed(0)
    name = "model.layers.0.mlp.down_proj.weight"
    # Built in row blocks so that building it leaves no high-water mark above parameter + anchor.
    w0 = torch.empty(m, n)  # the fp32 anchor the callback keeps (its own copy, on the host)
    w = torch.empty(m, n, dtype=getattr(torch, a.dtype))
    u, v = torch.randn(m), torch.randn(n)
    for i in range(0, m, 1024):
        blk = torch.randn(min(1024, m - i), n) * 0.02
        w0[i:i + 1024] = blk
        w[i:i + 1024] = blk + 1e-3 * torch.outer(u[i:i + 1024], v) + 1e-5 * torch.randn_like(blk)
    layer = torch.nn.Module()
    layer.weight = torch.nn.Parameter(w)
    model = torch.nn.Module()
    model.add_module("model", torch.nn.Module())
    model.model.add_module("layers", torch.nn.ModuleList([torch.nn.Module()]))
    model.model.layers[0].add_module("mlp", torch.nn.Module())
    model.model.layers[0].mlp.add_module("down_proj", layer)
    # the constructor clones its anchor (a second m x n fp32 high-water mark): hand it over afterwards instead
    cb = pr1s.PeriodicRank1Callback({name: torch.zeros(2, 2)}, every=1, variant="trunc", method=a.method)
    cb.base_state = {name: w0}
    del w0
    before = rss_peak_bytes()  # parameter + anchor + the temporaries of building them (all freed)
    t0 = time.perf_counter()
    rec = cb.substitute(model, None, step=1, write_log=False)
    seconds = time.perf_counter() - t0
    extra = max(rss_peak_bytes() - before, 0)
    mn4 = 4 * m * n
    print(json.dumps({"shape": [m, n], "dtype": a.dtype, "method": a.method, "svd": rec["matrices"][0]["svd"],
                      "seconds": round(seconds, 2), "peak_extra_bytes": extra,
                      "peak_extra_GiB": round(extra / 2**30, 3), "fp32_matrix_GiB": round(mn4 / 2**30, 3),
                      "peak_extra_in_fp32_matrices": round(extra / mn4, 2)}))


if __name__ == "__main__":
    main()

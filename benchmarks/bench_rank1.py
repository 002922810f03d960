"""Benchmark rank-1 extraction (σ1, u1, v1): rlvr_lowrank.analysis.svd.svd_topk(method="fast") vs AlphaRL's full thin
SVD (torch.linalg.svd(ΔW, full_matrices=False), float32), side by side in one process.

Matrices: the shapes of all target matrices of SmolLM2-135M (30 layers x q 576x576, k 192x576, v 192x576,
o 576x576, gate 1536x576, up 1536x576, down 576x1536 = 210 matrices). Each ΔW is synthesised in float32 as a
decaying-spectrum random matrix (Gaussian with column scales j^-decay, j = 1..n) plus a planted rank-1 spike
of strength --spike times the spectral norm of that bulk. The spike sets σ1/σ2 (reported), which sets how
many iterations the fast path needs; matrices it cannot certify fall back to the exact SVD and their time
is counted in the fast column.

Reported: time per matrix type (sum over layers) for both methods, the speed ratio (target >= 10x), the
fast-path iterations and fallbacks, the observed σ1/σ2, and the worst σ1 relative error / min |cos(u1)| /
min |cos(v1)| of the fast path against the exact SVD.

    python benchmarks/bench_rank1.py --quick            # 3 layers (21 matrices)
    python benchmarks/bench_rank1.py                    # all 30 layers (210 matrices)
    python benchmarks/bench_rank1.py --spike 1.2        # a harder (smaller) spectral gap
"""
from __future__ import annotations

import argparse
import time

import torch

from rlvr_lowrank.analysis.svd import svd_topk

SMOLLM2_SHAPES = {"q_proj": (576, 576), "k_proj": (192, 576), "v_proj": (192, 576), "o_proj": (576, 576),
                  "gate_proj": (1536, 576), "up_proj": (1536, 576), "down_proj": (576, 1536)}


def synth_delta(m: int, n: int, spike: float, decay: float, gen: torch.Generator) -> torch.Tensor:
    """Decaying-spectrum random bulk + spike·‖bulk‖₂ · a bᵀ (unit a, b), float32."""
    bulk = torch.randn(m, n, generator=gen) * torch.arange(1, n + 1, dtype=torch.float32) ** -decay
    bulk = bulk[:, torch.randperm(n, generator=gen)]  # spread the large columns
    s_bulk = float(torch.linalg.matrix_norm(bulk, ord=2))  # untimed set-up
    a, b = torch.randn(m, generator=gen), torch.randn(n, generator=gen)
    return 1e-3 * (bulk + spike * s_bulk * torch.outer(a / a.norm(), b / b.norm()))  # RL-sized entries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 layers instead of 30")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--spike", type=float, default=1.5, help="spike strength / spectral norm of the bulk")
    ap.add_argument("--decay", type=float, default=0.5, help="column-scale decay exponent of the bulk")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n_layers = args.layers or (3 if args.quick else 30)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {n_layers} layers, "
          f"spike {args.spike}, decay {args.decay}")

    rows = {t: {"shape": s, "n": 0, "exact_s": 0.0, "fast_s": 0.0, "iters": [], "fallbacks": 0, "gap": [],
                "max_rel": 0.0, "min_cos_u": 1.0, "min_cos_v": 1.0} for t, s in SMOLLM2_SHAPES.items()}
    # warm-up (first LAPACK/BLAS calls allocate workspaces)
    w = synth_delta(576, 576, args.spike, args.decay, gen)
    torch.linalg.svd(w, full_matrices=False)
    svd_topk(w, 1, method="fast")
    for layer in range(n_layers):
        for t, (m, n) in SMOLLM2_SHAPES.items():
            dW = synth_delta(m, n, args.spike, args.decay, gen)
            # interleaved, so both methods see the same machine load
            t0 = time.perf_counter()
            U, S, Vh = torch.linalg.svd(dW, full_matrices=False)  # AlphaRL eval/svd.py
            u_e, s_e, v_e = U[:, 0], S[0], Vh[0]
            t1 = time.perf_counter()
            u, s, v, info = svd_topk(dW, 1, method="fast", seed=layer, return_info=True)
            t2 = time.perf_counter()
            r = rows[t]
            r["n"] += 1
            r["exact_s"] += t1 - t0
            r["fast_s"] += t2 - t1
            r["fallbacks"] += int(info["fallback"])
            if info["method"] == "fast":
                r["iters"].append(info["iters"])
            r["gap"].append(float(S[0] / S[1]))
            r["max_rel"] = max(r["max_rel"], abs(float(s[0] / s_e) - 1))
            r["min_cos_u"] = min(r["min_cos_u"], abs(float(u[:, 0] @ u_e)))
            r["min_cos_v"] = min(r["min_cos_v"], abs(float(v[:, 0] @ v_e)))

    hdr = f"{'matrix':<10}{'shape':>11}{'n':>4}{'exact s':>9}{'fast s':>9}{'ratio':>7}{'iters':>7}{'fallbk':>7}" \
          f"{'σ1/σ2':>12}{'max rel σ1':>12}{'min|cos u1|':>13}{'min|cos v1|':>13}"
    print(hdr)
    tot = {"exact_s": 0.0, "fast_s": 0.0, "n": 0, "fallbacks": 0}
    for t, r in rows.items():
        it = sum(r["iters"]) / len(r["iters"]) if r["iters"] else float("nan")
        print(f"{t:<10}{r['shape'][0]:>5}x{r['shape'][1]:<5}{r['n']:>4}{r['exact_s']:>9.3f}{r['fast_s']:>9.3f}"
              f"{r['exact_s'] / r['fast_s']:>6.1f}x{it:>7.1f}{r['fallbacks']:>7}"
              f"{min(r['gap']):>6.2f}-{max(r['gap']):<5.2f}{r['max_rel']:>12.1e}{r['min_cos_u']:>13.7f}{r['min_cos_v']:>13.7f}")
        for k in tot:
            tot[k] += r[k]
    worst_rel = max(r["max_rel"] for r in rows.values())
    worst_cos = min(min(r["min_cos_u"], r["min_cos_v"]) for r in rows.values())
    ratio = tot["exact_s"] / tot["fast_s"]
    print(f"TOTAL {tot['n']} matrices: exact {tot['exact_s']:.2f} s, fast {tot['fast_s']:.2f} s, speed ratio "
          f"{ratio:.1f}x (target >= 10x), fallbacks {tot['fallbacks']}, max σ1 rel err {worst_rel:.1e}, "
          f"min |cos| (u1, v1) {worst_cos:.7f}")
    if args.json:
        from rlvr_lowrank.fileio import write_json

        write_json(args.json, {"args": vars(args), "threads": torch.get_num_threads(), "rows": rows,
                               "total": {**tot, "ratio": ratio, "max_rel": worst_rel, "min_cos": worst_cos}})


if __name__ == "__main__":
    main()

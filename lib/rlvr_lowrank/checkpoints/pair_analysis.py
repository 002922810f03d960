"""The paper's diagnostics on a user's own checkpoints: a base model and one or more RL checkpoints of it.

    python -m rlvr_lowrank analyze BASE RL [RL ...] --out DIR

It walks the checkpoints one target matrix at a time (``readers``: memory-mapped safetensors), so the
resident memory is a few float32 copies of the largest matrix whatever the number of layers. There is no
parallelism across matrices: each matrix's linear algebra already uses torch's intra-op threads, and a second
matrix in flight would double the per-matrix memory (a 7B down_proj is 18944 x 3584, 272 MB per float32 copy).

Per target matrix, for every RL checkpoint t (ΔW = W_RL(t) − W_base, both upcast to float32 first):
  fro            ‖ΔW‖_F
  sigma          σ1..σk of ΔW (default k = 8, DEFAULT_K: enough to see the gap after σ1 in the ΔW spectrum
                 figure). σ1, u1, v1 come from the --svd solver; with "auto"/"fast" σ2..σk come from
                 torch.svd_lowrank (6 power iterations): approximate, for the figure only, since certifying
                 k triplets of a flat noise tail would force the full SVD. With "exact" all k are exact.
  e1             rank-1 energy share σ1² / ‖ΔW‖_F²
  stable_rank    ‖ΔW‖_F² / σ1²  (= 1 / e1)
  floor          the storage rounding floor: the expected ‖ΔW‖_F that rounding W_base to the checkpoint's dtype
                 alone would produce, sqrt(Σ ulp(w_ij)² / 12) (one rounding of each entry, uniform error).
                 noise_ratio = fro / floor; ΔW with noise_ratio < NOISE_RATIO is flagged "at storage noise".
  unchanged      ΔW = 0 exactly (then e1 = stable_rank = 0 and no SVD is taken).
For the last RL checkpoint, unless --esd none: the power-law fit (claim C3, power_law.fit_power_law in the
WeightWatcher-equivalent mode) of the ESDs of W_base, W_RL and ΔW (ΔW's eigenvalues divided by their mean,
as spectra.analyze_model does, so WeightWatcher's absolute 1e-5 cut cannot swallow a small update), with the
entry-shuffled control of W_RL and ΔW. With two or more RL checkpoints: claim C4's alignment of u1 and v1 over
the series (|cos| with the last checkpoint and with the previous one, alignment.temporal_alignment) and
AlphaRL's sign-aligned trajectory (alignment.sign_align; the aligned vectors are written to trajectory.safetensors).

SVD solver (--svd): "auto" by default, svd.svd_topk's certified block subspace iteration (σ1 within 1e-4
relative and |cos u1| >= 0.9999 whenever σ1/σ2 >= 1.01, else it falls back to the exact SVD by itself), because
it is an order of magnitude faster than a full SVD at these shapes with the accuracy stated; "exact" is
AlphaRL's full thin SVD (torch.linalg.svd, float32 on the CPU).

ESD precision (--esd): "fp64" by default (float64 Gram + float64 eigvalsh, the route spectra.analyze_model
uses, WeightWatcher-equivalent); "fp32" forms the Gram in float32 (about half the time of the dominant step;
the eigensolver stays float64) and is accurate enough for α where the tail sits well above the float32
rounding of the Gram (~n·2^-24·λ_max): benchmarks/bench_checkpoints.py reports |Δα| against fp64; "none"

The outputs: DIR/analysis.json (the returned dict), DIR/analysis.md and DIR/figures/ (``report``), and
DIR/trajectory.safetensors for a series.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..analysis import alignment, power_law, spectral_metrics
from ..analysis.rank1 import matrix_seed
from ..analysis.svd import svd_topk
from ..analysis.targets import layer_index, module_type
from . import planted
from .opening import checked_delta, iter_targets, open_pair, path_label, target_selector
from .readers import CheckpointError
from .report import make_figures, report_markdown
from .rounding import NOISE_RATIO, rounding_floor
from .writer import prepare_output, progress_bar

DEFAULT_K = 8
ESD_MODES = ("fp64", "fp32", "none")

# Not used here: notebook 09 calls pair_analysis.write_planted_rl; the fixture lives in planted.
write_planted_rl = planted.write_planted_rl


def _evals(W: torch.Tensor, esd: str) -> np.ndarray:
    """Eigenvalues of WᵀW (ascending, float64 numpy, clipped at 0) from the Gram of the smaller side."""
    X = W.to(torch.float64 if esd == "fp64" else torch.float32)
    G = X.T @ X if X.shape[0] >= X.shape[1] else X @ X.T
    del X
    # the eigensolver always runs in float64 (it is the cheap part: n^3 for the n x n Gram, against m n^2 for
    # the Gram itself); torch's syevd, measured faster here than numpy's on the same matrix
    return np.maximum(torch.linalg.eigvalsh(G.double()).numpy(), 0.0)


def _fit(lam: np.ndarray, normalise: bool = False) -> dict:
    if normalise and len(lam) and lam.mean() > 0:
        lam = lam / lam.mean()
    fit = power_law.fit_power_law(lam, mode="ww")
    R, p = power_law.compare_exponential(lam, fit)
    return {"alpha": float(fit.alpha), "xmin": float(fit.xmin), "D": float(fit.D), "n_tail": int(fit.n_tail),
            "reliable": bool(fit.reliable), "R": float(R), "p": float(p),
            "heavy_tailed": bool(power_law.is_heavy_tailed(fit, R, p))}


def heavy_tails(name: str, W0: torch.Tensor, W1: torch.Tensor, dW: torch.Tensor, esd: str, seed: int = 0) -> dict:
    """C3 fits of W_base, W_RL, ΔW and the entry-shuffled controls of W_RL and ΔW (one dict of dicts)."""
    out = {}
    for key, M, norm in (("base", W0, False), ("rl", W1, False), ("delta", dW, True)):
        if key == "delta" and not bool(dW.any()):
            out[key] = None
            continue
        out[key] = _fit(_evals(M, esd), norm)
        if key != "base":
            s = matrix_seed(seed, name + "#" + key)
            out[key + "_shuffled"] = _fit(_evals(spectral_metrics.shuffled(M, seed=s), esd), norm)
    return out


def rank1_stats(dW: torch.Tensor, k: int, svd: str, seed: int) -> tuple[dict, torch.Tensor | None, torch.Tensor | None]:
    """(record, u1, v1) of one ΔW; u1 = v1 = None when ΔW = 0 (reported as unchanged)."""
    fro = float(torch.linalg.vector_norm(dW))
    if fro == 0.0:
        return {"fro": 0.0, "sigma": [0.0] * k, "e1": 0.0, "stable_rank": 0.0, "unchanged": True,
                "svd": "zero"}, None, None
    k = min(k, min(dW.shape))
    if svd == "exact":
        U, S, V, info = svd_topk(dW, k, method="exact", seed=seed, return_info=True)
        sigma = [float(x) for x in S]
    else:
        # σ1, u1, v1 from the certified rank-1 solver; σ2..σk (the spectrum figure only) from a randomized
        # range finder (torch.svd_lowrank, 6 power iterations, seeded): approximate, never used for e1.
        U, S, V, info = svd_topk(dW, 1, method=svd, seed=seed, return_info=True)
        sigma = [float(S[0])]
        if k > 1:
            torch.manual_seed(seed % (2**31))
            _, St, _ = torch.svd_lowrank(dW, q=min(k + 8, min(dW.shape)), niter=6)
            sigma += [float(x) for x in St[1:k]]
    s1 = sigma[0]
    return ({"fro": fro, "sigma": sigma, "e1": s1 * s1 / (fro * fro),
             "stable_rank": fro * fro / (s1 * s1) if s1 > 0 else 0.0, "unchanged": False,
             "svd": info["method"] + ("(fallback)" if info["fallback"] else "")}, U[:, 0].clone(), V[:, 0].clone())


def analyze(base_path, rl_paths, out, k: int = DEFAULT_K, svd: str = "auto", targets: str = "default",
            esd: str = "fp64", seed: int = 0, force: bool = False, quiet: bool = False,
            figures: bool = True) -> dict:
    """Run the diagnostics and write DIR/analysis.json, DIR/analysis.md, DIR/figures/*.png (and
    DIR/trajectory.safetensors for a series). Returns the analysis dict (the content of analysis.json)."""
    if esd not in ESD_MODES:
        raise CheckpointError(f"--esd {esd!r}; valid: {', '.join(ESD_MODES)}")
    if isinstance(rl_paths, (str, os.PathLike)):
        rl_paths = [rl_paths]
    out = prepare_output(out, force)
    t_start = time.perf_counter()
    base, rls = open_pair(base_path, rl_paths)
    select = target_selector(targets)
    names = iter_targets(base, select)
    T = len(rls)
    rows, traj = [], {}
    bar = progress_bar(len(names), "analyze", not quiet)
    t_fit = 0.0
    try:
        for name in names:
            W0 = base._get(name).float()  # finiteness is checked on ΔW (_checked_delta)
            floor = {}
            row = {"name": name, "layer": layer_index(name), "type": module_type(name), "shape": list(W0.shape),
                   "checkpoints": []}
            us, vs = [], []
            for t, rl in enumerate(rls):
                dt = rl.dtype(name)
                if dt not in floor:
                    floor[dt] = rounding_floor(W0, dt)
                W1 = rl._get(name).float()
                dW = checked_delta(W1, W0, name, base, rl)
                rec, u1, v1 = rank1_stats(dW, k, svd, matrix_seed(seed, name))
                rec["floor"] = floor[dt]
                rec["noise_ratio"] = rec["fro"] / floor[dt] if floor[dt] > 0 else math.inf
                rec["at_noise"] = (not rec["unchanged"]) and rec["noise_ratio"] < NOISE_RATIO
                row["checkpoints"].append(rec)
                if u1 is not None:
                    us.append(u1.numpy())
                    vs.append(v1.numpy())
                if t == T - 1 and esd != "none":
                    t0 = time.perf_counter()
                    row["spectra"] = heavy_tails(name, W0, W1, dW, esd, seed)
                    t_fit += time.perf_counter() - t0
                del W1, dW
            if T >= 2 and len(us) == T:
                U, V = np.stack(us), np.stack(vs)
                cu, pu = alignment.temporal_alignment(U)
                cv, pv = alignment.temporal_alignment(V)
                Ua, Va = alignment.sign_align(U), alignment.sign_align(V)
                row["alignment"] = {"u_cos_final": cu.tolist(), "u_cos_prev": _nan_none(pu),
                                    "v_cos_final": cv.tolist(), "v_cos_prev": _nan_none(pv),
                                    "v_signed_cos_final": (Va @ Va[-1] / np.linalg.norm(Va, axis=1)
                                                           / np.linalg.norm(Va[-1])).tolist(),
                                    "random_baseline_u": alignment.random_baseline(U.shape[1]),
                                    "random_baseline_v": alignment.random_baseline(V.shape[1])}
                traj[name + ".u1"] = torch.from_numpy(np.ascontiguousarray(Ua, dtype=np.float32))
                traj[name + ".v1"] = torch.from_numpy(np.ascontiguousarray(Va, dtype=np.float32))
            rows.append(row)
            del W0
            bar.update(1)
    finally:
        bar.close()
    result = {"base": path_label(base_path), "rl": [path_label(p) for p in rl_paths], "targets": targets, "k": k,
              "svd": svd, "esd": esd, "n_matrices": len(rows),
              "dtypes": {"base": sorted(str(d) for d in base.dtypes()),
                         "rl": [sorted(str(d) for d in r.dtypes()) for r in rls]},
              "summary": [summarise(rows, t) for t in range(T)], "matrices": rows,
              "seconds": {"total": time.perf_counter() - t_start, "heavy_tail_fits": t_fit}}
    _write_outputs(out, result, traj, figures)
    for r in rls:
        r.close()
    base.close()
    return result


def _nan_none(a) -> list:
    return [None if (isinstance(x, float) and math.isnan(x)) else float(x) for x in a]


def summarise(rows: list[dict], t: int) -> dict:
    """Totals over matrices for checkpoint t: AlphaRL's Σσ1/Σ‖ΔW‖_F, pooled and mean e1, per-type means."""
    recs = [(r, r["checkpoints"][t]) for r in rows]
    fro_sum = sum(c["fro"] for _, c in recs)
    fro2 = sum(c["fro"] ** 2 for _, c in recs)
    s1 = [c["sigma"][0] for _, c in recs]
    changed = [c for _, c in recs if not c["unchanged"]]
    by_type: dict[str, list] = {}
    for r, c in recs:
        by_type.setdefault(r["type"], []).append(c)
    return {"checkpoint": t, "n_unchanged": sum(c["unchanged"] for _, c in recs),
            "n_at_noise": sum(c["at_noise"] for _, c in recs),
            "alpharl_ratio": sum(s1) / fro_sum if fro_sum > 0 else 0.0,
            "e1_pooled": sum(x * x for x in s1) / fro2 if fro2 > 0 else 0.0,
            "e1_mean": float(np.mean([c["e1"] for c in changed])) if changed else 0.0,
            "e1_min": float(np.min([c["e1"] for c in changed])) if changed else 0.0,
            "by_type": {ty: {"n": len(cs), "e1_mean": float(np.mean([c["e1"] for c in cs])),
                             "fro_mean": float(np.mean([c["fro"] for c in cs])),
                             "noise_ratio_median": float(np.median([c["noise_ratio"] for c in cs]))}
                        for ty, cs in by_type.items()}}


def _write_outputs(out: Path, result: dict, traj: dict, figures: bool) -> None:
    """Everything into a temporary sibling directory, renamed onto `out` at the end."""
    import shutil
    import tempfile

    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / "analysis.json").write_text(json.dumps(result, indent=1, sort_keys=True, default=_jsonable) + "\n")
        if traj:
            save_file(traj, str(tmp / "trajectory.safetensors"), metadata={"format": "pt"})
        figs = make_figures(result, tmp / "figures") if figures else []
        (tmp / "analysis.md").write_text(report_markdown(result, [f.name for f in figs]))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _jsonable(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(type(o))

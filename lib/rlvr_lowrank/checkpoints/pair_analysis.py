"""The paper's diagnostics on a user's own checkpoints: a base model and one or more RL checkpoints of it.

    python -m rlvr_lowrank analyze BASE RL [RL ...] --out DIR
    python -m rlvr_lowrank substitute BASE RL --variant normmatch --out DIR

Both walk the checkpoints one target matrix at a time (checkpoints.py: memory-mapped safetensors), so the
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
For the last RL checkpoint, unless --esd none: the power-law fit (claim C3, spectra.fit_power_law in the
WeightWatcher-equivalent mode) of the ESDs of W_base, W_RL and ΔW (ΔW's eigenvalues divided by their mean,
as spectra.analyze_model does, so WeightWatcher's absolute 1e-5 cut cannot swallow a small update), with the
entry-shuffled control of W_RL and ΔW. With two or more RL checkpoints: claim C4's alignment of u1 and v1 over
the series (|cos| with the last checkpoint and with the previous one, spectra.temporal_alignment) and
AlphaRL's sign-aligned trajectory (spectra.sign_align; the aligned vectors are written to trajectory.safetensors).

SVD solver (--svd): "auto" by default, rank1.svd_topk's certified block subspace iteration (σ1 within 1e-4
relative and |cos u1| >= 0.9999 whenever σ1/σ2 >= 1.01, else it falls back to the exact SVD by itself), because
it is an order of magnitude faster than a full SVD at these shapes with the accuracy stated; "exact" is
AlphaRL's full thin SVD (torch.linalg.svd, float32 on the CPU).

ESD precision (--esd): "fp64" by default (float64 Gram + float64 eigvalsh, the route spectra.analyze_model
uses, WeightWatcher-equivalent); "fp32" forms the Gram in float32 (about half the time of the dominant step;
the eigensolver stays float64) and is accurate enough for α where the tail sits well above the float32
rounding of the Gram (~n·2^-24·λ_max): benchmarks/bench_checkpoints.py reports |Δα| against fp64; "none"
skips the heavy-tail fits.

Figures (DIR/figures/): e1 heatmap (layer x type, last checkpoint), α of W_base vs W_RL per matrix, the ΔW
spectrum σ_i/σ1 of the N_SPECTRUM matrices with the largest ‖ΔW‖_F, and (series only) the alignment of v1
with the last checkpoint over the series, averaged per matrix type.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..analysis import spectra
from ..analysis.rank1 import (
    TARGET_SUFFIXES,
    layer_index,
    matrix_seed,
    substitute_update,
    svd_topk,
)
from .formats import (
    Checkpoint,
    CheckpointError,
    _bar,
    check_pair,
    iter_targets,
    open_checkpoint,
    prepare_output,
    specs_of,
    target_selector,
    write_hf_directory,
)

DEFAULT_K = 8
NOISE_RATIO = 3.0      # ‖ΔW‖_F below 3x the rounding floor: indistinguishable from storage noise
N_SPECTRUM = 4         # matrices shown in the ΔW spectrum figure
ESD_MODES = ("fp64", "fp32", "none")
SUBSTITUTE_VARIANTS = ("normmatch", "trunc", "rank-k", "residual", "random")
_MANTISSA = {torch.bfloat16: 8, torch.float16: 11, torch.float32: 24, torch.float64: 53}


def mtype(name: str) -> str:
    """'q_proj', 'mlp.gate', 'mlp.experts.0.up_proj', ... : the name after 'layers.<i>.' minus '.weight'."""
    import re

    m = re.search(r"layers\.\d+\.(?:self_attn\.|mlp\.)?(.*?)(?:\.weight)?$", name)
    return m.group(1) if m else name


def rounding_floor(W: torch.Tensor, dtype: torch.dtype) -> float:
    """Expected ‖round_dtype(W') − W'‖_F for W' at W: sqrt(Σ ulp(w)²/12), ulp(w) = 2^(e − p) with w = m·2^e,
    0.5 <= |m| < 1 (torch.frexp) and p the mantissa bits of `dtype` (8 for bf16, 11 fp16, 24 fp32)."""
    p = _MANTISSA.get(dtype)
    if p is None:
        return 0.0
    # the IEEE exponent field of the float32 value (biased by 127; 0 for zeros and subnormals, skipped), counted
    # per value: Σ ulp² = Σ_E count(E) · 4^(E + 1 − p), without a per-entry float64 array (a 7B matrix is 68 M)
    bits = (W.detach().float().contiguous().view(torch.int32) >> 23) & 0xFF
    counts = torch.bincount(bits.reshape(-1), minlength=256).double()
    E = torch.arange(256, dtype=torch.float64) - 127
    counts[0] = 0.0
    return float(torch.sqrt(torch.sum(counts * torch.exp2(2.0 * (E + 1 - p))) / 12.0))


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
    fit = spectra.fit_power_law(lam, mode="ww")
    R, p = spectra.compare_exponential(lam, fit)
    return {"alpha": float(fit.alpha), "xmin": float(fit.xmin), "D": float(fit.D), "n_tail": int(fit.n_tail),
            "reliable": bool(fit.reliable), "R": float(R), "p": float(p),
            "heavy_tailed": bool(spectra.is_heavy_tailed(fit, R, p))}


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
            out[key + "_shuffled"] = _fit(_evals(spectra.shuffled(M, seed=s), esd), norm)
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


def _checked_delta(W1: torch.Tensor, W0: torch.Tensor, name: str, base: Checkpoint, rl: Checkpoint) -> torch.Tensor:
    """ΔW = W1 − W0, checked finite in one pass: NaN or Inf in either input makes ΔW non-finite (x − NaN = NaN,
    Inf − x = ±Inf, Inf − Inf = NaN), and only then are the inputs checked one by one to name the culprit."""
    dW = W1 - W0
    if not math.isfinite(float(dW.abs().max())):
        base.get(name)
        rl.get(name)
        raise CheckpointError(f"ΔW of {name!r} is not finite")  # not reached: one of the inputs is not finite
    return dW


def _label(x) -> str:
    return str(x.path) if isinstance(x, Checkpoint) else str(x)


def _open_all(base_path, rl_paths) -> tuple[Checkpoint, list[Checkpoint]]:
    base = open_checkpoint(base_path)
    if base.kind == "peft":
        raise CheckpointError(f"{base_path} is a PEFT adapter; the base must be a full model")
    rls = [open_checkpoint(p, base=base) for p in rl_paths]
    for r in rls:
        check_pair(base, r)
    return base, rls


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
    base, rls = _open_all(base_path, rl_paths)
    select = target_selector(targets)
    names = iter_targets(base, select)
    T = len(rls)
    rows, traj = [], {}
    bar = _bar(len(names), "analyze", not quiet)
    t_fit = 0.0
    try:
        for name in names:
            W0 = base._get(name).float()  # finiteness is checked on ΔW (_checked_delta)
            floor = {}
            row = {"name": name, "layer": layer_index(name), "type": mtype(name), "shape": list(W0.shape),
                   "checkpoints": []}
            us, vs = [], []
            for t, rl in enumerate(rls):
                dt = rl.dtype(name)
                if dt not in floor:
                    floor[dt] = rounding_floor(W0, dt)
                W1 = rl._get(name).float()
                dW = _checked_delta(W1, W0, name, base, rl)
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
                cu, pu = spectra.temporal_alignment(U)
                cv, pv = spectra.temporal_alignment(V)
                Ua, Va = spectra.sign_align(U), spectra.sign_align(V)
                row["alignment"] = {"u_cos_final": cu.tolist(), "u_cos_prev": _nan_none(pu),
                                    "v_cos_final": cv.tolist(), "v_cos_prev": _nan_none(pv),
                                    "v_signed_cos_final": (Va @ Va[-1] / np.linalg.norm(Va, axis=1)
                                                           / np.linalg.norm(Va[-1])).tolist(),
                                    "random_baseline_u": spectra.random_baseline(U.shape[1]),
                                    "random_baseline_v": spectra.random_baseline(V.shape[1])}
                traj[name + ".u1"] = torch.from_numpy(np.ascontiguousarray(Ua, dtype=np.float32))
                traj[name + ".v1"] = torch.from_numpy(np.ascontiguousarray(Va, dtype=np.float32))
            rows.append(row)
            del W0
            bar.update(1)
    finally:
        bar.close()
    result = {"base": _label(base_path), "rl": [_label(p) for p in rl_paths], "targets": targets, "k": k, "svd": svd,
              "esd": esd, "n_matrices": len(rows),
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


# ----------------------------------------------------------------------------------------------
# Report and figures
# ----------------------------------------------------------------------------------------------

def report_markdown(result: dict, figure_files: list[str]) -> str:
    s = result["summary"][-1]
    lines = [f"# Rank-1 diagnostics: {result['rl'][-1]} vs {result['base']}", "",
             f"{result['n_matrices']} target matrices (--targets {result['targets']}), k = {result['k']}, "
             f"SVD solver {result['svd']}, ESD precision {result['esd']}; {result['seconds']['total']:.1f} s.", "",
             "| quantity | value |", "|---|---|",
             f"| AlphaRL ratio Σσ1/Σ‖ΔW‖_F | {s['alpharl_ratio']:.4f} |",
             f"| rank-1 energy share, pooled Σσ1²/Σ‖ΔW‖² | {s['e1_pooled']:.4f} |",
             f"| rank-1 energy share, mean / min over matrices | {s['e1_mean']:.4f} / {s['e1_min']:.4f} |",
             f"| unchanged matrices (ΔW = 0) | {s['n_unchanged']} |",
             f"| matrices at storage noise (‖ΔW‖_F < {NOISE_RATIO:g}× rounding floor) | {s['n_at_noise']} |", "",
             "| type | n | mean e1 | mean ‖ΔW‖_F | median ‖ΔW‖_F / floor |", "|---|---|---|---|---|"]
    for ty, d in s["by_type"].items():
        lines.append(f"| {ty} | {d['n']} | {d['e1_mean']:.4f} | {d['fro_mean']:.4g} | {d['noise_ratio_median']:.3g} |")
    fits = [m["spectra"] for m in result["matrices"] if m.get("spectra")]
    if fits:
        def frac(key):
            v = [f[key]["heavy_tailed"] for f in fits if f.get(key)]
            return f"{np.mean(v):.2f}" if v else "n/a"

        def med(key):
            v = [f[key]["alpha"] for f in fits if f.get(key) and math.isfinite(f[key]["alpha"])]
            return f"{np.median(v):.2f}" if v else "n/a"

        lines += ["", "Heavy tails (claim C3, last checkpoint): heavy-tailed fraction and median α", "",
                  "| matrix | heavy-tailed | median α |", "|---|---|---|"]
        for key, label in (("base", "W_base"), ("rl", "W_RL"), ("rl_shuffled", "W_RL shuffled"),
                           ("delta", "ΔW"), ("delta_shuffled", "ΔW shuffled")):
            lines.append(f"| {label} | {frac(key)} | {med(key)} |")
    al = [m["alignment"] for m in result["matrices"] if m.get("alignment")]
    if al:
        cf = np.mean([a["v_cos_final"][0] for a in al])
        cp = np.nanmean([x for a in al for x in a["v_cos_prev"] if x is not None])
        lines += ["", f"Alignment over the series (claim C4, {len(result['rl'])} checkpoints): mean |cos(v1(first), "
                      f"v1(last))| = {cf:.3f}, mean |cos(v1(t), v1(t-1))| = {cp:.3f} (random unit vectors: "
                      f"{np.mean([a['random_baseline_v'] for a in al]):.3f})."]
    if figure_files:
        lines += [""] + [f"![{f}](figures/{f})" for f in figure_files]
    return "\n".join(lines) + "\n"


def make_figures(result: dict, directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    rows, files = result["matrices"], []

    def save(fig, name):
        p = directory / f"{name}.png"
        fig.savefig(p, dpi=100, metadata={"Software": None}, bbox_inches="tight")
        plt.close(fig)
        files.append(p)

    layers = sorted({r["layer"] for r in rows})
    order = {t: i for i, t in enumerate(TARGET_SUFFIXES)}  # q k v o gate up down first, then any other type
    types = sorted(dict.fromkeys(r["type"] for r in rows), key=lambda t: (order.get(t, len(order)), t))
    H = np.full((len(types), len(layers)), np.nan)
    for r in rows:
        c = r["checkpoints"][-1]
        if not c["unchanged"]:
            H[types.index(r["type"]), layers.index(r["layer"])] = c["e1"]
    fig, ax = plt.subplots(figsize=(max(4, 0.25 * len(layers) + 2), 0.4 * len(types) + 1.5))
    im = ax.imshow(H, aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_yticks(range(len(types)), types)
    ax.set_xticks(range(len(layers)), layers, fontsize=7)
    ax.set_xlabel("layer")
    ax.set_title("rank-1 energy share σ1²/‖ΔW‖²")
    fig.colorbar(im, ax=ax)
    save(fig, "e1_heatmap")

    fits = [(r, r["spectra"]) for r in rows if r.get("spectra")]
    if fits:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for ty in types:
            pts = [(f["base"]["alpha"], f["rl"]["alpha"]) for r, f in fits if r["type"] == ty]
            if pts:
                ax.scatter(*zip(*pts), s=12, label=ty)
        lim = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel("α of W_base")
        ax.set_ylabel("α of W_RL")
        ax.set_title("power-law α per matrix")
        ax.legend(fontsize=7)
        save(fig, "alpha_base_vs_rl")

    top = sorted((r for r in rows if not r["checkpoints"][-1]["unchanged"]),
                 key=lambda r: -r["checkpoints"][-1]["fro"])[:N_SPECTRUM]
    if top:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        for r in top:
            s = np.array(r["checkpoints"][-1]["sigma"])
            ax.semilogy(range(1, len(s) + 1), s / s[0], "o-", ms=3, label=r["name"].replace("model.", ""))
        ax.set_xlabel("i")
        ax.set_ylabel("σ_i / σ_1 of ΔW")
        ax.set_title("ΔW spectrum (largest ‖ΔW‖_F)")
        ax.legend(fontsize=6)
        save(fig, "delta_spectrum")

    al = [(r, r["alignment"]) for r in rows if r.get("alignment")]
    if al:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        T = len(al[0][1]["v_cos_final"])
        for ty in types:
            cs = [a["v_cos_final"] for r, a in al if r["type"] == ty]
            if cs:
                ax.plot(range(1, T + 1), np.mean(cs, axis=0), "o-", ms=3, label=ty)
        ax.axhline(np.mean([a["random_baseline_v"] for _, a in al]), color="k", ls=":", lw=0.8, label="random")
        ax.set_xlabel("checkpoint")
        ax.set_ylabel("|cos(v1(t), v1(last))|")
        ax.set_ylim(0, 1.05)
        ax.set_title("alignment over the series")
        ax.legend(fontsize=7)
        save(fig, "alignment")
    return files


# ----------------------------------------------------------------------------------------------
# Substitution
# ----------------------------------------------------------------------------------------------

def substitute(base_path, rl_path, out, variant: str = "normmatch", k: int = 1, normmatch: bool = False,
               svd: str = "auto", targets: str = "default", seed: int = 0, force: bool = False,
               quiet: bool = False) -> Path:
    """A Hugging Face directory W_base + R(ΔW) on every target (rank1's variant maths, one tensor at a time),
    every other tensor at BASE (the AlphaRL convention). Same dtype per tensor, same shard files and index as
    the RL checkpoint; config from RL, tokenizer and generation config copied. Variants:
      normmatch  W_base + ‖ΔW‖_F u1 v1ᵀ          (AlphaRL's builder; with --svd exact it is AlphaRL's to fp32)
      trunc      W_base + σ1 u1 v1ᵀ
      rank-k     W_base + U_k S_k V_kᵀ  (rescaled to ‖ΔW‖_F with normmatch=True: AlphaRL's rank-k)
      residual   W_base + ΔW − σ1 u1 v1ᵀ
      random     W_base + ‖ΔW‖_F a bᵀ, a, b seeded random unit vectors
    A per-matrix record (‖ΔW‖_F, σ1, e1, energy removed, SVD route) goes to rlvr_lowrank_substitution.json.
    """
    if variant not in SUBSTITUTE_VARIANTS:
        raise CheckpointError(f"--variant {variant!r}; valid: {', '.join(SUBSTITUTE_VARIANTS)}")
    prepare_output(out, force)
    base, (rl,) = _open_all(base_path, [rl_path])
    if rl.kind == "gguf" or not rl.config:
        raise CheckpointError(f"{rl_path} has no config.json; substitute writes a Hugging Face directory and needs one")
    select = target_selector(targets)
    names = set(iter_targets(base, select))
    specs = specs_of(rl)
    diags = []

    def produce(name: str):
        if name not in names:
            return base.chunks(name)  # copied block by block: a 7B embedding never sits whole in memory
        W0 = base._get(name).float()
        dW = _checked_delta(rl._get(name).float(), W0, name, base, rl)
        if variant == "rank-k":
            R, d = substitute_update(dW, "rankk", k=k, normmatch=normmatch, seed=matrix_seed(seed, name), method=svd)
        else:
            R, d = substitute_update(dW, variant, seed=matrix_seed(seed, name), method=svd)
        del dW
        diags.append({"name": name, **{k_: d[k_] for k_ in ("fro", "sigma1", "e1", "energy_removed", "svd")}})
        return W0.add_(R)

    bar = _bar(len(specs), f"substitute {variant}", not quiet)
    note = {"variant": variant, "k": k, "normmatch": normmatch, "svd": svd, "targets": targets, "seed": seed,
            "base": _label(base_path), "rl": _label(rl_path), "non_targets": "base"}
    try:
        write_hf_directory(out, specs, produce, rl.config, rl.side_dir or base.side_dir, layout=rl.weight_map,
                           force=force, on_tensor=lambda n: bar.update(1),
                           extra_files=lambda: {"rlvr_lowrank_substitution.json":
                                                json.dumps({**note, "matrices": diags}, indent=1) + "\n"})
    finally:
        bar.close()
        rl.close()
        base.close()
    return Path(out)



# ----------------------------------------------------------------------------------------------
# A synthetic RL checkpoint with a known answer (notebook 09, tests, benchmarks)
# ----------------------------------------------------------------------------------------------

def planted_delta(name: str, shape: tuple[int, int], scale: float, noise: float, seed: int = 0) -> torch.Tensor:
    """ΔW = scale · a bᵀ + noise · G for one matrix (a, b unit vectors, G standard Gaussian / sqrt(m n), all
    seeded from `seed` and the name), so ‖rank-1 part‖_F = scale and ‖noise part‖_F ≈ noise."""
    m, n = shape
    # its own seed stream ("planted:" prefix): the random substitution variant draws its directions from
    # matrix_seed(seed, name), and must not find the planted ones
    g = torch.Generator().manual_seed(matrix_seed(seed, "planted:" + name))
    a, b = torch.randn(m, generator=g), torch.randn(n, generator=g)
    d = scale * torch.outer(a / a.norm(), b / b.norm())
    if noise:
        d += noise * torch.randn(m, n, generator=g) / math.sqrt(m * n)
    return d


def write_planted_rl(base_path, out, scale: float = 1.0, noise: float = 0.1, rel: bool = True, seed: int = 0,
                     dtype: str | None = None, max_shard_bytes: int | None = None, targets: str = "default",
                     force: bool = False) -> Path:
    """An "RL checkpoint" = base + planted_delta on every target (other tensors copied), as a HF directory in
    `dtype` (None: the base's), sharded to `max_shard_bytes`. With rel=True `scale` and `noise` are relative to
    ‖W_base‖_F of each matrix. The expected rank-1 energy share is scale² / (scale² + noise²) (before storage
    rounding)."""
    base = open_checkpoint(base_path)
    select = target_selector(targets)
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32, None: None}[dtype]

    def produce(name):
        if not select(name, len(base.shape(name))):
            return base.chunks(name)
        W = base.get(name).float()
        f = float(torch.linalg.vector_norm(W)) if rel else 1.0
        return W + planted_delta(name, tuple(W.shape), scale * f, noise * f, seed)

    cfg = dict(base.config)
    if dt is not None and cfg:
        cfg["torch_dtype"] = cfg["dtype"] = {torch.bfloat16: "bfloat16", torch.float16: "float16",
                                             torch.float32: "float32"}[dt]
    try:
        return write_hf_directory(out, specs_of(base, dt), produce, cfg, base.side_dir,
                                  max_shard_bytes=max_shard_bytes, force=force)
    finally:
        base.close()

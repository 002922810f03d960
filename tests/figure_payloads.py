"""Constructed data for every figure of figures.figure_data.DRAW (small, deterministic): what the notebooks write
to reports/<profile>/figure_data/, in the same shape."""
from __future__ import annotations

import numpy as np

from rlvr_lowrank.claims import c0, c1, c2, c3

CAPTION = "profile test · model tiny-base · 20 GRPO steps · 2 seeds (0, 1)"
SEEDS = (0, 1)
ARMS = ("full", "pr1s_trunc_k10")
TYPES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _summary(values):
    v = [float(x) for x in values]
    m = float(np.mean(v))
    return {"mean": m, "ci": [min(v), max(v)], "t_ci": [min(v) - 0.01, max(v) + 0.01], "n": len(v), "values": v}


def _spectra_rows(models):
    rows = []
    for m, seeds in models:
        for s in seeds:
            # lexicographic name order on purpose: the drawing puts them in model order
            for layer in (1, 0):
                for t in sorted(TYPES):
                    a = 2.0 + 0.1 * TYPES.index(t) + 0.3 * layer + (0.02 * (s + 1) if m != "base" else 0.0)
                    rows.append({"model": m, "seed": s, "layer": layer, "type": t, "alpha": a,
                                 "name": f"model.layers.{layer}.{t}.weight", "heavy_tailed": a < 2.5})
    return rows


def payloads() -> dict[str, dict]:
    rng = np.random.default_rng(0)
    steps = np.arange(1, 21)
    rewards = [{"arm": a, "seed": s, "step": int(t), "reward": float(min(1, 0.3 + 0.03 * t - 0.05 * i + 0.02 * s))}
               for i, a in enumerate(ARMS) for s in SEEDS for t in steps]
    evals = [{"arm": a, "seed": s, "step": t, "test_acc": 0.1 * t / 5 + 0.01 * s, "train_acc": 0.12 * t / 5}
             for a in ARMS for s in SEEDS for t in (0, 5, 10, 15, 20)]
    variants = ("base", "random", "residual", "trunc", "normmatch", "rank-2", "full")
    recovery = {v: _summary([0.0, 0.0] if v in ("base", "random") else [1.0, 1.0] if v == "full"
                            else [0.9, 0.95]) for v in variants}
    sweep = [{"arm": a, "K": k, "variant": "trunc", "metric": m, "mean": 0.03, "ci_lo": 0.02, "ci_hi": 0.04,
              "t_lo": 0.0, "t_hi": 0.06, "n": 2} for a, k in (("pr1s_trunc_k10", 10), ("pr1s_trunc_k5", 5))
             for m in ("reward_gap", "test_gap")]
    scores = [{"seed": s, "model": m, "math_acc": acc, "math_logp": -2 + acc, "fact_acc": 1.0 - 0.1 * (m == "residual"),
               "fact_logp": -0.1, "skill_acc": 0.7, "skill_logp": -0.9 + 0.01 * s}
              for s in SEEDS for m, acc in (("base", 0.0), ("full", 0.8), ("normmatch", 0.75), ("trunc", 0.8),
                                            ("residual", 0.0), ("pr1s_trunc_k10", 0.79))]
    mix = [{"seed": s, "model": m, "math_acc": a, "math_logp": -2.0, "skill_acc": b, "skill_logp": -0.7}
           for s in SEEDS for m, a, b in (("base", 0.0, 0.8), ("full", 0.5, 0.9), ("normmatch", 0.6, 0.85),
                                          ("trunc", 0.4, 0.86), ("residual", 0.0, 0.88), ("rank-2", 0.45, 0.87),
                                          ("rank-4", 0.5, 0.89))]
    fractions = [{"model": m, "reading": r, "value": v, "ci_lo": v, "ci_hi": v}
                 for m in ("base", "full") for r, v in (("strict", 0.6), ("ww_band", 0.9), ("shuffled", 0.0))]
    lam = np.sort(rng.pareto(2.0, 300) + 1.0)
    panels = [{"title": f"{m}: L0.q_proj", "eigenvalues": lam.tolist(), "alpha": 3.0, "xmin": float(lam[200]),
               "heavy_tailed": m == "base"} for m in ("base", "full")]
    curves = [{"arm": a, "seed": s, "step": t, "side": side, "cos_final": min(1.0, 0.2 + 0.04 * t), "baseline": 0.06}
              for a in ARMS for s in SEEDS for t in range(0, 21, 5) for side in ("u", "v")]
    pls = [{"signal": sig, "type": t, "seed": s, "T": n, "r2": 0.8, "r2_loo": -6.0 if t == "q_proj" else 0.3}
           for sig, n in (("test accuracy", 5), ("training reward (EMA 10)", 20)) for t in TYPES[:3] for s in SEEDS]
    extra = [{"seed": s, "window": w, "method": m, "test_acc": acc, "trained_acc": 0.8, "final_step": 20}
             for s in SEEDS for w in (5, 10) for m, acc in (("window end", 0.0 if w == 5 else 0.7),
                                                            ("RELEX-style", 0.78))]
    rows = [{"claim": "C1", "quantity": "Δ training reward (Full − PR1S)", "mean": 0.05, "ci": [0.03, 0.06],
             "t_ci": [0.02, 0.07], "class": "holds", "thresholds": [0.02], "direction": "at least", "theta": 0.02},
            {"claim": "C1", "quantity": "Δ test accuracy (Full − PR1S)", "mean": 0.0, "ci": [-0.01, 0.01],
             "t_ci": [-0.02, 0.02], "class": "holds", "thresholds": [0.05], "direction": "within", "theta": 0.05},
            {"claim": "C3", "quantity": "heavy-tailed fraction", "mean": 0.68, "ci": [0.6, 0.7], "t_ci": [0.5, 0.8],
             "class": "below threshold", "thresholds": [0.9], "direction": None, "theta": None}]
    t1 = c1.THRESHOLDS
    out = {
        "fig00_pass_at_k": {"curves": {"1-digit": {"1": 0.3, "4": 0.7, "16": 0.95}, "all": {"1": 0.2, "4": 0.5}},
                            "n": 12},
        "fig01_rank1_dominance": {"recovery": recovery, "thresholds": c0.THRESHOLDS},
        "fig02_reward_overfitting": {"rewards": rewards, "evals": evals, "ema_span": 10, "window_start": 15,
                                     "substitution_every": 10, "pr1s_arm": "pr1s_trunc_k10", "n_steps": 20},
        "fig02_sweep": {"sweep": sweep, "deciding_arm": "pr1s_trunc_k10",
                        "thresholds": {"reward_gap": [t1["min_reward_gap"]],
                                       "test_gap": [-t1["max_test_gap"], t1["max_test_gap"]]}},
        "fig03_knowledge_loss": {"scores": scores, "thresholds": c2.THRESHOLDS, "ceiling": c2.CEILING,
                                 "math_recovery": _summary([0.9, 0.95])},
        "fig03_multitask_rank_k": {"multitask": mix, "thresholds": {"math recovery ≥ 0.8": 0.8,
                                                                    "skill recovery ≤ 0.5": 0.5}},
        "fig04_heavy_tailed_fraction": {"summary": fractions, "threshold": c3.THRESHOLDS["min_fraction"]},
        "fig04_alpha_per_matrix": {"table": _spectra_rows([("base", [-1]), ("full", SEEDS),
                                                           ("pr1s_trunc_k10", SEEDS)])},
        "fig04_esd_tails": {"panels": panels},
        "fig05_alignment": {"curves": curves},
        "fig06_pls_r2": {"pls": pls},
        "fig06_extrapolation": {"rows": extra, "retention": 0.96},
        "fig07_claims_overview": {"rows": rows},
        "fig08_smollm2_alpha": {"table": _spectra_rows([("SmolLM2-135M-Instruct", [0])])},
    }
    return {name: {**p, "caption": CAPTION} for name, p in out.items()}

"""ΔW = W_RL − W_base per target matrix, its rank-1 (and rank-k) substitutions, and substituted models.

Everything is per target matrix (AlphaRL's definition, ``analysis.targets``; docs/methods.md §1–2): for
each 2-D attention/MLP weight W (out x in, as in nn.Linear.weight) the update is ΔW = W_RL − W_base, and
its "rank-1 component" is the top singular triplet σ1 u1 v1ᵀ of ΔW (``analysis.svd.svd_topk``).

Public API:
  check_same_model_type, check_same_tensors   a pair of models with the same layout, or the first mismatch.
  deltas                     ΔW for every target matrix, with loud checks.
  rank1_update, rankk_update substitutions on one ΔW ("trunc", "normmatch", "residual", "random").
  substitute_update          the same, returning the per-matrix diagnostics too.
  update_diagnostics         e1 = σ1²/Σσ², norm ratio σ1/‖ΔW‖_F and energies.
  build_substituted_model    a new model W0 + update(ΔW), non-targets at base (AlphaRL).
The trainer-side method, PR1S, is training.pr1s.PeriodicRank1Callback; it calls substitute_update.

Norms, energies and the scale factors of the substitutions are computed in float64, so no finite ΔW,
however large (1e30) or small (1e-30), gives Inf or a spurious zero; a result that does not fit in float32
at all raises OverflowError instead of silently becoming Inf.
"""
from __future__ import annotations

import copy
import zlib
from typing import Callable, Iterable, Mapping

import torch

from .. import checks
from .svd import check_matrix, rescale, svd_topk
from .targets import layer_index, matrix_type, target_names

# Substitution variants on one ΔW and model variants (docs/methods.md §2).
VARIANTS = ("trunc", "normmatch", "residual", "random")
MODEL_VARIANTS = ("base", "full", "trunc", "normmatch", "residual", "random", "rankk")
# added for the C0 reading (claims.readings), not a variant of the pre-registered C0: ‖ΔW‖_F u2 v2ᵀ, the second
# singular direction at the norm of the whole update (is the *first* direction specific, or would any do?)
SECOND = "second"


# ----------------------------------------------------------------------------------------------
# Updates
# ----------------------------------------------------------------------------------------------

def _as_state(obj, what: str) -> Mapping[str, torch.Tensor]:
    """A state dict from a state dict or an nn.Module (so both can be passed everywhere)."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return obj
    raise TypeError(f"{what} must be a state dict (Mapping[str, Tensor]) or an nn.Module, got {type(obj).__name__}")


def check_same_model_type(base_type: str | None, other_type: str | None, base_label: str = "base",
                          other_label: str = "trained", error: type[Exception] = ValueError) -> None:
    """When both model types are known (a model's config, a checkpoint's config.json) they must agree."""
    if base_type and other_type and base_type != other_type:
        raise error(f"architecture mismatch: {base_label} model_type {base_type!r} vs {other_label} model_type "
                    f"{other_type!r}")


def check_same_tensors(base_names: Iterable[str], other_names: Iterable[str], base_shape: Callable[[str], tuple],
                       other_shape: Callable[[str], tuple], base_label: str = "the base state",
                       other_label: str = "the trained state", error: type[Exception] = ValueError) -> None:
    """Same tensor names, same shapes. Every error names the first offending tensor so that a wrong
    checkpoint is found at once (the state dicts of rank1 and the checkpoint files of ``checkpoints``)."""
    base_names, other_names = list(base_names), list(other_names)
    others = set(other_names)
    for k in base_names:
        if k not in others:
            raise error(f"architecture mismatch: tensor {k!r} is in {base_label} but not in {other_label}")
    bases = set(base_names)
    for k in other_names:
        if k not in bases:
            raise error(f"architecture mismatch: tensor {k!r} is in {other_label} but not in {base_label}")
    for k in base_names:
        b, o = tuple(base_shape(k)), tuple(other_shape(k))
        if b != o:
            raise error(f"shape mismatch for tensor {k!r}: {b} in {base_label} vs {o} in {other_label}")


def _check_same_model_type(base_obj, trained_obj) -> None:
    """Models carry a config with their model_type; state dicts carry no such field (then nothing is checked)."""
    check_same_model_type(getattr(getattr(base_obj, "config", None), "model_type", None),
                          getattr(getattr(trained_obj, "config", None), "model_type", None))


def _check_compatible(base: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor]) -> list[str]:
    """Same keys, same shapes, all floating tensors finite. Returns the target names (base order)."""
    check_same_tensors(base.keys(), trained.keys(), lambda k: base[k].shape, lambda k: trained[k].shape)
    for which, state in (("base", base), ("trained", trained)):
        for k in base:
            v = state[k]
            if torch.is_floating_point(v) and not bool(torch.isfinite(v).all()):
                raise ValueError(f"{which} weight {k!r} contains NaN or Inf")
    names = target_names(base)
    if not names:
        raise ValueError("no target matrices (q/k/v/o/gate/up/down_proj .weight) in the state dict")
    return names


def _delta(b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # Upcast BEFORE subtracting: a bf16 difference would round away small RL updates (docs/methods.md §7).
    b = b.detach()
    return t.detach().to(b.device).float() - b.float()


def deltas(base_state, trained_state) -> dict[str, torch.Tensor]:
    """{target name: ΔW = W_trained − W_base} in float32.

    Accepts state dicts or nn.Modules. Raises ValueError naming the first tensor whose key or shape
    differs, or which holds NaN/Inf. ΔW lives on the device of the base tensor.
    """
    _check_same_model_type(base_state, trained_state)
    base, trained = _as_state(base_state, "base_state"), _as_state(trained_state, "trained_state")
    names = _check_compatible(base, trained)
    return {k: _delta(base[k], trained[k]) for k in names}


# ----------------------------------------------------------------------------------------------
# Substitutions on one ΔW
# ----------------------------------------------------------------------------------------------

def _fro(x: torch.Tensor) -> float:
    # float64 accumulation: a float32 sum of squares overflows to Inf for entries ~1e20 and underflows
    # to 0 for entries ~1e-23, both well inside the float32 range of the entries themselves.
    x = x.detach()
    if x.device.type != "mps":
        return float(torch.linalg.vector_norm(x, dtype=torch.float64))
    # MPS has no float64: scale to max|x| = 1 first, so the float32 sum of squares cannot overflow.
    amax = float(x.abs().max()) if x.numel() else 0.0
    return amax * float(torch.linalg.vector_norm(x.float() / amax)) if amax > 0 else 0.0


def update_diagnostics(dW: torch.Tensor, update: torch.Tensor | None = None, sigma1: float | None = None,
                       method: str = "auto", seed: int = 0) -> dict:
    """Diagnostics of one ΔW:

    fro = ‖ΔW‖_F, sigma1, e1 = σ1²/Σσ_i² (= σ1²/‖ΔW‖_F²), norm_ratio = σ1/‖ΔW‖_F; with an update R also
    update_fro2 = ‖R‖², energy_removed = ‖ΔW‖² − ‖R‖² (what PR1S logs) and dist2 = ‖ΔW − R‖² (how far the
    substitution moves the weights; equals energy_removed for "trunc", not for "normmatch").
    The zero rule is exact, not a threshold: zero=True only when every entry of ΔW is 0 (then
    e1 = norm_ratio = 0.0, no division by zero). ΔW is the float32 difference of two stored weights, so
    any non-zero entry, however small in absolute terms (1e-30), is a real update and its e1 and
    norm_ratio are reported; an absolute cut-off would call a small but genuine update "zero", and
    whether an update is small *relative to W_base* is a question for the caller, who has W_base.
    All quantities are Python floats computed in float64 (finite for every finite ΔW).
    """
    check_matrix(dW, "update_diagnostics")
    dW = dW.detach().float()
    fro = _fro(dW)
    if sigma1 is None:
        sigma1 = float(svd_topk(dW, 1, method=method, seed=seed)[1][0])
    sigma1 = float(sigma1)
    ratio = sigma1 / fro if fro > 0 else 0.0
    d = {
        "fro": fro,
        "fro2": fro * fro,
        "sigma1": sigma1,
        "e1": ratio * ratio,
        "norm_ratio": ratio,
        "zero": fro == 0.0,
    }
    if update is not None:
        uf = _fro(update)
        d["update_fro2"] = uf * uf
        d["energy_removed"] = fro * fro - uf * uf
        d["dist2"] = _fro(dW - update.float()) ** 2
    return d


def _random_unit(n: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, generator=gen, dtype=torch.float32)
    return a / torch.linalg.vector_norm(a)


def substitute_update(dW: torch.Tensor, variant: str, k=1, normmatch: bool = False, seed: int = 0,
                method: str = "auto") -> tuple[torch.Tensor, dict]:
    """One ΔW → (update R, diagnostics). variant in VARIANTS or "rankk"/"full"/"base" (internal)."""
    check_matrix(dW, "rank1_update/rankk_update")
    dW = dW.detach().float()
    m, n = dW.shape
    fro = _fro(dW)
    if variant == "base":
        R = torch.zeros_like(dW)
        U, S, V, info = svd_topk(dW, 1, method=method, seed=seed, return_info=True)
    elif variant == "full":
        R = dW.clone()
        U, S, V, info = svd_topk(dW, 1, method=method, seed=seed, return_info=True)
    elif variant == "rankk":
        if k == "full":
            R = dW.clone()
            U, S, V, info = svd_topk(dW, 1, method=method, seed=seed, return_info=True)
        else:
            checks.integer(k, "k", maximum=min(m, n), hint=f" (or 'full') for a {m}x{n} matrix")
            U, S, V, info = svd_topk(dW, k, method=method, seed=seed, return_info=True)
            R = (U * S) @ V.T
            if normmatch:
                # AlphaRL (eval/upd_rank.py): α · (‖ΔW‖_F / ‖ΔW_k‖_F) · ΔW_k with α = 1.
                nk = _fro(S)
                R = rescale(R, fro / nk, "normmatch rank-k update") if nk > 0 else torch.zeros_like(dW)
    elif variant == SECOND:
        if min(m, n) < 2:
            raise ValueError(f"a {m}x{n} matrix has no second singular direction")
        U, S, V, info = svd_topk(dW, 2, method=method, seed=seed, return_info=True)
        R = rescale(torch.outer(U[:, 1], V[:, 1]), fro, "second-direction update") if float(S[1]) > 0 \
            else torch.zeros_like(dW)
    elif variant in VARIANTS:
        U, S, V, info = svd_topk(dW, 1, method=method, seed=seed, return_info=True)
        s1, u1, v1 = S[0], U[:, 0], V[:, 0]
        if variant == "trunc":  # keep the top triplet as is (the paper's rank-1 component: the rest is eliminated)
            R = s1 * torch.outer(u1, v1)
        elif variant == "normmatch":  # AlphaRL k=1: the rank-1 direction carries all of ‖ΔW‖_F
            R = rescale(torch.outer(u1, v1), fro, "normmatch update") if float(s1) > 0 else torch.zeros_like(dW)
        elif variant == "residual":  # the complement: what PR1S removes
            R = dW - s1 * torch.outer(u1, v1)
        else:  # "random": control with the same Frobenius norm along an arbitrary rank-1 direction
            gen = torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))
            a, b = _random_unit(m, gen), _random_unit(n, gen)
            R = rescale(torch.outer(a, b).to(dW.device), fro, "random update")
    else:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    diag = update_diagnostics(dW, R, sigma1=float(S[0]))
    diag["svd"] = info["method"]
    return R, diag


def rank1_update(dW: torch.Tensor, variant: str = "trunc", seed: int = 0, method: str = "auto") -> torch.Tensor:
    """The substituted update R for one ΔW (float32, same shape).

    "trunc"     σ1 u1 v1ᵀ
    "normmatch" ‖ΔW‖_F u1 v1ᵀ                  (AlphaRL, eval/upd_rank.py)
    "residual"  ΔW − σ1 u1 v1ᵀ
    "random"    ‖ΔW‖_F a bᵀ, a, b random unit vectors from a generator seeded with `seed`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return substitute_update(dW, variant, seed=seed, method=method)[0]


def rankk_update(dW: torch.Tensor, k, normmatch: bool = False, method: str = "auto", seed: int = 0) -> torch.Tensor:
    """Rank-k part U_k diag(S_k) V_kᵀ of ΔW; normmatch=True rescales it to ‖ΔW‖_F (AlphaRL).

    k = "full" returns ΔW itself. k must be in 1..min(m, n) otherwise (ValueError).
    """
    return substitute_update(dW, "rankk", k=k, normmatch=normmatch, seed=seed, method=method)[0]


# ----------------------------------------------------------------------------------------------
# Substituted models
# ----------------------------------------------------------------------------------------------

def matrix_seed(seed: int, name: str) -> int:
    # Stable across processes (unlike hash()): every matrix gets its own random direction / start block.
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def build_substituted_model(base_model: torch.nn.Module, trained_model_or_state, variant: str, k=1, seed: int = 0,
                            normmatch: bool = False, method: str = "auto") -> torch.nn.Module:
    """A NEW model = deepcopy(base) with each target W = W0 + update(ΔW).

    variant: "base" (W0), "full" (W0 + ΔW), "trunc", "normmatch", "residual", "random", "rankk" (with k and
    normmatch), "second" (‖ΔW‖_F u2 v2ᵀ, the C0 reading's control). Non-target tensors (embeddings, lm_head,
    norms, biases) stay at BASE values for every variant, the AlphaRL convention; so "full" is the trained model
    only if RL left the non-targets untouched.
    The base model is not modified. The per-matrix diagnostics (list of dicts: name, layer, type, shape,
    fro, sigma1, e1, norm_ratio, energy_removed, dist2, ...) are attached as `model.rank1_diagnostics`, and the
    AlphaRL summary Σσ1/Σ‖ΔW‖_F as `model.rank1_summary`.
    Weights are computed in float32 and cast to the base parameter dtype when written.
    """
    if variant not in MODEL_VARIANTS + (SECOND,):
        raise ValueError(f"unknown model variant {variant!r}; valid: {', '.join(MODEL_VARIANTS + (SECOND,))}")
    _check_same_model_type(base_model, trained_model_or_state)
    base = base_model.state_dict()
    trained = _as_state(trained_model_or_state, "trained_model_or_state")
    names = _check_compatible(base, trained)
    new = copy.deepcopy(base_model)
    diags = []
    with torch.no_grad():
        for name in names:
            p = new.get_parameter(name)
            W0 = base[name].detach().float()
            dW = _delta(base[name], trained[name])
            R, d = substitute_update(dW, "rankk" if variant == "rankk" else variant, k=k, normmatch=normmatch,
                               seed=matrix_seed(seed, name), method=method)
            p.copy_((W0 + R).to(p.dtype))  # in place: keeps tying and parameter identity of the copy
            diags.append({"name": name, "layer": layer_index(name), "type": matrix_type(name),
                          "shape": list(dW.shape), **d})
    new.rank1_diagnostics = diags
    new.rank1_summary = summarize_diagnostics(diags)
    return new


def summarize_diagnostics(diags: list[dict]) -> dict:
    fro_sum = sum(d["fro"] for d in diags)
    fro2 = sum(d["fro2"] for d in diags)
    s1 = sum(d["sigma1"] for d in diags)
    return {
        "n_matrices": len(diags),
        "sigma1_sum": s1,
        "fro_sum": fro_sum,
        "alpharl_ratio": s1 / fro_sum if fro_sum > 0 else 0.0,  # Σσ1/Σ‖ΔW‖_F, the value AlphaRL prints
        "fro2_total": fro2,
        "e1_pooled": sum(d["sigma1"] ** 2 for d in diags) / fro2 if fro2 > 0 else 0.0,
        "e1_mean": sum(d["e1"] for d in diags) / len(diags) if diags else 0.0,
        "energy_removed_total": sum(d.get("energy_removed", 0.0) for d in diags),
        "dist2_total": sum(d.get("dist2", 0.0) for d in diags),
    }

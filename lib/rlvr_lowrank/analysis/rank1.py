"""Rank-1 linear algebra: update extraction, top-k SVD, rank-1 substitutions, substituted models.

Everything is per target matrix (AlphaRL's definition; docs/methods.md §1–2): for each 2-D
attention/MLP weight W (out x in, as in nn.Linear.weight) the update is ΔW = W_RL − W_base, and its
"rank-1 component" is the top singular triplet σ1 u1 v1ᵀ of ΔW.

Public API:
  deltas                     ΔW for every target matrix, with loud checks.
  svd_topk                   top-k singular triplets; exact (AlphaRL) or a certified fast path.
  rank1_update, rankk_update substitutions on one ΔW ("trunc", "normmatch", "residual", "random").
  substitute_update          the same, returning the per-matrix diagnostics too.
  update_diagnostics         e1 = σ1²/Σσ², norm ratio σ1/‖ΔW‖_F and energies.
  build_substituted_model    a new model W0 + update(ΔW), non-targets at base (AlphaRL).
The trainer-side method, PR1S, is callbacks.PeriodicRank1Callback; it calls substitute_update.

All linear algebra runs in float32 (torch.linalg rejects bf16). Norms, energies and the scale factors
of the substitutions are computed in float64, and the SVD runs on the matrix divided by a power of two
near its largest entry (exact in floating point, so ordinary inputs give bit-identical results): no
finite ΔW, however large (1e30) or small (1e-30), gives Inf or a spurious zero. A result that does not
fit in float32 at all raises OverflowError instead of silently becoming Inf.
"""
from __future__ import annotations

import copy
import math
import re
import zlib
from typing import Mapping

import torch

# Target matrices (AlphaRL, eval/svd.py): the 2-D weights of the attention and MLP blocks.
# Embeddings, lm_head, norms and biases are never targets.
TARGET_SUFFIXES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_TARGET_RE = re.compile(r"(?:^|\.)(" + "|".join(TARGET_SUFFIXES) + r")\.weight$")


def is_target(name: str, ndim: int = 2) -> bool:
    """True for a 2-D attention/MLP weight such as ``model.layers.0.self_attn.q_proj.weight``."""
    return ndim == 2 and _TARGET_RE.search(name) is not None


def target_names(state_dict: Mapping[str, "torch.Tensor"]) -> list[str]:
    """Names of the target matrices of a state dict, in state-dict order."""
    return [k for k, v in state_dict.items() if is_target(k, getattr(v, "ndim", 0))]


def matrix_type(name: str) -> str:
    """'q_proj', ..., 'down_proj' for a target name."""
    m = _TARGET_RE.search(name)
    if m is None:
        raise ValueError(f"{name!r} is not a target matrix name")
    return m.group(1)


def layer_index(name: str) -> int:
    """Decoder layer index from ``...layers.<i>....``; -1 when absent."""
    m = re.search(r"layers\.(\d+)\.", name)
    return int(m.group(1)) if m else -1


# Substitution variants on one ΔW and model variants (docs/methods.md §2).
VARIANTS = ("trunc", "normmatch", "residual", "random")
MODEL_VARIANTS = ("base", "full", "trunc", "normmatch", "residual", "random", "rankk")
SVD_METHODS = ("auto", "exact", "fast")

# Accuracy contract of the fast path (checked a posteriori, see _fast_topk): whenever σ1/σ2 >= 1.01 the
# returned σ1 has relative error <= 1e-4 and |cos(u1, u1_exact)| >= 0.9999. The internal tolerances are
# tighter than the contract (sin θ <= 2e-3 means |cos| >= 0.999998, 7x margin on sin θ; the relative bound
# 1e-5 on σ² means <= 5e-6 on σ, 20x margin) to leave room for the heuristic part of the check (the
# estimate of σ_{k+1}).
_FAST_TOL_SIN = 2e-3
_FAST_TOL_SIGMA = 1e-5
_FAST_MIN_ITER = 2
_FAST_MAX_ITER = 40


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


def _check_same_model_type(base_obj, trained_obj) -> None:
    """When both are models with a config, their model_type must agree (state dicts carry no such field)."""
    bt = getattr(getattr(base_obj, "config", None), "model_type", None)
    tt = getattr(getattr(trained_obj, "config", None), "model_type", None)
    if bt is not None and tt is not None and bt != tt:
        raise ValueError(f"architecture mismatch: base model_type {bt!r} vs trained model_type {tt!r}")


def _check_compatible(base: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor]) -> list[str]:
    """Same keys, same shapes, all floating tensors finite. Returns the target names (base order).

    Every error names the first offending tensor so that a wrong checkpoint is found at once.
    """
    base_keys, trained_keys = list(base.keys()), set(trained.keys())
    for k in base_keys:
        if k not in trained_keys:
            raise ValueError(f"architecture mismatch: tensor {k!r} is in the base state but not in the trained state")
    base_set = set(base_keys)
    for k in trained.keys():
        if k not in base_set:
            raise ValueError(f"architecture mismatch: tensor {k!r} is in the trained state but not in the base state")
    for k in base_keys:
        b, t = base[k], trained[k]
        if tuple(b.shape) != tuple(t.shape):
            raise ValueError(f"shape mismatch for tensor {k!r}: base {tuple(b.shape)} vs trained {tuple(t.shape)}")
    for which, state in (("base", base), ("trained", trained)):
        for k in base_keys:
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
# Top-k singular triplets
# ----------------------------------------------------------------------------------------------

def canonical_sign(U: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip (u_j, v_j) so that the largest-|.| entry of u_j is positive.

    Singular vectors are defined up to sign; a fixed convention makes the exact and the fast path (and
    reruns) agree. Sign alignment across checkpoints (AlphaRL) is spectra.sign_align.
    """
    idx = U.abs().argmax(dim=0)
    s = torch.sign(U[idx, torch.arange(U.shape[1], device=U.device)])
    s[s == 0] = 1
    return U * s, V * s


def _exact_topk(M: torch.Tensor, k: int):
    # AlphaRL (eval/svd.py): full thin SVD, keep the first k triplets.
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    return U[:, :k].contiguous(), S[:k].contiguous(), Vh[:k].T.contiguous()


def _fast_topk(M: torch.Tensor, k: int, seed: int):
    """Block subspace iteration with Rayleigh–Ritz and an a-posteriori check (Halko et al. 2011, Alg. 4.4/5.1).

    Why this and not torch.svd_lowrank: svd_lowrank runs a fixed niter and never says whether it converged;
    its defaults are inaccurate on flat spectra (docs/methods.md §4). Here the iteration runs until a
    residual-based bound certifies the accuracy, or gives up (caller falls back to the exact SVD).

    Iterate on a block of q = 2k+8 right vectors V (seeded Gaussian start, so deterministic):
        Y = M V;  Q = orth(Y);  B = Qᵀ M;  B = Ub S Vbᵀ;  (σ̃_j, ũ_j = Q Ub_j, ṽ_j = Vb_j);  V = Vb.
    By construction Mᵀ ũ_j = σ̃_j ṽ_j exactly, so the only residual is r_j = M ṽ_j − σ̃_j ũ_j, which costs
    nothing: M Vb is the next iteration's Y. For the symmetric A = M Mᵀ, (σ̃², ũ) is a Ritz pair with residual
    ρ = σ̃‖r‖ (r ⟂ ũ), and the classical bounds apply (Davis–Kahan sin θ, Kato–Temple):
        sin θ(ũ_j, u_j) <= ρ_j / δ_j,   (σ_j² − σ̃_j²) / σ̃_j² <= ρ_j² / (δ_j σ̃_j²),
    with δ_j the distance from σ̃_j² to the rest of the spectrum. The upper neighbour uses σ̃_{j-1}, the lower
    one an over-estimate of σ_{j+1}: (σ̃_{j+1} + ‖r_{j+1}‖)² (a Ritz value plus its residual), capped by the
    rigorous ‖M‖_F² − Σ_{i<=k} σ̃_i² for j = k. The σ_{j+1} estimate is the heuristic part (a direction the
    random block never saw would be missed); the tolerances leave 7-20x margin for it.
    Also ṽ is at least as accurate as ũ (tan θ_v <= tan θ_u σ2/σ1), so the check on ũ covers ṽ.

    Returns (U, S, V, iters) or (None, None, None, reason) when the accuracy cannot be certified within
    _FAST_MAX_ITER iterations (flat or clustered top spectrum) or when the predicted number of iterations
    to converge exceeds it (early give-up, so a flat spectrum costs a few iterations, not forty).
    """
    m, n = M.shape
    q = min(2 * k + 8, min(m, n))
    gen = torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))
    # The block is kept transposed (Vt, q x n): on CPU, Vt @ Mᵀ is ~4x faster than M @ V (measured).
    Vt = torch.linalg.qr(torch.randn(n, q, generator=gen, dtype=torch.float32)).Q.T.contiguous().to(M.device)
    Mt = M.T
    fro2 = float(torch.sum(M * M))
    history: list[float] = []
    prev = None
    for it in range(_FAST_MAX_ITER + 1):
        Y = (Vt @ Mt).T  # = M V, m x q
        if prev is not None:
            U_r, S_r = prev
            rn = (Y - U_r * S_r).norm(dim=0)
            s = [float(x) for x in S_r]
            r = [float(x) for x in rn]
            if s[0] <= 0.0:
                return None, None, None, "zero Ritz value"
            # Over-estimate of σ_{k+1}², from the Ritz value + residual and from the Frobenius norm
            # (Σ_{i>k} σ_i² <= ‖M‖_F² − Σ_{i<=k} σ̃_i², since Ritz values are lower bounds). The 1e-6 slack
            # covers float32 rounding of the subtraction.
            tail = max(fro2 - sum(x * x for x in s[:k]), 0.0) + 1e-6 * fro2
            lam_next = min(tail, (s[k] + r[k]) ** 2) if q > k else tail
            ok, target_res, worst_res = True, math.inf, 0.0
            for j in range(k):
                sj2 = s[j] * s[j]
                upper = (s[j - 1] ** 2 - sj2) if j > 0 else math.inf
                lower = sj2 - (lam_next if j == k - 1 else (s[j + 1] + r[j + 1]) ** 2)
                delta = min(upper, lower)
                rho = s[j] * r[j]
                worst_res = max(worst_res, r[j] / s[j])
                if delta <= 0:
                    ok = False
                    # never accept with an estimated gap below 1.01: aim at the residual it would need there
                    target_res = min(target_res, _FAST_TOL_SIN * (1 - 1 / 1.01**2))
                    continue
                target_res = min(target_res, _FAST_TOL_SIN * delta / sj2, math.sqrt(_FAST_TOL_SIGMA * delta / sj2))
                if rho / delta > _FAST_TOL_SIN or rho * rho / (delta * sj2) > _FAST_TOL_SIGMA:
                    ok = False
            if ok and it >= _FAST_MIN_ITER:
                return U_r[:, :k].contiguous(), S_r[:k].contiguous(), Vt[:k].T.contiguous(), it
            history.append(worst_res)
            # Early give-up: the residual shrinks geometrically at rate ~ (σ_{q+1}/σ_j)²; extrapolate it.
            if len(history) >= 4:
                rate = (history[-1] / max(history[-3], 1e-300)) ** 0.5
                if rate >= 0.99:
                    return None, None, None, f"no convergence (rate {rate:.3f}) after {it} iterations"
                need = math.log(max(target_res, 1e-12) / max(history[-1], 1e-300)) / math.log(rate)
                if it + need > _FAST_MAX_ITER:
                    return None, None, None, f"predicted {it + need:.0f} iterations > {_FAST_MAX_ITER}"
        if it == _FAST_MAX_ITER:
            break
        Q = torch.linalg.qr(Y).Q
        B = Q.T @ M  # q x n (measured ~3x faster than M.T @ Q on CPU)
        Ub, S, Vt = torch.linalg.svd(B, full_matrices=False)
        prev = (Q @ Ub, S)
    return None, None, None, f"not certified after {_FAST_MAX_ITER} iterations"


def _check_matrix(M, what: str) -> None:
    """Shape errors say what was expected (a bare tuple unpack would only say "not enough values")."""
    if not isinstance(M, torch.Tensor):
        raise TypeError(f"{what} needs a 2-D torch.Tensor (out x in, like nn.Linear.weight), got {type(M).__name__}")
    if M.ndim != 2:
        raise ValueError(f"{what} needs a 2-D tensor (out x in, like nn.Linear.weight), got shape {tuple(M.shape)} "
                         f"({M.ndim}-D); pass one target matrix ΔW, not a vector or a stack of matrices")
    if M.numel() == 0:
        raise ValueError(f"{what} needs a non-empty matrix, got shape {tuple(M.shape)}")


def _pow2_near(x: float) -> float:
    """2**e with 2**e <= x < 2**(e+1) (x > 0 finite): a scale whose division is exact."""
    return math.ldexp(1.0, math.frexp(x)[1] - 1)


_F32_MAX = float(torch.finfo(torch.float32).max)


def _rescale(x: torch.Tensor, scale: float, what: str) -> torch.Tensor:
    """x * scale in float32, refusing (instead of returning Inf) a result float32 cannot hold."""
    if float(x.detach().abs().max().double()) * scale > _F32_MAX:
        raise OverflowError(f"{what} exceed the float32 range ({_F32_MAX:.3g}); the input is too large to be a "
                            "weight update (check the checkpoints it was computed from)")
    return x * scale


def svd_topk(M: torch.Tensor, k: int = 1, method: str = "auto", seed: int = 0, return_info: bool = False):
    """Top-k singular triplets of a 2-D matrix, float32.

    Returns (U_k [m,k], S_k [k], V_k [n,k]) with M ≈ U_k diag(S_k) V_kᵀ (V is NOT transposed), plus an info
    dict {"method": "exact"|"fast"|"zero", "fallback": bool, "iters": int, "reason": str} when
    return_info=True.

    method:
      "exact": torch.linalg.svd(full_matrices=False), the AlphaRL reference.
      "fast":  checked block subspace iteration (_fast_topk), seeded, falls back to exact when the
               accuracy (σ1 rel. err <= 1e-4, |cos u1| >= 0.9999 for σ1/σ2 >= 1.01) cannot be certified.
      "auto":  "fast" for matrices with min(m, n) >= 128 and 4(2k+8) <= min(m, n), else "exact".
    Singular vectors carry a canonical sign (largest-|.| entry of u_j positive). A zero matrix returns
    zeros (no division by zero).
    """
    if method not in SVD_METHODS:
        raise ValueError(f"unknown svd method {method!r}; valid: {', '.join(SVD_METHODS)}")
    _check_matrix(M, "svd_topk")
    m, n = M.shape
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0 or k > min(m, n):
        raise ValueError(f"k must be an integer in 1..{min(m, n)} for a {m}x{n} matrix, got {k!r}")
    M = M.detach().float()
    amax = float(M.abs().max()) if M.numel() else 0.0  # NaN/Inf propagate through max: a cheap finiteness check
    if not math.isfinite(amax):
        raise ValueError("svd_topk: matrix contains NaN or Inf")
    info = {"method": "exact", "fallback": False, "iters": 0, "reason": ""}
    if amax == 0.0:
        info["method"] = "zero"
        out = (M.new_zeros(m, k), M.new_zeros(k), M.new_zeros(n, k))
        return (*out, info) if return_info else out
    q = 2 * k + 8
    use_fast = method == "fast" and q < min(m, n)
    if method == "auto":
        use_fast = min(m, n) >= 128 and 4 * q <= min(m, n)
    U = S = V = None
    if use_fast:
        # Scale to max|M| = 1 so sums of squares neither under- nor overflow in float32 (tiny RL updates).
        U, S, V, it = _fast_topk(M / amax, k, seed)
        if U is None:
            info.update(method="exact", fallback=True, reason=str(it))
        else:
            S = _rescale(S, amax, "svd_topk: singular values")
            info.update(method="fast", iters=int(it))
    if U is None:
        # Dividing by a power of two is exact, so this changes nothing for ordinary matrices and keeps
        # LAPACK's sums of squares away from float32 overflow/underflow for extreme ones.
        p2 = _pow2_near(amax)
        U, S, V = _exact_topk(M / p2 if p2 != 1.0 else M, k)
        S = _rescale(S, p2, "svd_topk: singular values")
    U, V = canonical_sign(U, V)
    return (U, S, V, info) if return_info else (U, S, V)


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
    _check_matrix(dW, "update_diagnostics")
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
    _check_matrix(dW, "rank1_update/rankk_update")
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
            if isinstance(k, bool) or not isinstance(k, int) or k <= 0 or k > min(m, n):
                raise ValueError(f"k must be 'full' or an integer in 1..{min(m, n)} for a {m}x{n} matrix, got {k!r}")
            U, S, V, info = svd_topk(dW, k, method=method, seed=seed, return_info=True)
            R = (U * S) @ V.T
            if normmatch:
                # AlphaRL (eval/upd_rank.py): α · (‖ΔW‖_F / ‖ΔW_k‖_F) · ΔW_k with α = 1.
                nk = _fro(S)
                R = _rescale(R, fro / nk, "normmatch rank-k update") if nk > 0 else torch.zeros_like(dW)
    elif variant in VARIANTS:
        U, S, V, info = svd_topk(dW, 1, method=method, seed=seed, return_info=True)
        s1, u1, v1 = S[0], U[:, 0], V[:, 0]
        if variant == "trunc":  # keep the top triplet as is (the paper's rank-1 component: the rest is eliminated)
            R = s1 * torch.outer(u1, v1)
        elif variant == "normmatch":  # AlphaRL k=1: the rank-1 direction carries all of ‖ΔW‖_F
            R = _rescale(torch.outer(u1, v1), fro, "normmatch update") if float(s1) > 0 else torch.zeros_like(dW)
        elif variant == "residual":  # the complement: what PR1S removes
            R = dW - s1 * torch.outer(u1, v1)
        else:  # "random": control with the same Frobenius norm along an arbitrary rank-1 direction
            gen = torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))
            a, b = _random_unit(m, gen), _random_unit(n, gen)
            R = _rescale(torch.outer(a, b).to(dW.device), fro, "random update")
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
    normmatch). Non-target tensors (embeddings, lm_head, norms, biases) stay at BASE values for every variant,
    the AlphaRL convention; so "full" is the trained model only if RL left the non-targets untouched.
    The base model is not modified. The per-matrix diagnostics (list of dicts: name, layer, type, shape,
    fro, sigma1, e1, norm_ratio, energy_removed, dist2, ...) are attached as `model.rank1_diagnostics`, and the
    AlphaRL summary Σσ1/Σ‖ΔW‖_F as `model.rank1_summary`.
    Weights are computed in float32 and cast to the base parameter dtype when written.
    """
    if variant not in MODEL_VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; valid: {', '.join(MODEL_VARIANTS)}")
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

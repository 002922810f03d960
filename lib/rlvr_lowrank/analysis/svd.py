"""Top-k singular triplets of one matrix: AlphaRL's exact SVD, or a block subspace iteration whose accuracy is
certified a posteriori (docs/methods.md §4), with a canonical sign so that every route and rerun agrees.

All linear algebra runs in float32 (torch.linalg rejects bf16). The SVD runs on the matrix divided by a power
of two near its largest entry (exact in floating point, so ordinary inputs give bit-identical results): no
finite matrix, however large (1e30) or small (1e-30), gives Inf or a spurious zero. A result that does not fit
in float32 at all raises OverflowError instead of silently becoming Inf.
"""
from __future__ import annotations

import math

import torch

from .. import checks

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


def canonical_sign(U: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip (u_j, v_j) so that the largest-|.| entry of u_j is positive.

    Singular vectors are defined up to sign; a fixed convention makes the exact and the fast path (and
    reruns) agree. Sign alignment across checkpoints (AlphaRL) is alignment.sign_align.
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


def check_matrix(M, what: str) -> None:
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


def rescale(x: torch.Tensor, scale: float, what: str) -> torch.Tensor:
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
    check_matrix(M, "svd_topk")
    m, n = M.shape
    checks.integer(k, "k", maximum=min(m, n), hint=f" for a {m}x{n} matrix")
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
            S = rescale(S, amax, "svd_topk: singular values")
            info.update(method="fast", iters=int(it))
    if U is None:
        # Dividing by a power of two is exact, so this changes nothing for ordinary matrices and keeps
        # LAPACK's sums of squares away from float32 overflow/underflow for extreme ones.
        p2 = _pow2_near(amax)
        U, S, V = _exact_topk(M / p2 if p2 != 1.0 else M, k)
        S = rescale(S, p2, "svd_topk: singular values")
    U, V = canonical_sign(U, V)
    return (U, S, V, info) if return_info else (U, S, V)

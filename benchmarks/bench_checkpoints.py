"""Benchmark `analyze` and `substitute` on a synthetic checkpoint pair against the straightforward approach.

The pair: a Qwen2-architecture base with the shapes of Qwen2.5-1.5B (28 layers, hidden 1536, intermediate 8960,
12 heads / 2 KV heads, vocabulary 151936, tied embeddings), bf16, sharded (2 GB shards), random N(0, 0.02²)
weights; the "RL" checkpoint is base + a planted rank-1 part (‖.‖_F = 5% of ‖W_base‖_F) + Gaussian noise (0.5%)
on every target matrix, stored in bf16 (so the known answer is e1 ≈ 0.99, reduced slightly by bf16 rounding).
--full uses 7B shapes (28 layers, hidden 3584, intermediate 18944, 28 / 4 heads, vocabulary 152064; ~15 GB per
model in bf16) or --layers N of them when the disk is short. --quick: 2 layers and a 4096-token vocabulary
(what `make bench` runs; there the straightforward SVDs run on one layer and are scaled to two, and the
heavy-tail pricing uses layer 0's attention matrices).

Every approach runs in its own subprocess; peak memory is sampled there every 10 ms from /proc/self/status:
RssAnon (anonymous memory: what the process allocated, the budget of the issue) and VmHWM (peak resident set,
which also counts the pages of memory-mapped files that happen to be resident, i.e. page cache).

  ours-analyze     pair_analysis.analyze(--k 1, --esd none): σ1, u1, v1, e1 of every target ΔW
  ours-analyze-k8  the same with the default k = 8 (σ2..σ8 from the randomized range finder)
  ours-substitute  substitute(--variant normmatch, --svd auto) -> sharded bf16 directory
  straightforward  AlphaRL's way: both models loaded with transformers (bf16), for every target matrix
                   ΔW = (W_RL − W_base) in float32 and a full torch.linalg.svd; then the normmatch model
                   (W_base + ‖ΔW‖_F u1 v1ᵀ) built in place and written with save_pretrained. Its analyze time
                   is load + SVDs, its substitute time load + SVDs + build + save. --baseline-layers N runs
                   the SVDs on the first N layers only and scales their time by 28/N (printed as such).
Accuracy: σ1 and e1 of ours against the baseline's exact SVD on the matrices both computed (goal 1e-4 rel).
Heavy tails are priced separately on --ht-layers layers: seconds per ESD fit (fp64 and fp32 Gram), |Δα|
fp32 vs fp64, and WeightWatcher 0.7.7 analyze() on the same W_RL matrices.

    python benchmarks/bench_checkpoints.py --quick
    python benchmarks/bench_checkpoints.py                 # 1.5B shapes (~6.2 GB of synthetic files)
    python benchmarks/bench_checkpoints.py --full --layers 4
The synthetic files go to --workdir (default /tmp/bench_checkpoints) and are deleted at the end (--keep).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHAPES = {"1.5b": dict(hidden_size=1536, intermediate_size=8960, num_attention_heads=12, num_key_value_heads=2,
                       vocab_size=151936, tie_word_embeddings=True),
          "7b": dict(hidden_size=3584, intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4,
                     vocab_size=152064, tie_word_embeddings=False)}


# ---------------------------------------------------------------------------------------------- set-up

def qwen2_config(shape: str, layers: int, vocab: int | None) -> dict:
    from transformers import Qwen2Config

    kw = dict(SHAPES[shape])
    if vocab:
        kw["vocab_size"] = vocab
    cfg = Qwen2Config(num_hidden_layers=layers, max_position_embeddings=4096, **kw)
    d = cfg.to_dict()
    d["architectures"] = ["Qwen2ForCausalLM"]
    d["torch_dtype"] = d["dtype"] = "bfloat16"
    return d


def write_pair(work: Path, shape: str, layers: int, vocab: int | None) -> tuple[Path, Path, float]:
    import torch

    from rlvr_lowrank.analysis.rank1 import matrix_seed
    from rlvr_lowrank.checkpoints import planted, writer

    t0 = time.perf_counter()
    cfg = qwen2_config(shape, layers, vocab)
    from transformers import AutoModelForCausalLM, Qwen2Config

    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(Qwen2Config(**{k: v for k, v in cfg.items() if k != "dtype"}))
    specs = [(n, torch.bfloat16, tuple(p.shape)) for n, p in meta.state_dict().items()
             if not (cfg["tie_word_embeddings"] and n == "lm_head.weight")]
    del meta

    def produce(name):
        shp = dict((n, s) for n, _, s in specs)[name]
        g = torch.Generator().manual_seed(matrix_seed(1, name))
        if len(shp) == 1:
            return torch.ones(shp)
        return torch.randn(*shp, generator=g).mul_(0.02)

    base = writer.write_hf_directory(work / "base", specs, produce, cfg, None, max_shard_bytes=2 * 10**9, force=True)
    rl = planted.write_planted_rl(base, work / "rl", scale=0.05, noise=0.005, max_shard_bytes=2 * 10**9, force=True)
    return base, rl, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- children

class PeakSampler:
    """Peak RssAnon / VmHWM of this process, sampled every 10 ms from /proc/self/status (kB -> MB)."""

    def __init__(self):
        self.anon = 0
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @staticmethod
    def _read(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return 0

    def _run(self):
        while not self._stop:
            self.anon = max(self.anon, self._read("RssAnon:"))
            time.sleep(0.01)

    def stop(self) -> dict:
        self._stop = True
        self._t.join()
        self.anon = max(self.anon, self._read("RssAnon:"))
        return {"peak_anon_mb": self.anon / 1024, "peak_rss_mb": self._read("VmHWM:") / 1024}


def child_ours(kind: str, base: str, rl: str, out: str) -> dict:
    from rlvr_lowrank.checkpoints import pair_analysis as pa
    from rlvr_lowrank.checkpoints.substitute import substitute

    s = PeakSampler()
    t0 = time.perf_counter()
    if kind == "analyze":
        res = pa.analyze(base, [rl], out, k=1, esd="none", force=True, quiet=True, figures=False)
    elif kind == "analyze-k8":
        res = pa.analyze(base, [rl], out, k=8, esd="none", force=True, quiet=True, figures=False)
    else:
        substitute(base, rl, out, variant="normmatch", force=True, quiet=True)
        res = None
    wall = time.perf_counter() - t0
    r = {"wall_s": wall, **s.stop()}
    if res is not None:
        r["per_matrix"] = {m["name"]: {"sigma1": m["checkpoints"][0]["sigma"][0], "e1": m["checkpoints"][0]["e1"],
                                       "svd": m["checkpoints"][0]["svd"]} for m in res["matrices"]}
    return r


def child_straightforward(base: str, rl: str, out: str, layers: int | None) -> dict:
    """AlphaRL's procedure (eval/svd.py + eval/upd_rank.py) on the CPU: both models in memory, full SVDs."""
    import torch
    from transformers import AutoModelForCausalLM

    from rlvr_lowrank.analysis.targets import is_target, layer_index

    s = PeakSampler()
    t0 = time.perf_counter()
    mb = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    mr = AutoModelForCausalLM.from_pretrained(rl, dtype=torch.bfloat16)
    t_load = time.perf_counter() - t0
    sd_b, sd_r = mb.state_dict(), mr.state_dict()
    names = [n for n in sd_b if is_target(n, sd_b[n].ndim)]
    n_layers = 1 + max(layer_index(n) for n in names)
    done = [n for n in names if layers is None or layer_index(n) < layers]
    per, new = {}, {}
    t1 = time.perf_counter()
    for n in done:
        dW = sd_r[n].float() - sd_b[n].float()
        U, S, Vh = torch.linalg.svd(dW, full_matrices=False)
        fro = float(torch.linalg.norm(dW))
        per[n] = {"sigma1": float(S[0]), "e1": float(S[0]) ** 2 / fro**2}
        new[n] = (U[:, 0], Vh[0], fro)
        del U, S, Vh, dW
    t_svd = time.perf_counter() - t1
    scale = n_layers / layers if layers else 1.0
    t2 = time.perf_counter()
    with torch.no_grad():
        params = dict(mb.named_parameters())
        for n, (u, v, fro) in new.items():
            params[n].copy_((params[n].float() + fro * torch.outer(u, v)).to(params[n].dtype))
    t_build = time.perf_counter() - t2
    del mr, sd_r
    t3 = time.perf_counter()
    mb.save_pretrained(out, max_shard_size="2GB")
    t_save = time.perf_counter() - t3
    return {"load_s": t_load, "svd_s_measured": t_svd, "svd_scale": scale, "svd_s": t_svd * scale,
            "build_s": t_build, "save_s": t_save, "analyze_s": t_load + t_svd * scale,
            "substitute_s": t_load + t_svd * scale + t_build * scale + t_save, "n_svd": len(done),
            **s.stop(), "per_matrix": per}


def child_heavy_tails(base: str, rl: str, ht_layers: int, attn_only: bool = False) -> dict:
    import numpy as np
    import torch

    from rlvr_lowrank.analysis.targets import is_target, layer_index
    from rlvr_lowrank.checkpoints import opening
    from rlvr_lowrank.checkpoints import pair_analysis as pa

    b, r = opening.open_checkpoint(base), opening.open_checkpoint(rl)
    names = [n for n in b.names() if is_target(n, len(b.shape(n))) and layer_index(n) < ht_layers
             and (not attn_only or ".self_attn." in n)]
    out = {"n_matrices": len(names)}
    alphas = {}
    for esd in ("fp64", "fp32"):
        t0 = time.perf_counter()
        alphas[esd] = {}
        for n in names:
            W0, W1 = b.get(n).float(), r.get(n).float()
            f = pa.heavy_tails(n, W0, W1, W1 - W0, esd)
            alphas[esd][n] = {k: v["alpha"] for k, v in f.items() if v}
        out[f"{esd}_s_per_matrix"] = (time.perf_counter() - t0) / len(names)   # 5 ESD fits per matrix
        out[f"{esd}_s_per_fit"] = out[f"{esd}_s_per_matrix"] / 5
    d = [abs(alphas["fp32"][n][k] - alphas["fp64"][n][k]) for n in names for k in alphas["fp64"][n]
         if np.isfinite(alphas["fp64"][n][k]) and np.isfinite(alphas["fp32"][n][k])]
    out["alpha_abs_diff_fp32_vs_fp64_max"] = float(max(d)) if d else float("nan")
    out["alpha_abs_diff_fp32_vs_fp64_median"] = float(np.median(d)) if d else float("nan")
    try:
        import weightwatcher as ww

        layers = torch.nn.ModuleList()
        for n in names:
            W = r.get(n).float()
            lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
            lin.weight.data.copy_(W)
            layers.append(lin)
        t0 = time.perf_counter()
        ww.WeightWatcher(model=torch.nn.Sequential(*layers)).analyze()
        out["ww_s_per_matrix"] = (time.perf_counter() - t0) / len(names)
        out["ours_fp64_fit_vs_ww"] = out["ww_s_per_matrix"] / out["fp64_s_per_fit"]
    except Exception as e:  # weightwatcher is optional for the benchmark
        out["ww_error"] = repr(e)
    return out


def _spawn(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "lib") + os.pathsep +
           os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True, text=True,
                       env=env)
    if p.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _child_main(spec: str) -> None:
    a = json.loads(spec)
    if a[0] == "ours":
        r = child_ours(*a[1:])
    elif a[0] == "straightforward":
        r = child_straightforward(*a[1:])
    else:
        r = child_heavy_tails(*a[1:])
    print(json.dumps(r))


# ---------------------------------------------------------------------------------------------- main

def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        return _child_main(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 layers, 4096-token vocabulary (make bench)")
    ap.add_argument("--full", action="store_true", help="7B shapes (never in CI)")
    ap.add_argument("--layers", type=int, default=None, help="decoder layers (default 28; --quick 2)")
    ap.add_argument("--baseline-layers", type=int, default=None,
                    help="run the straightforward SVDs on the first N layers only, scaled to all layers")
    ap.add_argument("--ht-layers", type=int, default=1, help="layers whose matrices price the heavy-tail fits")
    ap.add_argument("--no-ht", action="store_true", help="skip the heavy-tail pricing")
    ap.add_argument("--no-k8", action="store_true", help="skip the k = 8 analyze run")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_checkpoints"))
    ap.add_argument("--keep", action="store_true", help="keep the synthetic checkpoints")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    shape = "7b" if args.full else "1.5b"
    layers = args.layers or (2 if args.quick else 28)
    if args.quick and args.baseline_layers is None:
        args.baseline_layers = 1  # --quick: the straightforward SVDs of one layer (scaled x2), heavy tails of
        #                           layer 0's attention matrices only, to keep `make bench` short
    vocab = 4096 if args.quick else None
    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    res = {"shape": shape, "layers": layers, "vocab": vocab, "load_before": os.getloadavg()}
    try:
        base, rl, t_write = write_pair(work, shape, layers, vocab)
        res["write_pair_s"] = t_write
        res["pair_bytes"] = sum(f.stat().st_size for f in work.rglob("*.safetensors"))
        res["ours_analyze"] = _spawn(["ours", "analyze", str(base), str(rl), str(work / "an")])
        if not args.no_k8:
            res["ours_analyze_k8"] = _spawn(["ours", "analyze-k8", str(base), str(rl), str(work / "an8")])
        res["ours_substitute"] = _spawn(["ours", "substitute", str(base), str(rl), str(work / "sub")])
        shutil.rmtree(work / "sub", ignore_errors=True)
        if not args.full:
            res["straightforward"] = _spawn(["straightforward", str(base), str(rl), str(work / "sf"),
                                             args.baseline_layers])
            shutil.rmtree(work / "sf", ignore_errors=True)
        if not args.no_ht:
            res["heavy_tails"] = _spawn(["heavy_tails", str(base), str(rl), args.ht_layers, args.quick])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    res["load_after"] = os.getloadavg()
    report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float) + "\n")


def report(res: dict) -> None:
    oa, ok8, osub = res["ours_analyze"], res.get("ours_analyze_k8"), res["ours_substitute"]
    print(f"synthetic pair: {res['shape']} shapes, {res['layers']} layers, {res['pair_bytes'] / 1e9:.2f} GB on disk, "
          f"written in {res['write_pair_s']:.1f} s; load average before {res['load_before'][0]:.2f}, "
          f"after {res['load_after'][0]:.2f}")
    n_fast = sum(v["svd"] == "fast" for v in oa["per_matrix"].values())
    print(f"ours analyze (k=1):   {oa['wall_s']:7.1f} s  peak anon {oa['peak_anon_mb']:7.0f} MB  peak RSS "
          f"{oa['peak_rss_mb']:7.0f} MB  ({n_fast}/{len(oa['per_matrix'])} matrices on the fast path)")
    if ok8:
        print(f"ours analyze (k=8):   {ok8['wall_s']:7.1f} s  peak anon {ok8['peak_anon_mb']:7.0f} MB  peak RSS "
              f"{ok8['peak_rss_mb']:7.0f} MB")
    print(f"ours substitute:      {osub['wall_s']:7.1f} s  peak anon {osub['peak_anon_mb']:7.0f} MB  peak RSS "
          f"{osub['peak_rss_mb']:7.0f} MB")
    sf = res.get("straightforward")
    if sf:
        ext = f" (SVDs of {sf['n_svd']} matrices measured, x{sf['svd_scale']:.2f})" if sf["svd_scale"] != 1 else ""
        print(f"straightforward: load {sf['load_s']:.1f} s, SVDs {sf['svd_s']:.1f} s{ext}, "
              f"build {sf['build_s']:.1f} s, "
              f"save {sf['save_s']:.1f} s; peak anon {sf['peak_anon_mb']:.0f} MB, peak RSS {sf['peak_rss_mb']:.0f} MB")
        both = [n for n in sf["per_matrix"] if n in oa["per_matrix"]]
        es = max(abs(oa["per_matrix"][n]["sigma1"] / sf["per_matrix"][n]["sigma1"] - 1) for n in both)
        ee = max(abs(oa["per_matrix"][n]["e1"] / sf["per_matrix"][n]["e1"] - 1) for n in both)
        ra = sf["analyze_s"] / oa["wall_s"]
        rs = sf["substitute_s"] / osub["wall_s"]
        ma, ms = sf["peak_anon_mb"] / oa["peak_anon_mb"], sf["peak_anon_mb"] / osub["peak_anon_mb"]
        goal = lambda ok: "meets goal" if ok else "MISSES goal"  # noqa: E731
        print(f"analyze:    {ra:6.1f}x faster ({goal(ra >= 10)} 10x), anon memory 1/{ma:.1f} ({goal(ma >= 5)} 1/5)")
        print(f"substitute: {rs:6.1f}x faster ({goal(rs >= 10)} 10x), anon memory 1/{ms:.1f} ({goal(ms >= 5)} 1/5)")
        print(f"accuracy on {len(both)} matrices: max rel. error sigma1 {es:.2e}, e1 {ee:.2e} "
              f"({goal(max(es, ee) <= 1e-4)} 1e-4)")
        res["ratios"] = {"analyze_speed": ra, "substitute_speed": rs, "analyze_anon_mem": ma,
                         "substitute_anon_mem": ms, "sigma1_rel_err": es, "e1_rel_err": ee}
    ht = res.get("heavy_tails")
    if not ht:
        return
    ww = (f"; WeightWatcher analyze() {ht['ww_s_per_matrix']:.2f} s/matrix ({ht['ours_fp64_fit_vs_ww']:.1f}x one "
          "fp64 fit)") if "ww_s_per_matrix" in ht else f"; WeightWatcher: {ht.get('ww_error')}"
    print(f"heavy tails on {ht['n_matrices']} matrices (5 fits each: W_base, W_RL, ΔW, 2 shuffled): fp64 "
          f"{ht['fp64_s_per_matrix']:.2f} s/matrix, fp32 {ht['fp32_s_per_matrix']:.2f} s/matrix; |Δα| fp32 vs fp64 "
          f"max {ht['alpha_abs_diff_fp32_vs_fp64_max']:.1e}, median {ht['alpha_abs_diff_fp32_vs_fp64_median']:.1e}{ww}")


if __name__ == "__main__":
    main()

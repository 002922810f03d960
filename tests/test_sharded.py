"""PR1S, the trajectory recorder and the spectral monitor under sharded training (rlvr_lowrank.sharding).

The FSDP2 tests run real torch FSDP2 (fully_shard, DTensor parameters, gloo) in 2 CPU processes through
tests/fsdp2_worker.py, a plain training loop on the tiny model: TRL's GRPOTrainer does not get FSDP from
accelerate on CPU (docs/sharded_training.md). The DeepSpeed tests run real DeepSpeed ZeRO-2/3 engines on CPU
through tests/deepspeed_worker.py and are skipped where deepspeed is not installed (it is not in the
default environment: requirements-deepspeed.txt).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlvr_lowrank import fileio, models, paths
from rlvr_lowrank.models import sharding
from rlvr_lowrank.training import pr1s

TESTS = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(script: str, *args: str, env_extra: dict | None = None, timeout: int = 300):
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           str(TESTS / script), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(paths.ROOT / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])]), **(env_extra or {})}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=paths.ROOT)
    proc.seconds = time.perf_counter() - t0
    return proc


def _tail(proc) -> str:
    return proc.stdout[-3000:] + proc.stderr[-5000:]


# ---------------------------------------------------------------------------------------------------------
# FSDP2, two processes
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fsdp2(tmp_path_factory):
    """Two torchrun launches: (1) bad layouts, recorder/monitor outputs, an uninterrupted run and a run stopped
    after step 5; (2) in a fresh process group, the stopped run resumed from its step-4 DCP checkpoint, then a
    run whose ranks disagree (it must fail)."""
    out = tmp_path_factory.mktemp("fsdp2")
    first = _torchrun("fsdp2_worker.py", "layout", "equiv", "full", "part", "--out", str(out))
    assert first.returncode == 0, _tail(first)
    second = _torchrun("fsdp2_worker.py", "resume", "disagree", "--out", str(out))
    return out, first, second


def _ranks(run: Path) -> list[dict]:
    return [json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_pr1s_under_fsdp2_leaves_an_exactly_rank1_update_identical_on_both_ranks(fsdp2):
    out, _, _ = fsdp2
    run = out / "full"
    r0, r1 = _ranks(run)
    assert sorted(map(int, r0["ratios"])) == [2, 4, 6, 8]  # a substitution every 2 of the 8 steps
    for step, ratio in r0["ratios"].items():  # gathered ΔW (fp64) after each substitution, worst matrix
        assert ratio < 1e-6, (step, ratio)
    assert r0["digests"] == r1["digests"]  # every gathered weight, after each substitution, bitwise equal
    assert r0["losses"]["8"] < r0["losses"]["1"]  # it trained
    done = fileio.read_json(run / "DONE")
    assert (done == {"steps": 8, "processes": 2, "final_digest": r0["final_digest"]}
            and r1["final_digest"] == r0["final_digest"])
    # rank 0 alone writes the substitution log, one line per substitution
    assert [s["step"] for s in fileio.read_jsonl(run / "substitutions.jsonl")] == [2, 4, 6, 8]


@pytest.mark.slow
def test_fsdp2_run_resumes_from_a_distributed_checkpoint_bitwise(fsdp2):
    out, _, _ = fsdp2
    full, resumed = _ranks(out / "full")[0], _ranks(out / "interrupted")
    assert resumed[0]["start"] == 5  # continued after the step-4 checkpoint (step 5 was lost with the stop)
    assert (out / "interrupted" / "DONE").exists()
    # the same data, weights and Adam moments: the resumed run ends exactly where the uninterrupted one did
    assert resumed[0]["final_digest"] == resumed[1]["final_digest"] == full["final_digest"]
    assert {k: full["losses"][k] for k in resumed[0]["losses"]} == resumed[0]["losses"]
    assert {k: full["ratios"][k] for k in resumed[0]["ratios"]} == resumed[0]["ratios"]
    # the substitution log: steps 2, 4 from the first process group, 6, 8 from the resumed one
    assert [s["step"] for s in fileio.read_jsonl(out / "interrupted" / "substitutions.jsonl")] == [2, 4, 6, 8]


@pytest.mark.slow
def test_ranks_that_disagree_on_a_substitute_stop_the_run_without_done(fsdp2):
    out, _, second = fsdp2
    assert second.returncode != 0, "the fault-injected run must fail"
    assert "RankDisagreementError" in second.stderr and "model.layers.0.self_attn.q_proj.weight" in second.stderr
    assert not (out / "disagree" / "DONE").exists()


@pytest.mark.slow
def test_fsdp2_layouts_the_write_back_cannot_handle_are_refused_by_name(fsdp2):
    out, _, _ = fsdp2
    for res in _ranks(out / "layout"):
        assert "model.layers.0.self_attn.q_proj.weight" in res["mesh2d"] and "2-D device mesh" in res["mesh2d"]
        assert "Replicate(), Shard(dim=0)" in res["mesh2d"]
        assert "model.layers.0.self_attn.q_proj.weight" in res["shard1"] and "Shard(dim=1)" in res["shard1"]
        assert "FSDP1" in res["fsdp1"] and "fsdp_version: 2" in res["fsdp1"]


@pytest.mark.slow
def test_fsdp2_optimizer_state_reset_drops_the_sharded_moments_of_targets_only(fsdp2):
    out, _, _ = fsdp2
    for res in _ranks(out / "layout"):
        assert res["moment_type"] == "DTensor"  # FSDP2's Adam moments are sharded like the parameters
        assert res["reset_targets_without_state"] == res["n_targets"] == 28
        assert res["reset_non_targets_with_state"] == 10  # embeddings (tied lm_head) and the norms keep theirs
        assert res["after_next_step_with_state"] == 28  # lazily re-created by the next step


@pytest.mark.slow
def test_recorder_and_monitor_under_fsdp2_equal_the_unsharded_outputs(fsdp2, tmp_path):
    """Same weights (tests/fsdp2_worker.perturbed), sharded over 2 processes vs one unsharded process."""
    from types import SimpleNamespace

    sys.path.insert(0, str(TESTS))
    try:
        import fsdp2_worker
    finally:
        sys.path.remove(str(TESTS))
    from rlvr_lowrank.training.monitor import SpectralMonitor
    from rlvr_lowrank.training.trajectory import TrajectoryRecorder

    out, _, _ = fsdp2
    base, trained = fsdp2_worker.perturbed()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    TrajectoryRecorder(base_state, tmp_path / "trajectory", every=1, k=2, factor_dtype="float32").record(trained, 7)
    mon = SpectralMonitor(every=1, log_path=tmp_path / "monitor.jsonl", base_state=base_state)
    mon.on_step_end(None, SimpleNamespace(global_step=7, max_steps=7, log_history=[]), None, model=trained)

    ref = fileio.load_tensors(tmp_path / "trajectory" / "step-00007.safetensors")
    got = fileio.load_tensors(out / "equiv" / "rank0" / "trajectory" / "step-00007.safetensors")
    # U, S, V, Wsv, dF and the increment's incU, incS, incV, incF per matrix
    assert set(got) == set(ref) and len(ref) == 9 * 28
    for key in ref:
        assert torch.allclose(got[key], ref[key], rtol=1e-5, atol=1e-6), key
    assert not (out / "equiv" / "rank1").exists()  # rank 0 alone writes
    (ref_line,), (got_line,) = (fileio.read_jsonl(tmp_path / "monitor.jsonl"),
                                fileio.read_jsonl(out / "equiv" / "rank0" / "monitor.jsonl"))
    assert [m["name"] for m in got_line["per_matrix"]] == [m["name"] for m in ref_line["per_matrix"]]
    for g, r in zip(got_line["per_matrix"], ref_line["per_matrix"]):
        assert g["rank1_energy"] == pytest.approx(r["rank1_energy"], rel=1e-5)
        assert g["hill_alpha"] == pytest.approx(r["hill_alpha"], rel=1e-5)
    for key in ("spectral/rank1_energy", "spectral/hill_alpha"):
        assert got_line[key] == pytest.approx(ref_line[key], rel=1e-5)
    # both ranks measured (the gathers are collectives) and agree
    r0, r1 = (json.loads((out / "equiv" / f"rank{r}.json").read_text())["records"] for r in (0, 1))
    assert r0 == r1


# ---------------------------------------------------------------------------------------------------------
# DeepSpeed ZeRO, two processes (optional: needs deepspeed, see requirements-deepspeed.txt)
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("stage,bf16", [(2, True), (3, False)])
def test_pr1s_under_deepspeed_zero_writes_the_fp32_master(tmp_path, stage, bf16):
    pytest.importorskip("deepspeed", reason="deepspeed is an optional extra (requirements-deepspeed.txt)")
    proc = _torchrun("deepspeed_worker.py", "--stage", str(stage), *(["--bf16"] if bf16 else []),
                     "--out", str(tmp_path), env_extra={"DS_ACCELERATOR": "cpu"}, timeout=600)
    assert proc.returncode == 0, _tail(proc)
    res = [json.loads((tmp_path / f"zero{stage}{'_bf16' if bf16 else ''}_rank{r}.json").read_text()) for r in (0, 1)]
    assert res[0] == res[1]
    r = res[0]
    assert r["linked"] and r["strategy"] == "deepspeed"
    if stage < 3:  # the reason for the master path: a plain edit of the module copy is undone by the next step
        assert r["plain_edit_survives_step"] is False
    assert sorted(map(int, r["ratios"])) == [2, 4, 6] and max(r["ratios"].values()) < 1e-6
    assert r["module_equals_master"]  # the next forward uses the substituted weights


# ---------------------------------------------------------------------------------------------------------
# single process
# ---------------------------------------------------------------------------------------------------------

def test_plain_tensors_pass_through_and_agreement_is_trivial_in_one_process():
    w = torch.randn(4, 3)
    assert sharding.full_weight(w) is not None and torch.equal(sharding.full_weight(w), w)
    sharding.check_layout("x.q_proj.weight", w)
    assert sharding.detect(torch.nn.Linear(3, 4)) == "plain"
    assert sharding.assert_ranks_agree("w", w) == sharding.digest(w.clone())
    assert sharding.digest(w) != sharding.digest(w + 1e-7)  # bitwise, not approximate
    new = torch.randn(4, 3)
    p = torch.nn.Parameter(w.clone())
    sharding.write_full_weight(p, new)
    assert torch.equal(p.detach(), new)
    with pytest.raises(sharding.ShardingError, match="shape"):
        sharding.write_full_weight(p, torch.zeros(3, 4))


def test_under_deepspeed_a_parameter_without_an_fp32_master_link_is_refused_by_name():
    with pytest.raises(sharding.ShardingError, match="'m.q_proj.weight'.*DeepSpeed.*2424"):
        sharding.check_layout("m.q_proj.weight", torch.nn.Parameter(torch.zeros(2, 2)), strategy="deepspeed")


def test_pr1s_refuses_a_lora_model():
    from peft import LoraConfig, get_peft_model

    model, _ = models.load_model(paths.TINY_BASE)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    lora = get_peft_model(model, LoraConfig(r=1, target_modules=["q_proj"]))
    cb = pr1s.PeriodicRank1Callback(base_state, every=1)
    with pytest.raises(NotImplementedError, match="LoRA"):
        cb.substitute(lora, None, step=1)


def test_an_fsdp_launch_that_did_not_shard_the_model_is_reported(monkeypatch):
    """accelerate ignores its FSDP config on CPU and builds DDP: say so instead of pretending to shard."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.warns(UserWarning, match="NOT sharded"):
        assert sharding.detect(torch.nn.Linear(3, 4)) == "plain"

"""benchmarks/profile_step.py: the phase and kind split of profiler events, on real torch.profiler events."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.pipeline import readme_real_model, readme_speed


@pytest.fixture(scope="module")
def prof_step():
    spec = importlib.util.spec_from_file_location("profile_step", paths.ROOT / "benchmarks" / "profile_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_kinds_by_name_and_shape(prof_step):
    assert prof_step.kind_of("aten::mm", [[8, 576], [576, 49152]], 49152) == "matmul, LM head"
    assert prof_step.kind_of("aten::addmm", [[1536], [8, 576], [576, 1536]], 49152) == "matmul, other"
    assert prof_step.kind_of("aten::_scaled_dot_product_flash_attention_for_cpu", None, 10) == "attention"
    assert prof_step.kind_of("aten::_log_softmax", [[8, 49152]], 49152) == "log-probabilities"
    assert prof_step.kind_of("aten::_foreach_addcdiv_", None, 10) == "optimizer kernels"
    assert prof_step.kind_of("aten::add", [[8, 8]], 10) == "other ops"


def test_split_attributes_real_profiler_events_to_their_phase(prof_step):
    """Operators run inside the markers, profiled for real: each lands in its phase and kind, the self times
    of a phase never exceed its wall time, and outside-ops time is what is left."""
    vocab = 97
    a, head, w = torch.randn(64, 32), torch.randn(32, vocab), torch.randn(32, 32)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        torch.mm(a, w)  # outside any step: not counted
        for _ in range(2):
            with torch.profiler.record_function("phase::step"):
                with torch.profiler.record_function("phase::generation"):
                    for _ in range(20):
                        torch.mm(a, head)
                torch.log_softmax(torch.mm(a, head), dim=-1)  # the loss phase
                with torch.profiler.record_function("phase::optimizer"):
                    torch._foreach_add_([w], [w])
    res = prof_step.split(prof.events(), vocab=vocab)
    assert res["n_steps"] == 2
    gen, loss, opt = (res["phases"][p] for p in ("generation", "loss", "optimizer"))
    assert gen["matmul, LM head"] > 0 and gen["log-probabilities"] == 0 and gen["matmul, other"] == 0
    assert loss["log-probabilities"] > 0 and loss["matmul, LM head"] > 0
    assert opt["optimizer kernels"] > 0 and opt["matmul, LM head"] == 0
    for row in (gen, loss, opt):
        ops = sum(row[k] for k in prof_step.KINDS)
        assert 0 < ops <= row["wall_s"] + 1e-6
        assert row["outside ops"] == pytest.approx(row["wall_s"] - ops)


def test_profile_block_renders_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(readme_real_model.paths, "REPORTS", tmp_path)
    assert "Not measured yet" in readme_speed.smollm2_profile_block()
    kinds = ["matmul, LM head", "other ops"]

    def row(wall, head):
        return {"wall_s": wall, "matmul, LM head": head, "other ops": 0.5, "outside ops": wall - head - 0.5}

    fileio.write_json(tmp_path / "smollm2" / "profile_step.json", {
        "cpu": {"model": "Some CPU", "bf16_feature": None}, "load_average_before": 0.1, "cpu_count": 2,
        "torch": "2.x", "kinds": kinds,
        "settings": [{"threads": 1, "sampler": "kv", "precision": "fp32", "warmup": 2, "n_steps": 2,
                      "phases": {"generation": row(4.0, 2.0), "loss": row(8.0, 3.0), "optimizer": row(2.0, 0.0)}}]})
    block = readme_speed.smollm2_profile_block()
    assert "Some CPU (no bf16 units; load average 0.10 on 2 logical CPUs" in block
    assert "**1 thread(s)**, sampler `kv`, fp32: **7.00 s** per step (2 steps after 2 warm-up)" in block
    assert "| generation (rollout) | 2.000 | 1.000 | 0.250 | 0.750 |" in block
    assert "| optimizer step | 1.000 | 0.000 | 0.250 | 0.750 |" in block
    d = fileio.read_json(tmp_path / "smollm2" / "profile_step.json")
    d["settings"][0].update(kind_split_withheld="self times exceed the wall",
                            phases={p: {"wall_s": w} for p, w in (("generation", 4.0), ("loss", 8.0),
                                                                  ("optimizer", 2.0))})
    fileio.write_json(tmp_path / "smollm2" / "profile_step.json", d)
    block = readme_speed.smollm2_profile_block()
    assert "| generation (rollout) | 2.000 | \n" in block + "\n" and "outside ops" not in block
    assert "By operator kind: withheld, self times exceed the wall." in block

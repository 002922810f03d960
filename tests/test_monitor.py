"""SpectralMonitor: known rank-1 / rank-2 updates, agreement with dense computations, and a real (short)
plain TRL GRPO run with the monitor attached, as in the README example."""
import json

import numpy as np
import pytest
import torch

from rlvr_lowrank import models, paths, rank1, spectra
from rlvr_lowrank.monitor import SpectralMonitor


def test_measure_known_updates_against_dense_svd():
    model, _ = models.load_model(paths.TINY_BASE)
    mon = SpectralMonitor(every=1, base_state=model.state_dict())
    names = rank1.target_names(model.state_dict())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i, name in enumerate(names):
            p = model.get_parameter(name)
            m, n = p.shape
            u, v = torch.randn(m, 2, generator=g), torch.randn(n, 2, generator=g)
            u, v = torch.linalg.qr(u)[0], torch.linalg.qr(v)[0]
            if i % 2 == 0:  # exactly rank 1: energy share 1
                p += 0.1 * torch.outer(u[:, 0], v[:, 0])
            else:  # two equal orthogonal directions: share 1/2
                p += 0.1 * (torch.outer(u[:, 0], v[:, 0]) + torch.outer(u[:, 1], v[:, 1]))
    rec = mon.measure(model, step=1)
    by_name = {r["name"]: r for r in rec["per_matrix"]}
    for i, name in enumerate(names):
        assert by_name[name]["rank1_energy"] == pytest.approx(1.0 if i % 2 == 0 else 0.5, abs=1e-4)
        ev = torch.linalg.svdvals(model.get_parameter(name).detach().double()).numpy() ** 2
        assert by_name[name]["hill_alpha"] == pytest.approx(spectra.hill_alpha(ev), rel=1e-6)
    assert rec["spectral/rank1_energy"] == pytest.approx(0.75, abs=1e-4)
    assert np.isnan(rec["spectral/u1_cos_prev"])  # first measurement: nothing to compare with
    rec2 = mon.measure(model, step=2)  # same weights: u1 unchanged (sign-invariant)
    assert rec2["spectral/u1_cos_prev"] == pytest.approx(1.0, abs=1e-5)


def test_zero_update_is_skipped_not_divided_by_zero_and_bad_settings_refused():
    model, _ = models.load_model(paths.TINY_BASE)
    rec = SpectralMonitor(every=1, base_state=model.state_dict()).measure(model, 0)
    assert np.isnan(rec["spectral/rank1_energy"]) and np.isfinite(rec["spectral/hill_alpha"])
    with pytest.raises(ValueError, match="positive integer"):
        SpectralMonitor(every=0)
    with pytest.raises(ValueError, match="no target matrices"):
        SpectralMonitor(base_state={"embed.weight": torch.zeros(3, 3)})


def test_monitor_in_a_plain_trl_grpo_run(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank import tasks

    torch.manual_seed(0)
    model, tok = models.load_model(paths.TINY_BASE)
    items = tasks.load_items("math", "rl_train")[:8]
    ds = Dataset.from_list([{"prompt": it.prompt, "answer": it.answer} for it in items])
    args = GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=64, learning_rate=5e-5, use_cpu=True, bf16=False, report_to="none",
                      logging_steps=1, save_strategy="no", disable_tqdm=True, beta=0.0, seed=0)
    mon = SpectralMonitor(every=2, log_path=tmp_path / "spectral.jsonl")
    trainer = GRPOTrainer(model=model, reward_funcs=tasks.math_reward, args=args, train_dataset=ds,
                          processing_class=tok, callbacks=[mon])
    trainer.train()
    logged = [h for h in trainer.state.log_history if "spectral/rank1_energy" in h]
    assert [h["step"] for h in logged] == [2, 4]
    lines = [json.loads(x) for x in (tmp_path / "spectral.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4] and len(lines[0]["per_matrix"]) == 28
    assert 0 < logged[-1]["spectral/rank1_energy"] <= 1 and 0 <= logged[-1]["spectral/u1_cos_prev"] <= 1

"""Tests for the general training callbacks (training.pr1s, .monitor, .trajectory): PR1S inside real trainers
(against dense references), the spectral monitor on known rank-1 / rank-2 updates, and the trajectory
recorder's snapshots."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rlvr_lowrank import models, paths
from rlvr_lowrank.analysis import power_law
from rlvr_lowrank.analysis.targets import target_names
from rlvr_lowrank.fileio import read_jsonl
from rlvr_lowrank.training.monitor import SpectralMonitor
from rlvr_lowrank.training.pr1s import PeriodicRank1Callback
from rlvr_lowrank.world import rewards
from test_rank1 import (  # the small models both test files build
    close,
    np_rank1,
    tiny_llama,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# ----------------------------------------------------------------------------------------------
# PeriodicRank1Callback
# ----------------------------------------------------------------------------------------------

class SpyPR1S(PeriodicRank1Callback):
    """Records the weights and optimizer state just before and after each substitution."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.param_ids = {n: id(p) for n, p in kwargs["model"].named_parameters()}
        return super().on_train_begin(args, state, control, **kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        model, opt = kwargs["model"], kwargs["optimizer"]
        if state.global_step % self.every == 0:
            self.before = {n: p.detach().clone() for n, p in model.named_parameters()}
            self.opt_before = {n: {k: v.clone() for k, v in opt.state[p].items()} for n, p in model.named_parameters()}
        super().on_step_end(args, state, control, **kwargs)
        if state.global_step % self.every == 0:
            self.after = {n: p.detach().clone() for n, p in model.named_parameters()}
            self.opt_after = {n: (p in opt.state and len(opt.state[p]) > 0) for n, p in model.named_parameters()}
            self.opt_after_vals = {n: {k: v.clone() for k, v in opt.state[p].items()}
                                   for n, p in model.named_parameters() if p in opt.state}
            self.same_objects = all(id(p) == self.param_ids[n] for n, p in model.named_parameters())
            group_ids = {id(p) for g in opt.param_groups for p in g["params"]}
            self.opt_has_same_objects = all(id(p) in group_ids for p in model.parameters())


def _train(tmp_path, variant, optimizer_state, every=2, max_steps=3):
    from transformers import Trainer, TrainingArguments

    model = tiny_llama(seed=0, tie=True)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": (ids := torch.randint(0, 40, (12,), generator=g)), "labels": ids.clone()} for _ in range(16)]
    log = tmp_path / "substitutions.jsonl"
    cb = SpyPR1S(base_state, every=every, variant=variant, optimizer_state=optimizer_state, log_path=log)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=max_steps, per_device_train_batch_size=4,
                             learning_rate=2e-2, lr_scheduler_type="constant", warmup_steps=0, use_cpu=True,
                             report_to="none", save_strategy="no", logging_steps=1, seed=0, disable_tqdm=True,
                             dataloader_num_workers=0, optim="adamw_torch", weight_decay=0.0)
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[cb])
    cb.trainer = trainer
    trainer.train()
    return trainer, cb, base_state, log


@pytest.mark.parametrize("variant,optimizer_state", [("normmatch", "keep"), ("trunc", "reset")])
def test_callback_with_real_trainer(tmp_path, variant, optimizer_state):
    trainer, cb, base_state, log = _train(tmp_path, variant, optimizer_state)
    targets = target_names(base_state)
    assert len(cb.history) == 1 and cb.history[0]["step"] == 2
    assert cb.same_objects and cb.opt_has_same_objects

    energies = {}
    for n in cb.before:
        if n not in targets:  # non-targets (tied embeddings, norms) untouched by the substitution
            assert torch.equal(cb.after[n], cb.before[n]), n
            continue
        dW = cb.before[n] - base_state[n]
        assert float(dW.norm()) > 0, "the optimizer did not move the weights; the test would be vacuous"
        ref = base_state[n].double().numpy() + np_rank1(dW, variant)
        close(cb.after[n], ref, rtol=2e-5)
        fro2 = float(dW.double().norm() ** 2)
        energies[n] = fro2 - float(np.linalg.norm(np_rank1(dW, variant)) ** 2)
        if variant == "trunc":  # the substitution actually removed something
            assert energies[n] > 0

    opt = trainer.optimizer
    for n, p in trainer.model.named_parameters():
        if optimizer_state == "reset" and n in targets:
            assert not cb.opt_after[n], f"state of {n} not popped"
            assert int(opt.state[p]["step"]) == 1  # re-initialised lazily at step 3
        else:
            assert cb.opt_after[n]
            for key, v in cb.opt_before[n].items():
                assert torch.equal(cb.opt_after_vals[n][key], v), (n, key)
            assert int(opt.state[p]["step"]) == 3

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)

    rows = read_jsonl(log)
    assert len(rows) == 1 and rows[0]["step"] == 2 and rows[0]["variant"] == variant
    mats = {m["name"]: m for m in rows[0]["matrices"]}
    assert set(mats) == set(targets)
    for n, e in energies.items():
        assert abs(mats[n]["energy_removed"] - e) <= 1e-4 * mats[n]["fro2"] + 1e-12
        assert 0 < mats[n]["e1"] <= 1
    assert abs(rows[0]["energy_removed_total"] - sum(m["energy_removed"] for m in mats.values())) < 1e-9


def test_callback_direct_calls_anchor_last_and_guards(tmp_path):
    model = tiny_llama(seed=2, tie=False)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    cb = PeriodicRank1Callback(base_state, every=2, variant="trunc", anchor="last", optimizer_state="reset")
    state = SimpleNamespace(global_step=1, is_world_process_zero=True)
    args = SimpleNamespace()
    x = torch.randint(0, 40, (2, 8), generator=torch.Generator().manual_seed(0))
    name = "model.layers.1.mlp.gate_proj.weight"
    for step in (1, 2, 3, 4):
        opt.zero_grad()
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        state.global_step = step
        before = model.get_parameter(name).detach().clone()
        cb.on_step_end(args, state, None, model=model, optimizer=opt)
        after = model.get_parameter(name).detach()
        if step % 2:
            assert torch.equal(before, after)  # not a substitution step
    assert [h["step"] for h in cb.history] == [2, 4]
    # anchor="last": the cumulative update from base has rank <= number of substitutions
    D = (model.get_parameter(name).detach() - base_state[name]).double().numpy()
    assert np.linalg.matrix_rank(D, tol=1e-5 * np.linalg.norm(D)) == 2

    with pytest.raises(ValueError, match="generation_every"):
        PeriodicRank1Callback(base_state, every=3, generation_every=2)
    with pytest.raises(ValueError, match="positive"):
        PeriodicRank1Callback(base_state, every=0)
    with pytest.raises(ValueError, match="trunc, normmatch"):
        PeriodicRank1Callback(base_state, every=2, variant="residual")
    # GRPO args: a generation every 4 micro-steps; every=2 would substitute mid-buffer
    grpo_args = SimpleNamespace(steps_per_generation=4, gradient_accumulation_steps=1, num_iterations=1)
    bad = PeriodicRank1Callback(base_state, every=2)
    with pytest.raises(ValueError, match="generation boundaries"):
        bad.on_step_end(grpo_args, SimpleNamespace(global_step=2), None, model=model, optimizer=opt)
    ok = PeriodicRank1Callback(base_state, every=4)
    ok.on_step_end(grpo_args, SimpleNamespace(global_step=4), None, model=model, optimizer=opt)
    assert len(ok.history) == 1
    # anchor keys must match the model's parameter names
    wrong = PeriodicRank1Callback({"x." + k: v for k, v in base_state.items()}, every=1)
    with pytest.raises(ValueError, match="not a parameter"):
        wrong.substitute(model, opt, step=1)


def test_callback_never_silently_skips_deepspeed_params():
    """A ZeRO-partitioned parameter goes through DeepSpeed's fp32-master API (rlvr_lowrank.sharding); without
    an importable deepspeed that is an error naming the fix, never a silent in-place edit or a no-op."""
    try:
        import deepspeed  # noqa: F401
        pytest.skip("deepspeed is importable here; this checks the error without it")
    except ImportError:
        pass
    from rlvr_lowrank.models import sharding

    model = tiny_llama(seed=0)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    cb = PeriodicRank1Callback(base_state, every=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for p in model.parameters():
        p.ds_id = 0  # what ZeRO-3 attaches to partitioned parameters
    with pytest.raises(sharding.ShardingError, match="deepspeed"):
        cb.substitute(model, None, step=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _char_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1}
    for c in "0123456789+=abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(c, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>")


@pytest.mark.slow
def test_callback_in_real_grpo_trainer(tmp_path):
    """Integration: PR1S inside trl.GRPOTrainer (generation, AcceleratedOptimizer, on_step_end ordering)."""
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    tok = _char_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = 0, 1
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    ds = Dataset.from_dict({"prompt": [f"{a}+{b}=" for a in range(4) for b in range(4)]})

    def distinct_chars(completions, **kwargs):  # a toy verifiable reward with within-group variance
        return [float(len(set(c))) for c in completions]

    def config(**kw):
        return GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, fp16=False,
                          gradient_checkpointing=False, per_device_train_batch_size=8, num_generations=4,
                          max_completion_length=8, max_steps=3, learning_rate=1e-2, logging_steps=1, report_to="none",
                          save_strategy="no", beta=0.0, seed=0, disable_tqdm=True, dataloader_num_workers=0, **kw)

    log = tmp_path / "substitutions.jsonl"
    cb = SpyPR1S(base_state, every=2, variant="normmatch", optimizer_state="reset", log_path=log)
    trainer = GRPOTrainer(model=model, reward_funcs=distinct_chars, args=config(), train_dataset=ds,
                          processing_class=tok, callbacks=[cb])
    cb.trainer = trainer
    trainer.train()
    assert [h["step"] for h in cb.history] == [2]
    assert cb.same_objects and cb.opt_has_same_objects
    targets = target_names(base_state)
    for n in targets:
        dW = cb.before[n] - base_state[n]
        assert float(dW.norm()) > 0
        close(cb.after[n], base_state[n].double().numpy() + np_rank1(dW, "normmatch"), rtol=2e-5)
        assert not cb.opt_after[n]
    rows = [h for h in trainer.state.log_history if "loss" in h]
    assert len(rows) == 3 and all(math.isfinite(h["loss"]) and math.isfinite(h["reward"]) for h in rows)
    assert read_jsonl(log)[0]["step"] == 2

    # a generation every 2 optimizer steps: substituting every step would cut a generation buffer
    bad = PeriodicRank1Callback(base_state, every=1)
    trainer2 = GRPOTrainer(model=LlamaForCausalLM(cfg), reward_funcs=distinct_chars,
                           args=config(steps_per_generation=2), train_dataset=ds, processing_class=tok, callbacks=[bad])
    with pytest.raises(ValueError, match="generation boundaries"):
        trainer2.train()


# ----------------------------------------------------------------------------------------------
# SpectralMonitor
# ----------------------------------------------------------------------------------------------

def test_measure_known_updates_against_dense_svd():
    model, _ = models.load_model(paths.TINY_BASE)
    mon = SpectralMonitor(every=1, base_state=model.state_dict())
    names = target_names(model.state_dict())
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
        assert by_name[name]["hill_alpha"] == pytest.approx(power_law.hill_alpha(ev), rel=1e-6)
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


@pytest.mark.slow
def test_monitor_in_a_plain_trl_grpo_run(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank.world import tasks

    torch.manual_seed(0)
    model, tok = models.load_model(paths.TINY_BASE)
    items = tasks.load_items("math", "rl_train")[:8]
    ds = Dataset.from_list([{"prompt": it.prompt, "answer": it.answer} for it in items])
    args = GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=64, learning_rate=5e-5, use_cpu=True, bf16=False, report_to="none",
                      logging_steps=1, save_strategy="no", disable_tqdm=True, beta=0.0, seed=0)
    mon = SpectralMonitor(every=2, log_path=tmp_path / "spectral.jsonl")
    trainer = GRPOTrainer(model=model, reward_funcs=rewards.math_reward, args=args, train_dataset=ds,
                          processing_class=tok, callbacks=[mon])
    trainer.train()
    logged = [h for h in trainer.state.log_history if "spectral/rank1_energy" in h]
    assert [h["step"] for h in logged] == [2, 4]
    lines = [json.loads(x) for x in (tmp_path / "spectral.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4] and len(lines[0]["per_matrix"]) == 28
    assert 0 < logged[-1]["spectral/rank1_energy"] <= 1 and 0 <= logged[-1]["spectral/u1_cos_prev"] <= 1

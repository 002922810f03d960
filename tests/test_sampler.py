"""The fast sampler (sampling.kv_sampler) against transformers' ``generate`` on the tiny base model, its use
through TRL's ``rollout_func`` and in greedy evaluation, and its refusals (SmolLM2: test_sampler_smollm2.py,
slow).

Tolerances, fixed before the first measurement:
  * greedy (fp32): identical completions for 200 prompts of the tiny world (math, facts, skill);
  * teacher-forced log-probabilities (fp32): max |difference| <= 1e-4 against a plain forward;
  * sampling (fp32): from the same seed >= 99% of 512 completions identical (the same RNG calls on the
    same probabilities); from independent seeds, 512 completions per arm, a two-sided two-sample z-test
    on the mean reward and on the mean completion length at alpha = 0.001 (|z| < 3.29). Seeds are fixed,
    so the outcome is deterministic on a machine: the alpha is the test's false-alarm rate, not a flake rate;
  * TRL: with identical completions the first step's loss is the same (|difference| <= 1e-6);
  * bf16 two-term weights: an update below half a bf16 ulp is kept (the change of a linear layer's output
    within 5% of the fp32 change: first fixed at 2^-6, which forgot that the lo term is itself rounded; the
    budget is derived in the test), and log-probabilities within 0.05 of fp32.
"""
import copy
import math

import pytest
import torch

from rlvr_lowrank import models, paths, sampling
from rlvr_lowrank.sampling import kv_sampler
from rlvr_lowrank.world import evaluate, rewards, tasks

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    model, tok = models.load_model(paths.TINY_BASE)
    return model.eval(), tok


def _eos_pad(tok):
    return [tok.eos_token_id], tok.pad_token_id


def test_greedy_completions_are_identical_to_generate_on_200_prompts(tiny):
    model, tok = tiny
    items = (tasks.spread_subset(tasks.load_items("math", "test"), 100) + tasks.load_items("fact")[:50]
             + tasks.spread_subset(tasks.load_items("skill", "test"), 50))
    ref = evaluate.greedy_accuracy(model, tok, items, sampler="generate")
    fast = evaluate.greedy_accuracy(model, tok, items, sampler="kv")
    assert len(items) == 200
    assert fast.completions == ref.completions
    assert fast.accuracy == ref.accuracy and 0 < ref.accuracy < 1


@pytest.mark.parametrize("rows", [1, 8, 60])
def test_the_blocked_lm_head_equals_one_linear_bit_for_bit(rows):
    """head_logits splits the vocabulary into blocks: each logit is the same dot product, so the same bits,
    at SmolLM2's head shape (49,152 = 48 blocks) and at a vocabulary that leaves a partial last block."""
    gen = torch.Generator().manual_seed(rows)
    for vocab, bias in ((49152, False), (kv_sampler.HEAD_BLOCK * 2 + 37, True)):
        weight = torch.randn(vocab, 576, generator=gen) * 0.02
        b = torch.randn(vocab, generator=gen) if bias else None
        h = torch.randn(rows, 3, 576, generator=gen)
        got = kv_sampler.head_logits(h, weight, b)
        assert got.shape == (rows, 3, vocab)
        assert torch.equal(got, torch.nn.functional.linear(h, weight, b))


def test_greedy_completions_with_a_blocked_head_are_identical_to_generate(tiny, monkeypatch):
    """The tiny model's 50-token vocabulary fits one block; with blocks of 16 (16 + 16 + 16 + 2) the
    sampler's completions still equal generate's."""
    model, tok = tiny
    monkeypatch.setattr(kv_sampler, "HEAD_BLOCK", 16)
    assert model.config.vocab_size > 3 * kv_sampler.HEAD_BLOCK
    items = tasks.spread_subset(tasks.load_items("math", "test"), 40) + tasks.load_items("fact")[:20]
    ref = evaluate.greedy_accuracy(model, tok, items, sampler="generate")
    assert evaluate.greedy_accuracy(model, tok, items, sampler="kv").completions == ref.completions


def test_teacher_forced_logprobs_match_a_plain_forward(tiny):
    model, tok = tiny
    items = tasks.spread_subset(tasks.load_items("math", "test"), 48) + tasks.load_items("fact")[:16]
    seqs = [tok(it.prompt)["input_ids"] + tok(evaluate.reference_completion(tok, it), add_special_tokens=False)
            ["input_ids"] + [tok.eos_token_id] for it in items]
    width = max(map(len, seqs))
    for side in ("right", "left"):
        ids = torch.full((len(seqs), width), tok.pad_token_id)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            cols = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
            ids[i, cols], mask[i, cols] = torch.tensor(s), 1
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        ref = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        mine = sampling.KVSampler(model).token_logprobs(ids, mask)
        real = mask[:, 1:].bool() & mask[:, :-1].bool()  # predicted token and its context both real
        assert (mine - ref)[real].abs().max() <= 1e-4, side


def _sampled(model, tok, items, seed, sampler):
    comps = evaluate.generate(model, tok, [it.prompt for it in items], 32, do_sample=True, num_samples=16,
                              seed=seed, sampler=sampler)
    flat = [c for cs in comps for c in cs]
    reward = [rewards.score(it.task, c, it.answer) for it, cs in zip(items, comps) for c in cs]
    return flat, torch.tensor(reward, dtype=torch.float64), torch.tensor([len(c) for c in flat], dtype=torch.float64)


def _z(a: torch.Tensor, b: torch.Tensor) -> float:
    se = math.sqrt(float(a.var()) / len(a) + float(b.var()) / len(b))
    return float(a.mean() - b.mean()) / se if se > 0 else 0.0


def test_sampled_completions_match_generate_in_distribution(tiny):
    model, tok = tiny
    # 32 two- and three-digit problems x 16 = 512 completions per arm; their correct chains fit in 32 tokens
    # (a longer completion is cut at 32 and scores 0, alike in both arms)
    items = [it for it in tasks.load_items("math", "rl_train") if it.difficulty <= 3][:32]
    ref, r_ref, n_ref = _sampled(model, tok, items, 0, "generate")
    same_seed, _, _ = _sampled(model, tok, items, 0, "kv")
    other, r_kv, n_kv = _sampled(model, tok, items, 1, "kv")
    assert len(items) == 32 and len(ref) == len(other) == 512
    assert sum(a == b for a, b in zip(ref, same_seed)) >= 0.99 * 512
    assert 0.05 < float(r_ref.mean()) < 0.95  # the reward varies: the test can see a difference
    assert abs(_z(r_ref, r_kv)) < 3.29 and abs(_z(n_ref, n_kv)) < 3.29


def test_identical_prompts_are_prefilled_once_and_eos_ends_each_sequence(tiny, monkeypatch):
    model, tok = tiny
    prompts = [tok(p)["input_ids"] for p in ("Q:12+39=", "Q:7+5=")]  # common prefix "<bos>Q:"
    shapes = []
    layers = sampling.KVSampler._layers

    def spy(self, h, *a, **kw):
        shapes.append(tuple(h.shape[:2]))
        return layers(self, h, *a, **kw)

    monkeypatch.setattr(sampling.KVSampler, "_layers", spy)
    eos, pad = _eos_pad(tok)
    torch.manual_seed(0)
    out = sampling.KVSampler(model).generate([prompts[0]] * 5 + [prompts[1]] * 3, 64, eos, pad, do_sample=True)
    # the common prefix once, then one row per distinct prompt (its suffix), then one token per step
    assert shapes[:2] == [(1, 3), (2, 6)] and all(s == (8, 1) for s in shapes[2:])
    assert out.tokens.shape[0] == 8 and out.tokens.shape[1] <= 64
    for row, n, ids in zip(out.tokens, out.lengths.tolist(), out.lists()):
        assert ids == row[:n].tolist() and (row[n:] == pad).all()
        assert ids[-1] == eos[0] or n == out.tokens.shape[1]
        assert eos[0] not in ids[:-1]
    one = sampling.KVSampler(model).generate([prompts[0]], 1, eos, pad)
    assert one.tokens.shape == (1, 1) and one.lengths.tolist() == [1]


def test_an_unsupported_architecture_falls_back_to_generate_with_one_warning(tiny):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model, tok = tiny
    torch.manual_seed(0)
    other = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=96)).eval()
    said = []
    prompts = [tok("Q:1+2=")["input_ids"]] * 2
    eos, pad = _eos_pad(tok)
    kv_sampler._WARNED.discard("Qwen2ForCausalLM")
    out = [sampling.sample(other, prompts, 5, eos, pad, warn=said.append) for _ in range(2)]
    assert len(said) == 1 and "Qwen2ForCausalLM" in said[0] and "model.generate" in said[0]
    assert out[0].tokens.shape[0] == 2 and torch.equal(out[0].tokens, out[1].tokens)
    dynamic = copy.deepcopy(model)
    dynamic.config.rope_parameters = {**dynamic.config.rope_parameters, "rope_type": "dynamic"}
    assert "rope_type 'dynamic'" in sampling.unsupported_reason(dynamic)
    with pytest.raises(ValueError, match="not Qwen2ForCausalLM"):
        sampling.KVSampler(other)


def test_a_prompt_longer_than_the_cache_is_a_clear_error(tiny):
    model, tok = tiny
    eos, pad = _eos_pad(tok)
    with pytest.raises(ValueError, match=r"max_cache_len=96"):
        sampling.KVSampler(model).generate([[1] * 90], 10, eos, pad)
    with pytest.raises(ValueError, match=r"max_cache_len=8"):
        sampling.KVSampler(model, max_cache_len=8).generate([[1] * 12], 1, eos, pad)
    with pytest.raises(ValueError, match="sampler must be one of"):
        evaluate.generate(model, tok, ["Q:1+2="], 4, sampler="fast")


def test_nan_or_inf_in_a_bf16_copy_names_the_parameter(tiny):
    model = copy.deepcopy(tiny[0])
    weights = sampling.Bf16Weights(model)
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        weights.refresh()
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="up_proj"):
        sampling.Bf16Weights(model)


def test_bf16_two_term_weights_keep_an_update_a_plain_bf16_copy_rounds_away(tiny):
    model, tok = tiny
    model = copy.deepcopy(model)
    weights = sampling.Bf16Weights(model)
    lin = model.model.layers[0].mlp.down_proj
    name = "model.layers.0.mlp.down_proj.weight"
    w0 = lin.weight.detach().clone()
    ulp = torch.finfo(torch.bfloat16).eps * w0.abs()  # bf16 spacing near |w| (within a factor 2)
    delta = 0.04 * ulp * torch.sign(torch.randn(w0.shape, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        lin.weight += delta
    assert (lin.weight.to(torch.bfloat16) == w0.to(torch.bfloat16)).float().mean() > 0.9  # a plain copy loses it
    x = torch.randn(64, w0.shape[1], generator=torch.Generator().manual_seed(1))
    sampler = sampling.KVSampler(model, bf16=weights)
    before = sampler._linear(x, lin)
    weights.refresh()
    after = sampler._linear(x, lin)
    want = x @ delta.T  # the fp32 change of the output
    got = after - before
    # error budget: lo is rounded to 2^-9 of its own size, and so is the bf16 output x @ lo; here |lo| is about
    # 6 |delta| (lo also carries hi's rounding error), so about 2 x 6 x 2^-9 = 2.3% of the change (measured 1.8%)
    assert (got - want).norm() <= 0.05 * want.norm()
    hi, lo = weights.pair(name)
    assert (hi.float() + lo.float() - lin.weight).abs().max() <= 2 ** -8 * (lin.weight - hi.float()).abs().max()
    ids = torch.tensor([tok("Q:478+356=8+6=14,7+5+1=13,4+3+1=8,A:834.")["input_ids"]])
    mask = torch.ones_like(ids)
    fp32 = sampling.KVSampler(model).token_logprobs(ids, mask)
    bf16 = sampler.token_logprobs(ids, mask)
    assert (fp32 - bf16).abs().max() <= 0.05


# ------------------------------------------------------------------------------------------------------
# Through TRL: the rollout_func of train.sampler: kv
# ------------------------------------------------------------------------------------------------------

def test_trl_rollout_func_gets_repeated_prompts_and_trains_like_the_plain_path(tiny, tmp_path):
    """GRPO steps of the smoke profile (2 prompts x 8 completions) with TRL's own generate (one step) and with
    the kv sampler through rollout_func (two), from the same seed: TRL hands the rollout each prompt 8 times
    in a row, the completions of the first step are the same tokens, so the first loss is the same; both
    runs log sane rewards and lengths."""
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank.training import config, rollout, train

    model, tok = tiny
    cfg = config.resolve("smoke", "full", 0, {"train": {"max_steps": 2, "sampler": "kv"}})
    assert train.rollout_kwargs(cfg) == {"rollout_func": rollout.kv_rollout}
    assert train.rollout_kwargs(config.resolve("smoke", "full", 0)) == {}  # the plain path is unchanged
    assert "sampler" not in train.grpo_kwargs(cfg, tmp_path)
    seen, batches = [], {}

    def recording_rollout(prompts, trainer):
        seen.append(list(prompts))
        return rollout.kv_rollout(prompts, trainer)

    class Capture(GRPOTrainer):
        def compute_loss(self, model, inputs, **kw):
            loss = super().compute_loss(model, inputs, **kw)
            batches.setdefault(self.tag, []).append((inputs["completion_ids"], float(loss.detach())))
            return loss

    def run(tag, steps, **extra):
        kwargs = {**train.grpo_kwargs(cfg, tmp_path / tag), "save_strategy": "no", "log_level": "error",
                  "disable_tqdm": True, "max_steps": steps}
        trainer = Capture(model=copy.deepcopy(model), reward_funcs=train.reward_function(cfg),
                          args=GRPOConfig(**kwargs), train_dataset=train.train_dataset(cfg), processing_class=tok,
                          **extra)
        trainer.tag = tag
        trainer.train()
        return [h for h in trainer.state.log_history if "reward" in h]

    logs = {"plain": run("plain", 1), "kv": run("kv", 2, rollout_func=recording_rollout)}
    assert len(seen) == 2
    for prompts in seen:
        assert len(prompts) == 16 and len(set(prompts)) == 2
        assert prompts[:8] == [prompts[0]] * 8 and prompts[8:] == [prompts[8]] * 8
    (c_plain, l_plain), (c_kv, l_kv) = batches["plain"][0], batches["kv"][0]
    assert torch.equal(c_plain, c_kv)
    assert abs(l_plain - l_kv) <= 1e-6
    for tag, rows in logs.items():
        assert len(rows) == {"plain": 1, "kv": 2}[tag], tag
        for row in rows:
            assert 0.0 <= row["reward"] <= 1.0 and math.isfinite(row["loss"])
            assert 0 < row["completions/mean_length"] <= 64


def test_the_sampler_setting_is_checked(tmp_path):
    from rlvr_lowrank.training import config, train

    with pytest.raises(config.ConfigError, match=r"train.sampler must be one of \['generate', 'kv'\]"):
        config.resolve("smoke", "full", 0, {"train": {"sampler": "fast"}})
    with pytest.raises(config.ConfigError, match="top_k"):
        config.resolve("smoke", "full", 0, {"train": {"sampler": "kv", "top_k": 5}})
    with pytest.raises(config.ConfigError, match="use_vllm"):
        config.resolve("smoke", "full", 0, {"train": {"sampler": "kv", "use_vllm": True}})
    cfg = config.resolve("smoke", "full", 0, {"train": {"sampler": "kv"}})
    recorder = train.make_callbacks(cfg, tmp_path, {})[0]
    assert recorder.sampler == "kv"


"""The bf16 path (precision.py): detection and fallback, identity, the refusals, the loss and gradient on tiny."""
import copy

import pytest
import torch

from rlvr_lowrank import models, paths
from rlvr_lowrank.training import config, precision, runs


def test_bf16_feature_is_read_from_the_cpu_flags(tmp_path, monkeypatch):
    monkeypatch.delenv(precision.NO_BF16_ENV, raising=False)
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert precision.cpu_bf16_feature(info) == "amx_bf16"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert precision.cpu_bf16_feature(info) is None
    assert precision.cpu_bf16_feature(tmp_path / "absent") is None  # no /proc/cpuinfo (macOS): not assumed fast


def test_bf16_without_native_support_falls_back_to_fp32_with_one_warning(monkeypatch):
    monkeypatch.setenv(precision.NO_BF16_ENV, "1")
    said = []
    assert precision.effective_precision("bf16", warn=said.append) == "fp32"
    assert len(said) == 1 and "fp32" in said[0] and "bench_fast_path.py" in said[0]
    assert precision.effective_precision("fp32", warn=said.append) == "fp32" and len(said) == 1
    with pytest.raises(ValueError, match="fp32.*bf16"):
        precision.effective_precision("fp16")


def test_a_fallback_run_has_another_identity_than_a_bf16_run(monkeypatch):
    cfg = config.resolve("smoke", "full", 0, {"train": {"precision": "bf16"}})
    monkeypatch.setenv(precision.NO_BF16_ENV, "1")
    fallback = runs.identity(cfg)
    assert fallback["precision"] == "fp32"
    plain = runs.identity(config.resolve("smoke", "full", 0))
    assert "precision" not in plain  # runs that do not ask for bf16 keep the identity they had


def test_precision_values_and_lora_are_checked():
    with pytest.raises(config.ConfigError, match="train.precision must be"):
        config.resolve("smoke", "full", 0, {"train": {"precision": "half"}})
    with pytest.raises(config.ConfigError, match="full fine-tuning only"):
        config.resolve("smoke", "lora_r1", 0, {"train": {"precision": "bf16"}})


def _tiny():
    torch.manual_seed(0)
    model, tok = models.load_model(paths.TINY_BASE)
    return model, tok


def test_the_bf16_trainer_refuses_settings_it_cannot_honour():
    from trl import GRPOConfig

    from rlvr_lowrank.training import train

    class Base:
        def __init__(self, *a, **kw):
            self.kw = kw

    class Checked(precision.Bf16Compute, Base):
        pass

    with pytest.raises(ValueError, match="full fine-tuning only"):
        Checked(peft_config=object())
    with pytest.raises(ValueError, match="cast_lm_head_to_fp32=True"):
        Checked(args=GRPOConfig(output_dir="/tmp/unused", use_cpu=True, bf16=False, cast_lm_head_to_fp32=False))
    assert issubclass(train.FastGRPOTrainer, precision.Bf16Compute)


@pytest.mark.slow
def test_bf16_loss_and_gradient_agree_with_fp32_on_the_same_batch(tmp_path):
    """One GRPO batch of the tiny profile, scored by TRL's fp32 loss and by the bf16 fast path: same loss
    (the importance ratio is 1 in both), gradients within bf16's rounding (tolerances fixed in advance)."""
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank.training import train

    cfg = config.resolve("smoke", "full", 0, {"train": {"max_steps": 1}})
    captured = {}

    class Capture(GRPOTrainer):
        def compute_loss(self, model, inputs, **kw):
            captured.setdefault("inputs", inputs)
            return super().compute_loss(model, inputs, **kw)

    def trainer(cls, model, tok, **extra):
        kwargs = {**train.grpo_kwargs(cfg, tmp_path), "save_strategy": "no", "log_level": "error", **extra}
        return cls(model=model, reward_funcs=train.reward_function(cfg), args=GRPOConfig(**kwargs),
                   train_dataset=train.train_dataset(cfg), processing_class=tok)

    def loss_and_grad(t):
        t.model.zero_grad()
        loss = t.compute_loss(t.model, captured["inputs"])
        loss.backward()
        if hasattr(t, "gradients_to_masters"):  # the fast path: its gradients land on bf16 copies first
            t.gradients_to_masters()
        return float(loss.detach()), torch.cat([p.grad.detach().flatten().double() for p in t.model.parameters()
                                                if p.grad is not None])

    model, tok = _tiny()
    fp32 = trainer(Capture, copy.deepcopy(model), tok)
    fp32.train()  # one step, to obtain a real batch (completions, advantages) from TRL
    fast = trainer(train.FastGRPOTrainer, copy.deepcopy(model), tok, cast_lm_head_to_fp32=True)
    ref = trainer(GRPOTrainer, copy.deepcopy(model), tok)
    l32, g32 = loss_and_grad(ref)
    l16, g16 = loss_and_grad(fast)
    assert abs(l16 - l32) <= 1e-3 + 1e-2 * abs(l32)
    assert abs(g16.norm() / g32.norm() - 1) <= 0.05
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) >= 0.999
    assert all(p.dtype == torch.float32 for p in fast.model.parameters())  # the masters stay fp32


@pytest.mark.slow
def test_the_fast_trainer_trains_fp32_masters_and_sees_every_substitution(tmp_path):
    """Three steps of the fast trainer with PR1S at every step: at each loss forward the bf16 copies are the
    masters rounded to bf16 (so the optimizer's update and the substitution before it are seen), the
    masters and Adam's state stay fp32, and the masters move."""
    from trl import GRPOConfig

    from rlvr_lowrank.training import train
    from rlvr_lowrank.training.pr1s import PeriodicRank1Callback

    cfg = config.resolve("smoke", "full", 0, {"train": {"max_steps": 3}})
    model, tok = _tiny()
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    seen = []

    class Watched(train.FastGRPOTrainer):
        def compute_loss(self, model, inputs, **kw):
            c = self.bf16_copies
            seen.append(all(torch.equal(c.copies[n].detach(), p.detach().to(torch.bfloat16))
                            for n, p in c.masters.items()))
            return super().compute_loss(model, inputs, **kw)

    pr1s = PeriodicRank1Callback(base_state=base, every=1, log_path=tmp_path / "substitutions.jsonl")
    kwargs = {**train.grpo_kwargs(cfg, tmp_path), "save_strategy": "no", "log_level": "error",
              "cast_lm_head_to_fp32": True}
    trainer = Watched(model=model, reward_funcs=train.reward_function(cfg), args=GRPOConfig(**kwargs),
                      train_dataset=train.train_dataset(cfg), processing_class=tok, callbacks=[pr1s])
    trainer.train()
    assert len(seen) == 3 and all(seen)
    assert (tmp_path / "substitutions.jsonl").read_text().count("\n") == 3
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(v.dtype == torch.float32 for s in trainer.optimizer.state.values() for v in s.values()
               if torch.is_tensor(v) and v.dim() > 0)
    name = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(model.state_dict()[name], base[name])
    assert all(c.grad is None for c in trainer.bf16_copies.copies.values())  # handed to the masters


def test_nan_in_a_master_stops_the_bf16_copies_naming_it():
    model, _ = _tiny()
    copies = precision.Bf16Copies(model)
    assert "model.embed_tokens.weight" not in copies.masters and copies.masters  # embedding and head stay fp32
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"model\.layers\.0\.self_attn\.q_proj\.weight"):
        copies.refresh_unless(1)


def test_the_compact_head_gives_trls_fused_head_log_probabilities_and_entropies():
    """CompactHead with the fp32 weights against TRL's fused LM head (add_fused_lm_head) on the tiny model:
    the same log-probabilities and entropies at the scored positions (1e-5), zero elsewhere."""
    from trl.trainer.utils import add_fused_lm_head

    model, tok = _tiny()
    copies = precision.Bf16Copies(model)
    head = precision.CompactHead(model, dict(copies.masters), temperature=0.7)
    fused = copy.deepcopy(model)
    add_fused_lm_head(fused, temperature=0.7, cast_lm_head_to_fp32=True, outputs=("log_probs", "entropy"))
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (4, 20), generator=gen)
    attention = torch.ones_like(ids)
    attention[0, :5] = 0  # a left-padded prompt
    labels = ids.masked_fill(attention == 0, -100)
    labels[:, :-7] = -100  # 7 completion tokens, as TRL masks them
    labels[2, -2:] = -100  # a completion that ended early
    want = fused(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=True)
    got = head(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=True)
    scored = labels[:, 1:] != -100
    for field in ("log_probs", "entropy"):
        w, g = getattr(want, field), getattr(got, field)
        assert g.shape == w.shape
        assert (g[scored] - w[scored]).abs().max() <= 1e-5
        assert (g[~scored] == 0).all()
    with pytest.raises(ValueError, match="scores labels only"):
        head(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=False)


def test_a_huge_but_finite_master_passes_the_fused_finite_check():
    """The fused check (one norm over all copies) overflows on a value near bf16's range; the per-copy scan
    it falls back to must then clear it, not call it NaN."""
    model, _ = _tiny()
    copies = precision.Bf16Copies(model)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, :4] = 3e38
    copies.refresh(0)
    assert torch.isinf(torch.stack(torch._foreach_norm(list(copies.copies.values())))).any()  # it did trip
    assert copies.copies["model.layers.0.mlp.up_proj.weight"][0, 0].float() > 1e38


def _head_gradients(model, head, ids, attention, labels, weights):
    model.zero_grad(set_to_none=True)
    out = head(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=True)
    (out.log_probs.sum() + 0.1 * out.entropy.sum()).backward()
    head.embedding_grads_to_master()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None} | {
        n: w.grad.clone() for n, w in weights.items() if w.grad is not None}


def test_the_sparse_embedding_gradient_equals_autograds_dense_one():
    """CompactHead's embedding lookup (gradient index-added after the backward, padding rows skipped) gives
    the gradient autograd's nn.Embedding gives, for every parameter, with the LM head tied or not; and the
    entropy carries a gradient only when asked."""
    for tied in (True, False):
        model, _ = _tiny()
        if not tied:
            model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
        embed = model.get_input_embeddings()
        assert (model.get_output_embeddings().weight is embed.weight) == tied
        weights = {n: p.detach().clone().requires_grad_() for n, p in precision.Bf16Copies(model).masters.items()}
        gen = torch.Generator().manual_seed(1)
        ids = torch.randint(3, model.config.vocab_size, (3, 16), generator=gen)
        assert embed.padding_idx is not None  # the case the sparse path must honour
        ids[0, :4] = embed.padding_idx  # left padding
        ids[1, 8] = embed.padding_idx  # and the padding token inside attended text: nn.Embedding gives its row
        ids[1, 5] = ids[2, 7] = ids[0, 9]  # no gradient; a token seen several times sums its rows
        attention = torch.ones_like(ids)
        attention[0, :4] = 0
        labels = ids.masked_fill(attention == 0, -100)
        labels[:, :-6] = -100
        sparse = precision.CompactHead(model, weights, temperature=0.7, entropy_grad=True)
        assert sparse.embed is embed
        got = _head_gradients(model, sparse, ids, attention, labels, weights)
        for w in weights.values():
            w.grad = None
        dense = precision.CompactHead(model, weights, temperature=0.7, entropy_grad=True)
        dense.embed = None  # autograd's own nn.Embedding backward
        want = _head_gradients(model, dense, ids, attention, labels, weights)
        assert got.keys() == want.keys() and "model.embed_tokens.weight" in got
        for name in want:
            assert torch.allclose(got[name], want[name], rtol=1e-5, atol=1e-7), name
    no_grad = precision.CompactHead(model, weights, temperature=0.7, entropy_grad=False)
    out = no_grad(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=True)
    assert out.log_probs.requires_grad and not out.entropy.requires_grad


def test_the_fp32_gradient_buffers_are_overwritten_not_accumulated_across_steps():
    """Bf16Copies keeps one fp32 gradient buffer per master across steps: after the trainer's
    zero_grad(set_to_none) the next backward must overwrite it, and a second micro-batch add to it."""
    model, _ = _tiny()
    copies = precision.Bf16Copies(model)
    name, master = next(iter(copies.masters.items()))
    for step in range(2):
        model.zero_grad(set_to_none=True)
        copies.copies[name].grad = torch.full_like(copies.copies[name], 0.5)
        copies.grads_to_masters()
        assert torch.equal(master.grad, torch.full_like(master, 0.5)), step
    copies.copies[name].grad = torch.full_like(copies.copies[name], 0.25)
    copies.grads_to_masters()  # a second micro-batch of the same step accumulates
    assert torch.equal(master.grad, torch.full_like(master, 0.75))


def test_fp32_attention_runs_sdpa_in_fp32_under_bf16_autocast_and_leaves_the_rest_alone():
    """Inside Fp32Attention, SDPA on bf16 inputs gives exactly the fp32 SDPA of the same (upcast) inputs,
    rounded back to bf16, with gradients to the bf16 inputs; a matmul under the same autocast stays bf16."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 11, 16, generator=gen).bfloat16().requires_grad_() for _ in range(3))
    mask = torch.ones(11, 11, dtype=torch.bool).tril()
    F = torch.nn.functional
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        with precision.Fp32Attention():
            got = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            other = torch.matmul(q.float(), k.float().transpose(-1, -2))
    assert got.dtype == torch.bfloat16 and torch.equal(got, ref)
    assert not torch.equal(plain, ref)  # bf16 attention rounds differently: the mode is what changed it
    assert other.dtype == torch.bfloat16  # autocast still applies outside attention
    got.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in (q, k, v))

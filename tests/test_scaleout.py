"""Scale-out: the paper-* profile resolves offline (dry run: nothing loaded or downloaded), its
GRPOConfig fields are real, and the MATH-style boxed-answer verifier behaves."""
import pytest

from rlvr_lowrank import cli, fileio
from rlvr_lowrank.training import config, runs, train
from rlvr_lowrank.world import rewards

PAPER = [p for p in config.available_profiles() if p.startswith("paper-")]


def test_there_is_a_paper_profile():
    assert PAPER, "configs/paper-*.yaml is missing"


@pytest.mark.parametrize("profile", PAPER)
def test_paper_profile_dry_run_resolves_every_experiment_without_loading(profile, capsys, monkeypatch):
    import transformers

    def no_loading(*a, **k):
        raise AssertionError("a dry run must not load a model")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_loading)
    for experiment in config.load_profile(profile)["experiments"]:
        assert cli.main(["train", "--profile", profile, "--experiment", experiment, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "# launch: accelerate launch --config_file configs/accelerate/" in out
        assert f"--profile {profile} --experiment {experiment}" in out
        kwargs = train.grpo_kwargs(config.resolve(profile, experiment, 0), runs.run_dir(profile, experiment, 0))
        assert kwargs["bf16"] is True and "use_cpu" not in kwargs  # GPU settings are not overridden by CPU_FIXED
        assert kwargs["num_iterations"] == 1  # on-policy: PR1S substitutes at generation boundaries
        # a machine without CUDA (this one) or vLLM is told which piece is missing; the path to verdicts follows
        import torch
        if not torch.cuda.is_available():
            assert "# CUDA: MISSING" in out and "CUDA build of torch" in out
        assert f"reproduce --profile {profile} (notebooks " in out


def test_misspelled_grpo_field_fails_before_anything_loads():
    with pytest.raises(ValueError, match=r"\['learnig_rate'\] are not GRPOConfig fields"):
        config.resolve("smoke", "full", 0, {"train": {"learnig_rate": 1e-5}})
    with pytest.raises(ValueError, match="unknown reward"):
        config.resolve("smoke", "full", 0, {"reward": "vibes"})


def test_cpu_profiles_keep_the_cpu_settings():
    kwargs = train.grpo_kwargs(config.resolve("smoke", "full", 0), runs.run_dir("smoke", "full", 0))
    assert kwargs["use_cpu"] is True and kwargs["bf16"] is False and "threads" not in kwargs


def test_boxed_math_reward():
    r = rewards.boxed_math_reward(
        [r"so the answer is \boxed{\dfrac{1}{2}}.", r"\boxed{2} then \boxed{3}", r"\boxed{3", "3", None,
         [{"role": "assistant", "content": r"\boxed{ 42 }"}]],
        [r"\frac{1}{2}", "3", "3", "3", "3", r"\boxed{42}"])
    assert r == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert rewards.last_boxed(r"\boxed{x^{2}+\frac{a}{b}}") == r"x^{2}+\frac{a}{b}"


def test_smollm2_grpo_profile_resolves_to_a_conversational_addition_task():
    cfg = config.resolve("smollm2", "full", 0)
    assert cfg.model == train.SMOLLM2_MODEL and train.reward_function(cfg) is rewards.addition_reward
    ds = train.train_dataset(cfg)
    assert ds[0]["prompt"][0]["role"] == "user" and ds[0]["answer"].isdigit()
    assert len(ds) == cfg.chat_task.train_size  # the fixed training set, revisited every epoch
    prof = config.load_profile("smollm2")
    assert set(prof["experiments"]) == {"full", "pr1s_trunc_k10", "random_reward"} and len(prof["seeds"]) >= 5
    assert len(config.seeds_of("smollm2", "random_reward")) >= 3
    # exploration and the learning-rate probes are never trained by make reproduce
    assert not {"explore_lr_1e-5", "lr_probe_1e-5"} & set(prof["experiments"])
    pr1s = config.resolve("smollm2", "pr1s_trunc_k10", 0)
    assert pr1s.train["max_steps"] >= 100 and pr1s.train["max_steps"] // pr1s.pr1s.every >= 8  # >= 8 substitutions


def test_chat_arithmetic_items_and_reward():
    from rlvr_lowrank.world import chat_tasks

    train_items, test = chat_tasks.arithmetic_items("rl_train"), chat_tasks.arithmetic_items("test")
    assert train_items == chat_tasks.arithmetic_items("rl_train")  # deterministic

    def pair(it):
        a, b = [int(x) for x in it.prompt.split("What is ")[1].split("?")[0].split(" + ")]
        assert 1 <= a <= 20 and 1 <= b <= 20 and it.answer == str(a + b)
        return frozenset((a, b))

    train_pairs, test_pairs = {pair(it) for it in train_items}, {pair(it) for it in test}
    assert not train_pairs & test_pairs  # no pair in both splits, in either order
    assert len(train_pairs | test_pairs) == 20 * 21 // 2  # every unordered pair is in one split
    assert len(train_items) + len(test) == 20 * 20  # both orders of every pair
    r = rewards.addition_reward(["12", "7 + 5 = 12, which is", "7 + 5 = 13", "The answer is 12.", "", None,
                               [{"role": "assistant", "content": "7 + 5 = 12"}], "-12"],
                              ["12"] * 8)
    assert r == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]


def test_the_gpu_checks_paper_part_trains_two_steps_of_the_paper_profile_on_the_cpu(tmp_path, monkeypatch):
    """The GPU check's second part (a small Qwen2 model, MATH-500-format data through prepare-math, the paper
    profile's GRPO settings without vLLM) runs on the CPU: two logged steps with finite loss and reward."""
    from rlvr_lowrank import paths
    from rlvr_lowrank.pipeline import gpu_check

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "CONFIGS", paths.CONFIGS)  # paper_part points it at its derived profile
    paper = fileio.read_yaml(paths.CONFIGS / f"{gpu_check.PAPER_PROFILE}.yaml")
    result = gpu_check.paper_part(tmp_path / "work", "cpu")
    assert result["ok"] and result["steps"] == 2, result
    cfg = fileio.read_yaml(tmp_path / "work" / "configs" / "gpu-check-paper.yaml")
    assert cfg["reward"] == paper["reward"] == "boxed_math" and cfg["train"]["use_vllm"] is False
    assert {k: cfg["train"][k] for k in ("loss_type", "beta", "scale_rewards", "learning_rate")} == \
        {k: paper["train"][k] for k in ("loss_type", "beta", "scale_rewards", "learning_rate")}
    assert fileio.read_yaml(tmp_path / "work" / "small-qwen2" / "config.json")["model_type"] == "qwen2"

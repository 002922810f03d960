"""Issue 3 item 6: the paper-* profile resolves offline (dry run: nothing loaded or downloaded), its
GRPOConfig fields are real, and the MATH-style boxed-answer verifier behaves."""
import pytest

from rlvr_lowrank import cli, profiles, tasks, train

PAPER = [p for p in profiles.available() if p.startswith("paper-")]


def test_there_is_a_paper_profile():
    assert PAPER, "configs/paper-*.yaml is missing"


@pytest.mark.parametrize("profile", PAPER)
def test_paper_profile_dry_run_resolves_every_experiment_without_loading(profile, capsys, monkeypatch):
    import transformers

    def no_loading(*a, **k):
        raise AssertionError("a dry run must not load a model")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_loading)
    for experiment in profiles.load(profile)["experiments"]:
        assert cli.main(["train", "--profile", profile, "--experiment", experiment, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "# launch: accelerate launch --config_file configs/accelerate/" in out
        assert f"--profile {profile} --experiment {experiment}" in out
        kwargs = train.grpo_kwargs(train.resolve_config(profile, experiment, 0), train.paths.run_dir(profile, experiment, 0))
        assert kwargs["bf16"] is True and "use_cpu" not in kwargs  # GPU settings are not overridden by CPU_FIXED
        assert kwargs["num_iterations"] == 1  # on-policy: PR1S substitutes at generation boundaries


def test_misspelled_grpo_field_fails_before_anything_loads():
    with pytest.raises(ValueError, match=r"\['learnig_rate'\] are not GRPOConfig fields"):
        train.resolve_config("smoke", "full", 0, {"train": {"learnig_rate": 1e-5}})
    with pytest.raises(ValueError, match="unknown reward"):
        train.resolve_config("smoke", "full", 0, {"reward": "vibes"})


def test_cpu_profiles_keep_the_cpu_settings():
    kwargs = train.grpo_kwargs(train.resolve_config("smoke", "full", 0), train.paths.run_dir("smoke", "full", 0))
    assert kwargs["use_cpu"] is True and kwargs["bf16"] is False and "threads" not in kwargs


def test_boxed_math_reward():
    r = tasks.boxed_math_reward(
        [r"so the answer is \boxed{\dfrac{1}{2}}.", r"\boxed{2} then \boxed{3}", r"\boxed{3", "3", None,
         [{"role": "assistant", "content": r"\boxed{ 42 }"}]],
        [r"\frac{1}{2}", "3", "3", "3", "3", r"\boxed{42}"])
    assert r == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert tasks.last_boxed(r"\boxed{x^{2}+\frac{a}{b}}") == r"x^{2}+\frac{a}{b}"

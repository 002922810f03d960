"""docs/your_training.md: its example (a plain TRL GRPOTrainer with PR1S, the trajectory recorder and the
spectral monitor) runs verbatim on the shipped tiny model for 2 steps, with only the five settings lines
replaced as the doc says; and the facts the doc states about it hold."""
import json
import re

import pytest
import torch

from rlvr_lowrank import paths
from rlvr_lowrank.analysis import targets

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

DOC = paths.ROOT / "docs" / "your_training.md"
SETTINGS = ("MODEL", "DATA", "OUT", "MAX_STEPS", "K")


def example_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    runnable = [b for b in blocks if "trainer.train()" in b]
    assert len(runnable) == 1, f"expected one python block with trainer.train() in {DOC.name}, found {len(runnable)}"
    return runnable[0]


def with_settings(code: str, values: dict[str, str]) -> str:
    """Replace the ``NAME = ...`` line of each setting by ``NAME = <source>`` (each must occur once, at the
    start of a line)."""
    for name, source in values.items():
        pattern = re.compile(rf"^{name} = .*$", flags=re.M)
        assert len(pattern.findall(code)) == 1, f"the example must assign {name} exactly once"
        code = pattern.sub(lambda m: f"{name} = {source}", code)
    return code


def test_the_example_assigns_exactly_the_documented_settings():
    code = example_code()
    assigned = re.findall(r"^([A-Z_]+) = ", code, flags=re.M)
    assert assigned == list(SETTINGS)
    text = DOC.read_text(encoding="utf-8")
    assert all(f"{name} = " in text.split("```python")[0] for name in SETTINGS)  # the doc names each override


@pytest.mark.slow
def test_the_doc_example_runs_verbatim_for_two_steps(tmp_path):
    from safetensors.torch import load_file

    from rlvr_lowrank.world import tasks

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": it.prompt, "answer": it.answer}) + "\n"
                            for it in tasks.load_items("math", "rl_train")[:32]))
    out = tmp_path / "out"
    code = with_settings(example_code(), {"MODEL": repr(str(paths.TINY_BASE)), "DATA": repr(str(data)),
                                          "OUT": f"Path({str(out)!r})", "MAX_STEPS": "2", "K": "1"})
    torch.manual_seed(0)
    ns = {"__name__": "__doc_example__"}
    exec(compile(code, str(DOC), "exec"), ns)

    trainer, pr1s, model = ns["trainer"], ns["pr1s"], ns["model"]
    assert trainer.state.global_step == 2

    # PR1S substituted at steps 1 and 2 (K = 1), and the update it replaced was not rank 1 already
    subs = [json.loads(x) for x in (out / "substitutions.jsonl").read_text().splitlines()]
    assert [s["step"] for s in subs] == [1, 2] == [h["step"] for h in pr1s.history]
    assert subs[0]["energy_removed_total"] > 0 and subs[0]["e1_mean"] < 0.99

    # the memory the doc states: one float32 host copy of exactly the target matrices, not aliasing the model
    names = targets.target_names(model.state_dict())
    assert list(pr1s.base_state) == names and len(names) == 28
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in pr1s.base_state.values())
    n_target = sum(model.get_parameter(n).numel() for n in names)
    assert sum(t.numel() * t.element_size() for t in pr1s.base_state.values()) == 4 * n_target
    assert not {t.data_ptr() for t in pr1s.base_state.values()} & {p.data_ptr() for p in model.parameters()}

    # the order of the callbacks: the recorder and the monitor, listed after PR1S, see the substituted weights,
    # so ΔW is rank 1 at every step they record; the final weights are the substituted ones too
    files = sorted(p.name for p in (out / "trajectory").glob("step-*.safetensors"))
    assert files == ["step-00000.safetensors", "step-00001.safetensors", "step-00002.safetensors"]
    snap = load_file(out / "trajectory" / "step-00002.safetensors")
    for n in names:
        s = snap[f"{n}|S"]
        assert s[0] > 0 and s[1] <= 1e-3 * s[0], n
        dw = model.get_parameter(n).detach().float() - pr1s.base_state[n]
        sv = torch.linalg.svdvals(dw)
        assert sv[1] <= 1e-3 * sv[0], n
    mon = [json.loads(x) for x in (out / "spectral.jsonl").read_text().splitlines()]
    assert [m["step"] for m in mon] == [1, 2]
    logged = [h for h in trainer.state.log_history if "spectral/rank1_energy" in h]
    assert [h["step"] for h in logged] == [1, 2]
    assert all(h["spectral/rank1_energy"] > 0.999 for h in logged)
    # the training reward was logged for both steps (computed on completions sampled before each step)
    assert len([h for h in trainer.state.log_history if "reward" in h]) == 2


def test_lora_is_refused_when_training_begins(tmp_path):
    """The doc: a peft (LoRA) model makes PR1S raise NotImplementedError when training begins."""
    from peft import LoraConfig, get_peft_model
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rlvr_lowrank import models
    from rlvr_lowrank.training.pr1s import PeriodicRank1Callback

    model, _ = models.load_model(paths.TINY_BASE)
    pr1s = PeriodicRank1Callback(base_state=model, every=1)
    peft_model = get_peft_model(model, LoraConfig(r=1, lora_alpha=2, target_modules=["q_proj"]))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    with pytest.raises(NotImplementedError, match="peft"):
        pr1s.on_train_begin(args, TrainerState(), TrainerControl(), model=peft_model)
    pr1s.on_train_begin(args, TrainerState(), TrainerControl(), model=models.load_model(paths.TINY_BASE)[0])

"""Generated blocks of docs/real_model.md for the real-model experiment's design: the base-model task choice
(reports/smollm2/task_variants.json) and the exploration (reports/smollm2/exploration.json). Every number
comes from those files; a file not written yet gives the command that writes it."""
from __future__ import annotations

from ..claims import stats
from .readme_real_model import SMOLLM2_NOTE
from .readme_real_model import smollm2_report as _report


def _task_line(task: dict) -> str:
    op = {"+": "a + b", "-": "a − b", "+-": "a + b and a − b"}.get(task["op"], task["op"])
    held = "every problem not trained on" if task.get("held_out") == "rest" else "half of the problems"
    system = {None: "default", "": "empty"}.get(task.get("system"), repr(task.get("system")))
    return f"{op}, 1..{task['max_operand']}, held out: {held}, system turn: {system}"


def task_choice_block() -> str:
    d = _report("task_variants.json")
    if d is None:
        return "_Not measured yet: `python -m rlvr_lowrank smollm2-task` writes reports/smollm2/task_variants.json._"
    rule = d["rule"]
    lines = ["| round | variant | task | T | held-out problems | greedy | pass@1 | pass@8 | accepted |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in sorted(d["variants"].items(), key=lambda kv: (kv[1]["round"], kv[0])):
        lines.append(f"| {r['round']} | {name} | {_task_line(r['definition']['task'])} | {r['temperature']:g} | "
                     f"{r['n_test']} | {r['greedy']:.3f} | {r['pass_at_k']['1']:.3f} | {r['pass8']:.3f} | "
                     f"{'yes' if r['accepted'] else 'no'} |")
    old = d.get("superseded") or []
    pick = d["variants"].get(d["chosen"]) if d["chosen"] else None
    margin = (f" Its pass@8 {pick['pass8']:.3f} has a standard error of "
              f"{(pick['pass8'] * (1 - pick['pass8']) / pick['n_test']) ** 0.5:.3f} over {pick['n_test']} problems "
              f"(binomial), against the threshold {rule['min_base_pass8']}." if pick else "")
    earlier = (": " + ", ".join(f"{o['name']} pass@8 {o['pass8']:.3f}" for o in old)) if old else ""
    lines += ["", f"Rule, fixed before measuring: greedy ≤ {rule['max_base_greedy']} and pass@8 ≥ "
                  f"{rule['min_base_pass8']} on the held-out split at the variant's temperature; tie-break: "
                  f"{rule['tie_break']}. {d['why'][0].upper() + d['why'][1:]}. Chosen: "
                  f"**{d['chosen'] or 'none'}**.{margin} {len(old)} measurement(s) under the earlier verifier are "
                  f"kept in the file (`superseded`){earlier}. " + SMOLLM2_NOTE]
    return "\n".join(lines)


def exploration_block() -> str:
    d = _report("exploration.json")
    if d is None:
        return "_Not run yet: `python -m rlvr_lowrank smollm2-explore` writes reports/smollm2/exploration.json._"
    lines = ["| learning rate | seed | greedy held-out, step 0 → end | sampled reward, first → last 10 steps | "
             "sampled train − test at the end | rate qualifies |", "|---|---|---|---|---|---|"]
    for r in d["runs"]:
        ok = d["rates"][f"{r['learning_rate']:g}"]["qualifies"]
        gap = "—" if r["sampled_gap_end"] is None else f"{r['sampled_gap_end']:+.3f}"
        lines.append(f"| {r['learning_rate']:g} | {r['seed']} | {r['test_acc_start']:.3f} → {r['test_acc_end']:.3f} | "
                     f"{r['reward_first']:.3f} → {r['reward_last']:.3f} | {gap} | {'yes' if ok else 'no'} |")
    rules = d["rules"]
    text = (f"Rule, fixed before the runs: {rules['learning_rate']}. {d['why'][0].upper() + d['why'][1:]}: "
            f"**{d['chosen_lr']:g}**." if d["chosen_lr"] is not None else f"{d['why'][0].upper() + d['why'][1:]}.")
    if d["chosen_lr"] is not None:
        sat = d.get("saturation_step")
        text += (f" Sampled training accuracy ≥ {rules['saturation']} in every seed at that rate from step {sat}."
                 if sat is not None else f" Sampled training accuracy did not reach {rules['saturation']} in every "
                 f"seed within {d['runs'][0]['steps']} steps at that rate.")
    secs = [r["seconds"] for r in d["runs"] if r.get("seconds")]
    if secs:
        text += (f" Each run of {d['runs'][0]['steps']} steps took {min(secs):.0f}–{max(secs):.0f} s (two side by "
                 "side, one thread each).")
    skipped = d.get("not_trained") or []
    if skipped:
        text += f" Not trained, since a larger rate qualified: {', '.join(skipped)}."
    return "\n".join(lines + ["", text + f" Seeds {rules['seeds']}, never used by the final runs. " + SMOLLM2_NOTE])


ARM_ORDER = ("Full RL", "PR1S", "null (random reward)")


def final_runs_block() -> str:
    """What the final runs did, from reports/smollm2/c1.json (written by notebook 02): C1's overfitting
    precondition, each arm's held-out accuracy per evaluation step beside the null arm, the gains against the null,
    and the post-saturation reading. The verdicts are in the smollm2-claims block."""
    c1 = _report("c1.json")
    readings = (c1 or {}).get("readings") or {}
    if not c1 or "arms_vs_null" not in readings:
        return ("_Not produced yet: `make reproduce PROFILE=smollm2` writes reports/smollm2/c1.json with these "
                "readings (notebook 02)._")
    ev, c1r = readings["arms_vs_null"], readings.get("C1") or {}
    cells = {(r["arm"], r["step"], r["column"]): r for r in ev["table"]}
    steps = sorted({s for _, s, _ in cells})
    arms = [a for a in ARM_ORDER if any(k[0] == a for k in cells)]
    lines = ["| arm | seeds | " + " | ".join(f"held-out greedy, step {s}" for s in steps) + " | OOD greedy, last |",
             "|---|---|" + "---|" * (len(steps) + 1)]
    for arm in arms:
        def cell(step, col, arm=arm):
            r = cells.get((arm, step, col))
            return f"{r['mean']:.3f} (n = {r['n']})" if r else "—"
        n = max(r["n"] for k, r in cells.items() if k[0] == arm)
        lines.append(f"| {arm} | {n} | " + " | ".join(cell(s, "test_acc") for s in steps)
                     + f" | {cell(steps[-1], 'ood_acc')} |")
    gap = c1.get("overfit_gap")
    lines += ["", "**C1's precondition, Full RL overfit** (sampled train − test accuracy at the last evaluation, "
                  "per seed): " + (f"mean {stats.fmt_both(gap)} (n = {gap['n']})"
                                   if isinstance(gap, dict) and gap.get("n") else "not recorded") + "."]
    if ev.get("null_unfinished"):
        lines += ["", f"_The null arm's seeds {ev['null_unfinished']} had not finished when notebook 02 ran: "
                      "run `make reproduce PROFILE=smollm2` again._"]
    lines += ["", "**Against the null arm** (held-out gain, first → last evaluation; independent runs, Welch):"]
    lines += [f"* {c['reading']}" for c in ev["vs_null"]]
    post = c1r.get("post_saturation")
    if post:
        lines += ["", f"**Post-saturation generalisation** (beside C1, after 1-shot RLVR): {post['reading']}."]
    return "\n".join(lines + ["", SMOLLM2_NOTE])

"""parallel.map_tasks: the claim notebooks' models scored in several processes give the rows of one."""
import operator
import os

import pytest
import torch

from fake_runs import perturbed_tiny_run
from rlvr_lowrank.claims import c0, c2, parallel


@pytest.fixture
def one_thread():
    """One torch thread here, as in the pipeline's notebook kernels (two workers then fit on two cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_map_tasks_keeps_the_order_and_the_parent_thread_count(one_thread):
    tasks = [(a, 3) for a in range(7)]
    assert parallel.map_tasks(operator.pow, tasks, processes=2) == [a ** 3 for a in range(7)]
    # the workers compute with the parent's thread count, so their floating-point sums are the parent's
    assert parallel.map_tasks(torch.get_num_threads, [()] * 3, processes=2) == [1, 1, 1]
    assert parallel.map_tasks(os.getpid, [()] * 4, processes=2) != [os.getpid()] * 4  # in other processes


def test_map_tasks_never_oversubscribes_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:  # 2 threads x 2 workers > 2 cores: the tasks run in this process instead, with the same numbers
        assert parallel.map_tasks(os.getpid, [()] * 3, processes=2) == [os.getpid()] * 3
    finally:
        torch.set_num_threads(before)


def test_claim_measurements_do_not_depend_on_processes(tmp_path, one_thread):
    by_seed = {s: perturbed_tiny_run(tmp_path / f"seed{s}", s, "same") for s in (0, 1)}
    arm = {"pr1s": {1: perturbed_tiny_run(tmp_path / "arm1", 7, "same")}}  # an arm with only seed 1
    items = c0.test_items(12)
    assert c0.measure(by_seed, items, processes=2) == c0.measure(by_seed, items, processes=1)

    sets = c2.eval_sets(n_math=12, n_fact=8, n_skill=8, profile="tiny")
    one = c2.measure_reading1(by_seed, arm, sets, processes=1)
    assert c2.measure_reading1(by_seed, arm, sets, processes=2) == one
    assert [(r["seed"], r["model"]) for r in one] == (
        [(0, m) for m, _ in c2.VARIANTS] + [(1, m) for m, _ in c2.VARIANTS] + [(1, "pr1s")])
    bases = [r for r in one if r["model"] == "base"]
    assert {**bases[0], "seed": 1} == bases[1]  # the shared base is scored once and its row repeated
    trained = c2.model_scores(arm["pr1s"][1], sets, None)  # the arm's model as trained, not a substituted one
    assert one[-1] == {"seed": 1, "model": "pr1s", **trained}

"""C4 on the increments (claims.readings_c4) and the recorder's increment factors (trajectory.snapshot), on
constructed weight sequences with known answers: a fixed direction, a known rotation per record, random
directions at chance level, a planted alignment with the base's top singular vectors, a resume."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fake_runs import write_run
from rlvr_lowrank import fileio
from rlvr_lowrank.analysis.alignment import random_baseline
from rlvr_lowrank.claims import readings, readings_c4
from rlvr_lowrank.training import runs, trajectory

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

D_MODEL, D_FF = 64, 96
NAMES = [f"model.layers.{i}.{blk}.weight" for i in range(3)
         for blk in ("self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj")]


def _shape(name):
    return (D_MODEL, D_FF) if "down_proj" in name else (D_MODEL, D_MODEL)


def _unit(g, d):
    x = torch.randn(d, generator=g, dtype=torch.float64)
    return x / x.norm()


def _record(tmp_path, states, base, k=1, resume_at=None):
    """Record ``states`` (a list of {name: W_t}, at steps 5, 10, ...) with a TrajectoryRecorder, as training
    would; load them back as a run's trajectory."""
    run = write_run(tmp_path / "run")
    rec = trajectory.TrajectoryRecorder(base, run / "trajectory", every=5, k=k, factor_dtype="float16")
    for i, st in enumerate(states):
        step = 5 * (i + 1)
        if resume_at == step:  # a fresh recorder after an interruption, told the resumed step
            rec = trajectory.TrajectoryRecorder(base, run / "trajectory", every=5, k=k, factor_dtype="float16")
            rec.on_train_begin(None, SimpleNamespace(global_step=step - 5), None)
        model = torch.nn.Module()
        model.state_dict = lambda st=st: st  # what models.effective_state_dict reads
        rec.record(model, step)
    return runs.load_trajectory(run), rec


def _walk(increment, n_steps=8, seed=0):
    """W_0 random, W_t = W_{t-1} + increment(name, t, generator) for t = 1..n_steps."""
    g = torch.Generator().manual_seed(seed)
    base = {n: torch.randn(*_shape(n), generator=g) for n in NAMES}
    w, states = {n: t.double() for n, t in base.items()}, []
    for t in range(1, n_steps + 1):
        w = {n: w[n] + increment(n, t, g) for n in NAMES}
        states.append({n: x.float() for n, x in w.items()})
    return base, states


def test_recorder_stores_the_increments_top_factors_and_keeps_the_previous_update(tmp_path, monkeypatch):
    monkeypatch.setattr(trajectory.models, "effective_state_dict", lambda m: m.state_dict())
    base, states = _walk(lambda n, t, g: 1e-3 * t * torch.randn(*_shape(n), generator=g, dtype=torch.float64), 3)
    traj, rec = _record(tmp_path, states, base, k=2)
    snap = fileio.load_tensors(tmp_path / "run" / "trajectory" / "step-00010.safetensors")
    n = NAMES[0]
    assert {f"{n}|{p}" for p in ("U", "S", "V", "Wsv", "dF", "incU", "incS", "incV", "incF")} == \
        {k for k in snap if k.startswith(n + "|")}
    inc = (states[1][n] - states[0][n]).double()
    u, s, vh = torch.linalg.svd(inc)
    assert snap[f"{n}|incS"].double() == pytest.approx(s[:2].numpy(), rel=1e-4)
    assert snap[f"{n}|incF"].item() == pytest.approx(inc.norm().item(), rel=1e-5)
    assert snap[f"{n}|incU"].dtype == torch.float16 and snap[f"{n}|incU"].shape == (D_MODEL, 2)
    assert abs(float(snap[f"{n}|incU"][:, 0].double() @ u[:, 0])) == pytest.approx(1, abs=2e-3)
    assert traj.incS[n].shape == (3, 2) and traj.incF[n][0] == pytest.approx((states[0][n] - base[n]).norm().item(),
                                                                           rel=1e-5)
    # what the recorder keeps in memory: this record's ΔW per target matrix, float32, not aliasing the model
    assert set(rec.previous) == set(NAMES) and rec.previous_step == 15
    assert all(rec.previous[m].dtype == torch.float32 for m in NAMES)
    assert torch.allclose(rec.previous[n], states[2][n] - base[n])
    assert rec.previous[n].data_ptr() != states[2][n].data_ptr()


def test_a_fixed_direction_aligns_fully_and_a_known_rotation_gives_cos_theta(tmp_path, monkeypatch):
    monkeypatch.setattr(trajectory.models, "effective_state_dict", lambda m: m.state_dict())
    theta = 0.3
    g0 = torch.Generator().manual_seed(7)
    frame = {n: (_unit(g0, _shape(n)[0]), _unit(g0, _shape(n)[0])) for n in NAMES}
    frame = {n: (a, (b - (b @ a) * a) / (b - (b @ a) * a).norm()) for n, (a, b) in frame.items()}  # orthonormal

    def rotating(n, t, g):  # u rotates by theta per record in the plane (a, b); v a new random direction
        a, b = frame[n]
        return 0.01 * torch.outer(math.cos(theta * t) * a + math.sin(theta * t) * b, _unit(g, _shape(n)[1]))

    base, states = _walk(rotating)
    traj, _ = _record(tmp_path, states, base)
    r = readings_c4.run_reading(traj)
    assert r["inc_u_prev"] == pytest.approx(math.cos(theta), abs=2e-3)
    chance_v = np.mean([random_baseline(_shape(n)[1]) for n in NAMES])
    assert r["v_chance"] == pytest.approx(chance_v)
    assert abs(r["inc_v_prev"] - chance_v) < 0.05  # independent random v: chance (sd of the mean ~0.02)
    assert r["inc_prev_u_minus_v"] > 0.8 and r["increments_per_matrix"] == 8 and r["n_matrices"] == 9

    fixed = lambda n, t, g: 0.01 * torch.outer(frame[n][0], _unit(g, _shape(n)[1]))  # noqa: E731
    base, states = _walk(fixed, seed=1)
    r = readings_c4.run_reading(_record(tmp_path / "fixed", states, base)[0])
    for q in ("inc_u_final", "inc_u_sofar", "inc_u_prev"):
        assert r[q] == pytest.approx(1.0, abs=2e-3), q
    assert r["inc_u_prev_excess"] == pytest.approx(1.0 - r["u_chance"], abs=2e-3)
    # the o_proj and down_proj of different layers share nothing here: chance
    assert r["n_pairs"] == 3 * 2 * 2 and r["cross_layer_chance"] == pytest.approx(random_baseline(D_MODEL))


def test_random_increments_are_at_chance_and_a_shared_direction_aligns_across_layers(tmp_path, monkeypatch):
    monkeypatch.setattr(trajectory.models, "effective_state_dict", lambda m: m.state_dict())
    rand = lambda n, t, g: 0.01 * torch.outer(_unit(g, _shape(n)[0]), _unit(g, _shape(n)[1]))  # noqa: E731
    base, states = _walk(rand, n_steps=12, seed=2)
    r = readings_c4.run_reading(_record(tmp_path, states, base)[0], readings_c4.base_factors(base, k=4))
    for x in "uv":
        assert abs(r[f"inc_{x}_prev_excess"]) < 0.04 and abs(r[f"inc_{x}_sofar_excess"]) < 0.04, x
        assert r[f"base_{x}_chance"] == pytest.approx(np.mean([4 / _shape(n)[0 if x == "u" else 1] for n in NAMES]))
        assert abs(r[f"base_{x}_excess"]) < 0.06, x  # ‖P x1‖² of a random unit vector: mean k/d
    assert abs(r["cross_layer_u_inc_excess"]) < 0.04
    # increments of rank 1 with one output direction shared by every matrix (a residual-stream direction)
    shared = _unit(torch.Generator().manual_seed(3), D_MODEL)
    same = lambda n, t, g: 0.01 * torch.outer(shared, _unit(g, _shape(n)[1]))  # noqa: E731
    base, states = _walk(same, seed=3)
    r = readings_c4.run_reading(_record(tmp_path / "shared", states, base)[0])
    assert r["cross_layer_u_final"] == pytest.approx(1.0, abs=2e-3)
    assert r["cross_layer_u_inc"] == pytest.approx(1.0, abs=2e-3)


def test_base_alignment_is_one_for_the_base_top_direction_and_zero_orthogonal_to_it(tmp_path, monkeypatch):
    monkeypatch.setattr(trajectory.models, "effective_state_dict", lambda m: m.state_dict())
    g = torch.Generator().manual_seed(4)
    base = {n: torch.randn(*_shape(n), generator=g) for n in NAMES}
    top = readings_c4.base_factors(base, k=3)
    for inside in (True, False):
        def planted(n, t, g, inside=inside):
            u = torch.as_tensor(top[n][0][:, 0])
            if not inside:  # orthogonal to the whole top-3 subspace
                x = torch.randn(_shape(n)[0], generator=g, dtype=torch.float64)
                Q = torch.as_tensor(top[n][0])
                u = x - Q @ (Q.T @ x)
            return 0.01 * torch.outer(u / u.norm(), torch.as_tensor(top[n][1][:, 0]))
        w = {n: base[n].double() + planted(n, 1, g) for n in NAMES}
        r = readings_c4.run_reading(_record(tmp_path / str(inside), [{n: x.float() for n, x in w.items()}], base)[0],
                                    top)
        assert r["base_u_proj"] == pytest.approx(1.0 if inside else 0.0, abs=2e-3)
        assert r["base_v_proj"] == pytest.approx(1.0, abs=2e-3)


def test_after_a_resume_the_first_increment_is_zero_and_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(trajectory.models, "effective_state_dict", lambda m: m.state_dict())
    fixed = lambda n, t, g: 0.01 * t * torch.outer(torch.ones(_shape(n)[0]), torch.ones(_shape(n)[1]))  # noqa: E731
    base, states = _walk(fixed, n_steps=4, seed=5)
    traj, _ = _record(tmp_path, states, base, resume_at=15)
    n = NAMES[0]
    assert list(traj.incS[n][:, 0] > 0) == [True, True, False, True]
    assert readings_c4.run_reading(traj)["increments_per_matrix"] == 3
    with pytest.raises(ValueError, match="no increments"):
        readings_c4.run_reading(runs.Trajectory(traj.steps, traj.U, traj.S, traj.V, traj.Wsv))


def test_arm_reading_classes_and_lines():
    rows = [{"seed": s, **{q: 0.1 + 0.01 * s for q in readings_c4.TESTS}} for s in range(4)]
    a = readings_c4.arm_reading(rows)
    assert all(t["class"] == readings_c4.ABOVE for t in a["tests"].values())
    assert readings_c4.arm_reading([{**r, "base_u_excess": -0.2 - 0.01 * r["seed"]} for r in rows])["tests"][
        "base_u_excess"]["class"] == readings_c4.BELOW
    one = readings_c4.arm_reading(rows[:1])
    assert all(t["class"] == readings_c4.UNDECIDED for t in one["tests"].values())  # one seed: no t-interval
    assert readings.THRESHOLDS["C4"] == {"min_u_minus_v": 0.0, "min_above_chance": 0.0}
    assert readings_c4.BASE_TOP_K == 10


def test_readings_ride_in_c4_json_without_changing_the_verdict():
    from rlvr_lowrank.claims import c4

    rows = [{"arm": "full", "seed": s, "u_minus_v": 0.1 + 0.01 * s, "u_minus_baseline": 0.5} for s in range(3)]
    res = c4.decide("smoke", ["full"], [0, 1, 2], rows)
    plain = res.to_json()
    res.readings = {"added": readings.ADDED, "by_arm": {"full": readings_c4.arm_reading(
        [{"seed": s, "inc_prev_u_minus_v": -0.3 - 0.01 * s} for s in range(3)])}}
    stored = c4.C4Result.from_json(res.to_json()).to_json()
    assert set(stored) == set(plain) | {"readings"}
    assert c4.classify(stored) == c4.classify(plain) and c4.rejudge(stored) == c4.rejudge(plain)

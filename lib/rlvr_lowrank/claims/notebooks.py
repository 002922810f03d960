"""The declared pipeline: notebook → the arms (runs) it reads → the files it writes.

This table drives ``python -m rlvr_lowrank reproduce`` (what to train before which notebook), the
README's claim map and the claims report (which notebook and figure back each claim). Nothing is
inferred from parameter values.

An *arm* is a role a notebook reads (``full``: Full RL, ``pr1s``: the pre-registered PR1S arm,
``sweep``: the other PR1S arms, ``lora``, ``mix``, ``null_arm``: GRPO with a random reward, claims.null_arm);
each profile maps arms to its experiments in ``arms:`` of ``configs/<profile>.yaml``, and lists per notebook the
remaining parameters in ``notebooks:``. A notebook's papermill parameters are then::

    PROFILE; for a notebook that reads runs, SEEDS (the profile's seeds: those of the arms that decide the
    claims; an arm with fewer seeds, config.seeds_of, is read on the seeds it has) and either one parameter per arm
    (FULL, PR1S, LORA, MIX: an experiment each; SWEEP: a list) or, with ``arm_list``, ARMS (the list of its
    arms' experiments); and the notebook's own entries under ``notebooks:`` of the profile.

The arms ``sweep``, ``lora``, ``mix`` and ``null_arm`` are optional (OPTIONAL_ARMS): a profile that does not map
one (smollm2 trains only Full RL and one PR1S arm) passes its empty value (``SWEEP = []``, ``LORA = None``, ...)
and the notebook leaves out what it would read; ``full`` and ``pr1s`` decide claims and must be mapped.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..training import config


@dataclass(frozen=True)
class Notebook:
    """One notebook of the pipeline.

    Args:
        stem (str): ``notebooks/<stem>.ipynb``.
        title (str): what it shows, in a few words.
        claim (str | None): the claim it decides ("C0" … "C4"), if any.
        reads (tuple[str, ...]): the arms it reads (every seed of each is trained before it runs).
        writes (tuple[str, ...]): files it writes under ``reports/<profile>/``.
        figures (tuple[str, ...]): figures it writes under ``figures/<profile>/`` (the first is the claim's).
        reads_reports (bool): it reads the other notebooks' reports (it runs after all of them).
        arm_list (bool): its arms come as one list parameter ``ARMS`` instead of one parameter per arm.
    """
    stem: str
    title: str
    claim: str | None = None
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    reads_reports: bool = False
    arm_list: bool = False


NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook("00_base_model", "the base model: accuracy, pass@k, knowledge", None, (),
             (), ("fig00_pass_at_k",)),
    Notebook("01_rank1_dominance", "rank-1 recovery of the RL gain (AlphaRL's premise)", "C0", ("full",),
             ("c0.json",), ("fig01_rank1_dominance",)),
    Notebook("02_reward_overfitting", "PR1S: training reward vs test accuracy", "C1",
             ("full", "pr1s", "sweep", "null_arm"), ("c1.json",), ("fig02_reward_overfitting", "fig02_sweep")),
    Notebook("03_knowledge_loss", "what the rank-1 component keeps besides math", "C2", ("full", "pr1s", "lora", "mix"),
             ("c2.json",), ("fig03_knowledge_loss", "fig03_multitask_rank_k")),
    Notebook("04_heavy_tails", "heavy-tailed singular values of the RL-trained weights", "C3", ("full", "pr1s"),
             ("c3.json",), ("fig04_heavy_tailed_fraction", "fig04_alpha_per_matrix", "fig04_esd_tails"), arm_list=True),
    Notebook("05_alignment", "alignment of the rank-1 singular vectors over training", "C4",
             ("full", "pr1s", "null_arm"), ("c4.json",), ("fig05_alignment",), arm_list=True),
    Notebook("06_linear_dynamics", "rank-1 linear dynamics and extrapolation (beyond the paper)", None, ("full",),
             ("dynamics.json",), ("fig06_pls_r2", "fig06_extrapolation")),
    Notebook("07_claims", "all claims side by side", None, (), ("claims.json", "claims.md"),
             ("fig07_claims_overview",), reads_reports=True),
    Notebook("08_smollm2_spectra", "spectra of SmolLM2-135M-Instruct's real weights", None, (),
             ("smollm2_spectra.json",), ("fig08_smollm2_alpha",)),
    Notebook("09_your_checkpoints", "the paper's diagnostics on any base/RL checkpoint pair (analyze)"),
)
BY_STEM = {nb.stem: nb for nb in NOTEBOOKS}
ARM_PARAMETERS = {"full": "FULL", "pr1s": "PR1S", "lora": "LORA", "mix": "MIX", "sweep": "SWEEP",  # sweep: a list
                  "null_arm": "NULL_ARM"}
# arm -> the parameter value when a profile leaves it out
OPTIONAL_ARMS = {"sweep": [], "lora": None, "mix": None, "null_arm": None}


def notebook(stem: str) -> Notebook:
    if stem not in BY_STEM:
        raise ValueError(f"unknown notebook {stem!r}; the pipeline's notebooks: {', '.join(BY_STEM)}")
    return BY_STEM[stem]


def by_claim(claim_id: str) -> Notebook:
    """The notebook that decides a claim."""
    for nb in NOTEBOOKS:
        if nb.claim == claim_id:
            return nb
    raise ValueError(f"no notebook decides claim {claim_id!r}")


def stems(profile: str) -> list[str]:
    """The notebooks a profile runs, in order: those listed in its ``notebooks:`` (default: all but 08)."""
    listed = config.load_profile(profile).get("notebooks")
    if listed is None:
        return [nb.stem for nb in NOTEBOOKS if nb.stem not in ("08_smollm2_spectra", "09_your_checkpoints")]
    for stem in listed:
        notebook(stem)
    return [nb.stem for nb in NOTEBOOKS if nb.stem in listed]


def arms(profile: str) -> dict[str, str | list[str]]:
    """The profile's arm → experiment(s) map (``arms:``), checked against its experiments."""
    prof = config.load_profile(profile)
    arms = prof.get("arms") or {}
    experiments = set(prof.get("experiments") or {})
    for arm, exps in arms.items():
        if arm not in ARM_PARAMETERS:
            raise config.ConfigError(f"configs/{profile}.yaml: arms.{arm} is not an arm; "
                                     f"arms: {', '.join(ARM_PARAMETERS)}")
        missing = sorted(set([exps] if isinstance(exps, str) else exps) - experiments)
        if missing:
            raise config.ConfigError(f"configs/{profile}.yaml: arms.{arm} names experiment(s) {missing} that "
                                     f"experiments: does not define ({sorted(experiments)})")
    return arms


def experiments_read(stem: str, profile: str) -> list[str]:
    """The profile's experiments a notebook reads (from the declared arms)."""
    nb, table = notebook(stem), arms(profile)
    out = []
    for arm in nb.reads:
        if arm not in table and arm in OPTIONAL_ARMS:
            continue
        if arm not in table:
            raise config.ConfigError(f"notebook {stem} reads arm {arm!r}, which configs/{profile}.yaml does not map "
                                     "(add it under arms:)")
        out += [table[arm]] if isinstance(table[arm], str) else list(table[arm])
    return list(dict.fromkeys(out))


def parameters(stem: str, profile: str) -> dict:
    """The papermill parameters of a notebook under a profile (see the module docstring)."""
    nb, prof, table = notebook(stem), config.load_profile(profile), arms(profile)
    params = {"PROFILE": profile}
    if nb.reads:
        experiments_read(stem, profile)  # every arm it reads is mapped
        params["SEEDS"] = list(prof["seeds"])
        if nb.arm_list:
            params["ARMS"] = [table[arm] for arm in nb.reads if arm in table]
        else:
            params.update((ARM_PARAMETERS[arm], table.get(arm, OPTIONAL_ARMS.get(arm))) for arm in nb.reads)
    params.update((prof.get("notebooks") or {}).get(stem) or {})
    return params


"""Figures: one function per figure, each returns a matplotlib Figure, grouped in modules by family.

This module gathers them under the names the notebooks and tests use:
reward (fig00, fig02, fig02_sweep), substitution (fig01, fig03, fig03_multitask_rank_k), spectra (fig04, fig08),
dynamics (fig05, fig06), overview (fig07); style holds the theme, captions and :func:`save_figure`;
figure_data writes each figure's data and redraws figures from it (:func:`publish`, :func:`redraw`).
"""
from __future__ import annotations

from ..claims.base import arm_label  # noqa: F401
from .dynamics import SIDE_LABELS, alignment_curves, extrapolation_curves, pls_r2_boxes  # noqa: F401
from .figure_data import (  # noqa: F401
    DRAW,
    FALLBACK,
    draw,
    multitask_lines,  # noqa: F401
    publish,
    redraw,
    write,
)
from .overview import VERDICT_COLOURS, claims_overview, condition, condition_class, overview_rows  # noqa: F401
from .reward import REWARD_EMA_SPAN, pass_at_k_curve, reward_and_test_curves, sweep_gaps  # noqa: F401
from .spectra import READING_LABELS, alpha_by_matrix, esd_tails, fraction_bars, matrix_order  # noqa: F401
from .style import THRESHOLD_STYLE, ZERO_MARK, caption, save_figure  # noqa: F401
from .substitution import (  # noqa: F401
    AXIS_LABELS,
    knowledge_panels,
    rank_table,
    recovery_bars,
    recovery_vs_rank,
    task_recovery,
)

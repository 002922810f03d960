"""figures: the notebooks' figures (matplotlib/seaborn), saved as PNG and SVG.

May import: every package but ``pipeline``.
"""

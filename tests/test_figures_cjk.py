"""The build's figures speak Chinese, and a character no font has fails the figure instead of drawing a box.

Every figure of ``paper_notes/figures/`` is drawn as the build draws it
([`render_svg`][paper_notes.figures.render_svg]): its titles and labels hold Chinese, each character
comes from a font (Latin from DejaVu Sans, Chinese from Noto Sans CJK, the ``noto-cjk-sans-otc``
package of the docs extra), and the glyphs are in the SVG as paths. A character that no font has,
in text or inside a ``$...$`` formula, raises one line naming the figure and the character; so does
Chinese when the font package is missing.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from paper_notes import figures
from paper_notes.buildcache import dependencies

from conftest import ROOT
from faults import one_line

ALL = dict(figures.iter_figures())
CJK = re.compile(r"[\u3400-\u9fff]")
GLYPH_FONTS = re.compile(rb'<path id="([A-Za-z]+(?:-[A-Za-z]+)?)-[0-9a-f]+"')
"""The font of each glyph matplotlib writes as a path (``DejaVuSans-4c``, ``NotoSansCJKsc-Regular-4ae1``)."""


def _texts_and_svg(make) -> tuple[list[str], bytes]:
    texts: list[str] = []

    def drawn() -> object:
        fig = make()
        texts.extend(t.get_text() for t in fig.findobj(Text) if t.get_text())
        return fig

    return texts, figures.render_svg(drawn)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_figure_is_labelled_in_chinese_drawn_in_noto_sans_cjk_with_no_glyph_missing(name: str) -> None:
    texts, svg = _texts_and_svg(ALL[name])  # render_svg raises if a glyph is missing
    chinese = [t for t in texts if CJK.search(t)]
    assert chinese, f"{name}: no Chinese in its titles, labels or legends: {texts[:6]}"
    fonts = set(GLYPH_FONTS.findall(svg))
    assert any(f.startswith(b"NotoSansCJK") for f in fonts), f"{name}: Chinese not drawn in Noto Sans CJK: {fonts}"
    assert all(f.startswith((b"NotoSansCJK", b"DejaVuSans", b"STIX")) for f in fonts), fonts
    assert b"<text" not in svg  # text as paths: a reader needs no font


def _figure(**labels: str):
    def make() -> Figure:
        fig = Figure(figsize=(3, 2))
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], label=labels.get("legend", "线"))
        ax.set_title(labels.get("title", "掩码率 (masking ratio)"))
        ax.set_xlabel(labels.get("xlabel", "x"))
        ax.set_xticks([0, 1], [labels.get("tick", "0"), "1"])
        ax.legend()
        if "text" in labels:
            fig.text(0.1, 0.1, labels["text"])
        return fig
    return make


@pytest.mark.parametrize("labels, char", [
    ({"title": "西夏文 \U00017000"}, "\U00017000"),         # Tangut: in neither font
    ({"xlabel": "火箭 \U0001F680"}, "\U0001F680"),           # an emoji (DejaVu Sans has some, not this one)
    ({"title": "泰文 \u0e01"}, "\u0e01"),                     # Thai
    ({"legend": "线性 B \U00010000"}, "\U00010000"),         # Linear B, in a legend
    ({"tick": "\U0001D11E"}, "\U0001D11E"),                  # a musical symbol as a tick label
    ({"text": "私用区 \ue000"}, "\ue000"),                    # private use area, free text
], ids=["tangut-title", "emoji-xlabel", "thai-title", "linear-b-legend", "music-tick", "private-use-text"])
def test_a_character_no_font_has_fails_the_figure_in_one_line_naming_the_figure_and_the_character(
        labels: dict[str, str], char: str) -> None:
    before = plt.get_fignums()
    with pytest.raises(ValueError) as raised:
        figures.render_svg(_figure(**labels))
    message = one_line(str(raised.value))
    assert f"U+{ord(char):04X}" in message and "_figure.<locals>.make" in message
    assert "DejaVu Sans, Noto Sans CJK SC" in message
    assert plt.get_fignums() == before


@pytest.mark.parametrize("label", ["$x$ 与 $y$", "掩码率 $r$", r"$\alpha$（度）"])
def test_chinese_inside_a_formula_label_fails_instead_of_a_dummy_box(label: str) -> None:
    with pytest.raises(ValueError) as raised:
        figures.render_svg(_figure(xlabel=label))
    message = one_line(str(raised.value))
    assert "$...$" in message and "U+" in message


def test_a_formula_glyph_is_caught_even_when_matplotlibs_log_is_quieted() -> None:
    quiet = logging.getLogger("matplotlib")
    before = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with pytest.raises(ValueError, match="U\\+4E0E"):
            figures.render_svg(_figure(xlabel="$x$ 与"))
        assert logging.getLogger("matplotlib.mathtext").level == logging.NOTSET
    finally:
        quiet.setLevel(before)


def test_latin_text_and_formulas_keep_dejavu_sans_and_only_chinese_comes_from_noto() -> None:
    svg = figures.render_svg(_figure(title="mask", xlabel="$x^2$", legend="line", text="掩"))
    counts: dict[bytes, int] = {}
    for font in GLYPH_FONTS.findall(svg):
        counts[font] = counts.get(font, 0) + 1
    assert counts.get(b"NotoSansCJKsc-Regular", 0) + counts.get(b"NotoSansCJKjp-Regular", 0) == 1  # 掩 only
    assert counts[b"DejaVuSans"] >= len(set("maskline01"))
    assert figures.style()["font.family"][0] == "DejaVu Sans"


def test_without_the_font_package_chinese_fails_and_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "cjk_family", lambda: None)
    with pytest.raises(ValueError) as raised:
        figures.render_svg(ALL["mae/decoder.svg"])
    message = one_line(str(raised.value))
    assert "paper_notes.figures.mae.decoder" in message
    assert "noto-cjk-sans-otc" in message and "pip install -e '.[docs]'" in message


def test_a_warning_that_is_not_about_a_glyph_still_only_warns() -> None:
    def make() -> Figure:
        warnings.warn("a figure's own warning", UserWarning)
        return _figure()()

    with pytest.warns(UserWarning, match="a figure's own warning"):
        assert figures.render_svg(make).lstrip().startswith(b"<?xml")


def test_the_figures_cache_key_covers_the_font_package() -> None:
    for module in ("kan", "hiera", "sam2"):
        _, external = dependencies(ROOT / f"paper_notes/figures/{module}.py", ROOT)
        assert "noto_cjk_sans_otc" in external, module


def test_the_docs_extra_installs_the_font_and_the_figures_alt_texts_are_chinese() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    docs = project["optional-dependencies"]["docs"]
    assert any(req.startswith("noto-cjk-sans-otc") for req in docs)
    embeds = [(path, m.group(1)) for path in sorted(Path(ROOT, "docs").rglob("*.md"))
              for m in re.finditer(r"!\[([^\]]*)\]\([^)]*figures/[^)]+\.svg\)", path.read_text(encoding="utf-8"))]
    assert len(embeds) >= len(ALL)
    english = [f"{p.relative_to(ROOT)}: {alt!r}" for p, alt in embeds if not CJK.search(alt)]
    assert not english

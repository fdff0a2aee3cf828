"""One-off dev step: the chart font, a subset of Noto Sans CJK SC, into services/fonts/.

    apt-get install fonts-noto-cjk      # Debian; SIL Open Font License 1.1
    .venv/bin/python scripts/subset_chart_font.py

Keeps what the charts write: every character of both catalogues, the built-in categories'
and departments' names, ASCII and common punctuation, and the 3,755 level-1 hanzi of GB2312
so that names configured in config.toml render too. Re-run after adding chart strings that
use rarer characters. Needs fonttools (a dev dependency).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SC = 2  # the collection's Simplified Chinese face
TARGET = ROOT / "services" / "fonts" / "NotoSansCJKsc-Subset.otf"
# A family name of its own, so matplotlib never confuses it with a system-wide Noto CJK.
FAMILY = "Noto Sans CJK SC Charts"


def gb2312_level1() -> str:
    """The 3,755 most common hanzi: GB2312 rows 16-55."""
    found = []
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            try:
                found.append(bytes((row, cell)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(found)


def wanted() -> str:
    sys.path.insert(0, str(ROOT))
    from settings import DEFAULT_CATEGORIES

    text = "".join(chr(c) for c in range(0x20, 0x7F))
    text += "·—–…‘’“”、。，：；！？（）《》【】％＋－×÷≤≥→←↑↓●○■□▲△★☆°℃¥￥"
    text += "".join(c.name_zh for c in DEFAULT_CATEGORIES)
    for language in ("zh", "en"):
        text += (ROOT / "locales" / language / "LC_MESSAGES" / "bot.po").read_text("utf-8")
    text += gb2312_level1()
    return "".join(sorted({c for c in text if c.isprintable() and ord(c) < 0x10000}))


def main() -> None:
    characters = wanted()
    options = subset.Options()
    options.font_number = SC
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False  # charts are drawn at a few sizes; hints cost a third of the file
    font = subset.load_font(str(SOURCE), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters)
    subsetter.subset(font)
    names = font["name"]
    for record in list(names.names):
        if record.nameID in (1, 3, 4, 16):
            names.setName(FAMILY, record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 6:
            names.setName(
                FAMILY.replace(" ", ""), 6, record.platformID, record.platEncID, record.langID
            )
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(TARGET), options)
    size = TARGET.stat().st_size
    print(f"{TARGET.relative_to(ROOT)}: {len(characters)} characters, {size:,} bytes")


if __name__ == "__main__":
    main()

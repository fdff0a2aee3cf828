"""The 联新卡 image: size and render time, 20 draws (prints figures, asserts nothing).

.venv/bin/python -m bench.card_image
"""

from __future__ import annotations

import statistics
import time

from services.membercard import CardFace, cjk_font_path, draw_card


def main() -> None:
    face = CardFace(
        programme="New-employment workers' services",
        title="Lianxin Card",
        name="W***",
        number="LX00000001",
        validity="QR valid until 12:34",
        link="https://t.me/suishoupai_bot?start=c" + "A" * 22,
    )
    timings, data = [], b""
    for _ in range(20):
        started = time.perf_counter()
        data = draw_card(face, cjk_font_path())
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"card PNG {len(data)} bytes; render median {statistics.median(timings):.1f} ms,"
        f" max {max(timings):.1f} ms; CJK font: {cjk_font_path() or 'none (English face)'}"
    )


if __name__ == "__main__":
    main()

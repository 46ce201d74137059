"""The demo model's corpus: the King James Version of the Bible (1611; public domain, its
copyright long expired), as Debian's `bible-kjv` package ships it (`apt-get install bible-kjv`).

Chapters become documents of plain prose (verse numbers dropped). Every 40th chapter is held
out for evaluation; the rest is training data.
"""
import re
import subprocess

HELD_OUT_EVERY = 40


def load_chapters():
    """Returns a list of (title, [verse, ...]) for all 1189 chapters, in canonical order."""
    text = subprocess.run(
        ["bible", "-l0", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True
    ).stdout
    chapters = []
    for line in text.splitlines():
        if not line.strip():
            continue
        verse = re.match(r"^\s+(\d+)\s+(.*)$", line)
        if verse:
            chapters[-1][1].append(verse.group(2).strip())
        else:
            chapters.append((line.strip(), []))
    assert len(chapters) == 1189, f"expected 1189 chapters, got {len(chapters)}"
    return chapters


def split_chapters():
    chapters = load_chapters()
    train = [c for i, c in enumerate(chapters) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    held_out = [c for i, c in enumerate(chapters) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    return train, held_out

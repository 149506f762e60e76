"""Cards (README.md with YAML front matter) that hubpress regenerates without trampling edits.

hubpress owns the text between its markers and the YAML keys it generates; everything a user
wrote outside the markers, and every YAML key a user added, survives a re-publish.
"""

from __future__ import annotations

from typing import Any

import yaml

BEGIN = "<!-- hubpress:begin (generated; edits between these markers are replaced on publish) -->"
END = "<!-- hubpress:end -->"


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter as a dict, body). A card without front matter gives ({}, text)."""
    if text.startswith("---\n") or text.startswith("---\r\n"):
        rest = text.split("\n", 1)[1]
        end = rest.find("\n---")
        if end != -1:
            meta = yaml.safe_load(rest[:end]) or {}
            # The blank line(s) after the closing fence are layout, not body: dropping them here
            # keeps merge_card idempotent (re-rendering an unchanged card gives identical bytes).
            body = rest[end + 4 :].lstrip("\r\n")
            if isinstance(meta, dict):
                return meta, body
    return {}, text


def merge_card(existing: str | None, generated_meta: dict[str, Any], generated_body: str) -> str:
    """The new card: the user's YAML keys and text kept, hubpress's keys and marked block replaced."""
    meta, body = split_front_matter(existing or "")
    merged = dict(meta)
    merged.update(generated_meta)
    block = f"{BEGIN}\n{generated_body.strip()}\n{END}"
    start, stop = body.find(BEGIN), body.find(END)
    if start != -1 and stop != -1 and stop > start:
        body = body[:start] + block + body[stop + len(END) :]
    elif body.strip():
        body = block + "\n\n" + body.lstrip("\n")
    else:
        body = block + "\n"
    front = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{body.rstrip()}\n"

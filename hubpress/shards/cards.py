"""Cards (README.md with YAML front matter) that hubpress regenerates without trampling edits.

hubpress owns the text between its markers and the YAML keys it generates; everything a user
wrote outside the markers, and every YAML key a user added, survives a re-publish.

Text that comes from users (prompts, ids, names, config values) goes into a card only through
`escape_text`: HTML is escaped (so neither a tag nor hubpress's own markers can appear in it), and
so are the Markdown characters that would break a table or open a link. A merge is a fixed point:
merging the card it produced with the same input gives the same bytes.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

import yaml

from hubpress.parsers import ParseLimitError, load_yaml

log = logging.getLogger("hubpress.cards")
_MARKDOWN = re.compile(r"([\\`*_\[\]|])")

BEGIN = "<!-- hubpress:begin (generated; edits between these markers are replaced on publish) -->"
END = "<!-- hubpress:end -->"


def escape_text(text: object, limit: int | None = None) -> str:
    """User text as one line of inert Markdown: whitespace runs become one space, HTML is escaped
    (no tag, no comment, no hubpress marker survives), and the Markdown characters that would end
    a table cell, open a link or start a code span are backslash-escaped."""
    flat = " ".join(str(text).split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _MARKDOWN.sub(r"\\\1", html.escape(flat, quote=False))


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter as a dict, body). A card without front matter gives ({}, text); front matter
    that is not valid YAML (or not a mapping, or keyed by other than text: `2024:`, which datasets
    cannot open) is left in the body as the user's text, so it never blocks a publish, and
    hubpress writes valid front matter above it."""
    if text.startswith("---\n") or text.startswith("---\r\n"):
        rest = text.split("\n", 1)[1]
        end = rest.find("\n---")
        if end != -1:
            try:
                meta = load_yaml(rest[:end], "the card's YAML front matter") or {}
            except ParseLimitError as exc:
                log.warning("%s It is kept as text below the generated block.", exc)
                return {}, text
            # The blank line(s) after the closing fence are layout, not body: dropping them here
            # keeps merge_card idempotent (re-rendering an unchanged card gives identical bytes).
            body = rest[end + 4 :].lstrip("\r\n")
            if isinstance(meta, dict) and all(isinstance(key, str) for key in meta):
                return meta, body
            if isinstance(meta, dict):  # datasets reads the keys as keyword arguments: it fails
                log.warning("The card's YAML front matter has keys that are not text; it is kept as text.")
    return {}, text


def merge_card(existing: str | None, generated_meta: dict[str, Any], generated_body: str) -> str:
    """The new card: the user's YAML keys and text kept, hubpress's keys and marked block replaced."""
    meta, body = split_front_matter(existing or "")
    merged = dict(meta)
    merged.update(generated_meta)
    block = f"{BEGIN}\n{generated_body.strip()}\n{END}"
    start = body.find(BEGIN)
    stop = body.find(END, start + len(BEGIN)) if start != -1 else -1  # the END that closes BEGIN
    if start != -1 and stop != -1:
        body = body[:start] + block + body[stop + len(END) :]
    elif body.strip():
        body = block + "\n\n" + body.lstrip("\n")
    else:
        body = block + "\n"
    front = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{body.rstrip()}\n"

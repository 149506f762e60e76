from hubpress.shards.cards import BEGIN, END, merge_card, split_front_matter


def test_merge_card_is_idempotent_and_keeps_user_text_and_keys():
    first = merge_card(None, {"license": "other", "tags": ["a"]}, "generated v1")
    assert first.startswith("---\n") and BEGIN in first and END in first
    edited = first.replace("license: other", "license: other\nmy_key: kept") + "\nUser notes stay.\n"
    again = merge_card(edited, {"license": "mit", "tags": ["a"]}, "generated v2")
    meta, body = split_front_matter(again)
    assert meta == {"license": "mit", "tags": ["a"], "my_key": "kept"}
    assert "generated v2" in body and "generated v1" not in body and "User notes stay." in body
    assert merge_card(again, {"license": "mit", "tags": ["a"]}, "generated v2") == again


def test_card_without_markers_gets_the_block_on_top_and_keeps_the_text():
    merged = merge_card("# My dataset\n\nHand-written.\n", {"x": 1}, "gen")
    meta, body = split_front_matter(merged)
    assert meta == {"x": 1}
    assert body.index(BEGIN) < body.index("Hand-written.")

"""FactsByPath (validation's facts by relpath) holds the facts most files share once: whatever is
put into it, by the cache scan's put_shared or as a whole FileFacts, it reads, compares, iterates,
updates and pickles as the dict of FileFacts it stands for."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources.facts_by_path import FactsByPath
from hubpress.sources.image_checks import FileFacts

PATHS = st.sampled_from(["a.png", "b.png", "train/c.png", "d.txt"])
SHAS = st.none() | st.sampled_from(["0" * 64, "f" * 64, "a" * 64])
# FileFacts' fields but the sha256: a few distinct ones, equal but not identical copies among them.
FIELDS = st.sampled_from(
    [
        ("png", 8, 8, None, None, None, 64, None, False, None),
        ("png", 8, 8, None, None, None, 64, None, False, None)[:],
        tuple(["png", 8, 8, None, None, None, 64, None, False, None]),
        ("jpeg", 4, 2, None, None, None, 8, 6, True, None),
        ("png", 40, 40, "image_too_large", "too big", None, None, None, True, None),
    ]
)
WHOLE = st.builds(FileFacts, SHAS, st.sampled_from(["png", None]), st.none() | st.integers(0, 9))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("shared"), PATHS, SHAS, FIELDS),
        st.tuples(st.just("set"), PATHS, WHOLE),
        st.tuples(st.just("del"), PATHS),
        st.tuples(st.just("update"), st.dictionaries(PATHS, WHOLE, max_size=3)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_it_is_the_dict_of_file_facts_it_stands_for(ops):
    facts, model = FactsByPath(), {}
    for op, *args in ops:
        if op == "shared":
            path, sha, fields = args
            facts.put_shared(path, sha, fields)
            model[path] = FileFacts(sha, *fields)
        elif op == "set":
            facts[args[0]] = model[args[0]] = args[1]
        elif op == "del" and args[0] in model:
            del facts[args[0]], model[args[0]]
        elif op == "update":
            facts.update(args[0])
            model.update(args[0])
    assert facts == model and dict(facts) == model
    assert (
        list(facts) == list(model) and list(facts.items()) == list(model.items()) and len(facts) == len(model)
    )
    for path in ["a.png", "b.png", "train/c.png", "d.txt"]:
        assert (path in facts) == (path in model)
        assert facts.get(path) == model.get(path) and facts.get(path, 1) == model.get(path, 1)
    again = pickle.loads(pickle.dumps(facts))
    assert again == model and list(again) == list(model)
    merged = FactsByPath()
    merged.update(facts)  # as the flow merges its chunks' facts
    assert merged == model
    assert FactsByPath(model) == facts


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, min_size=1, max_size=4))
def test_merging_several_is_merging_their_dicts(chunks):
    """The flow merges each chunk's facts into one: whatever shared facts each chunk holds, the
    merge reads as the dicts merged in the same order."""
    merged, model = FactsByPath(), {}
    for ops in chunks:
        part = FactsByPath()
        for op, *args in ops:
            if op == "shared":
                part.put_shared(*args)
            elif op == "set":
                part[args[0]] = args[1]
            elif op == "del" and args[0] in part:
                del part[args[0]]
            elif op == "update":
                part.update(args[0])
        merged.update(part)
        model.update(dict(part))
    assert merged == model and list(merged.items()) == list(model.items())
    merged.update({"new.png": FileFacts("1" * 64)}, **{"kw.png": FileFacts("2" * 64)})
    assert merged["new.png"].sha256 == "1" * 64 and merged["kw.png"].sha256 == "2" * 64

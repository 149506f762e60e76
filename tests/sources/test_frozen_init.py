"""quick_frozen_init: ListedFile, FileRef and FileFacts keep the frozen dataclass's signature and behaviour."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from hubpress.frozen_init import quick_frozen_init
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import FileRef
from hubpress.storage.files import ListedFile


@pytest.mark.parametrize("cls", [ListedFile, FileRef, FileFacts])
def test_signature_is_the_dataclass_fields(cls):
    params = inspect.signature(cls).parameters
    assert list(params) == [f.name for f in dataclasses.fields(cls)]
    for f in dataclasses.fields(cls):
        expected = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert params[f.name].default == expected


def test_file_ref_behaves_as_a_frozen_dataclass():
    ref = FileRef("/src/a.png", "a.png", 10, version="1+2:3")
    same = FileRef(uri="/src/a.png", relpath="a.png", size=10, version="1+2:3")
    assert ref == same and hash(ref) == hash(same)
    assert (ref.format, ref.sha256, ref.width, ref.decode_pending) == (None, None, None, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.size = 11  # type: ignore[misc]
    changed = dataclasses.replace(ref, sha256="ab", width=4)
    assert (changed.sha256, changed.width, changed.relpath) == ("ab", 4, "a.png")
    assert pickle.loads(pickle.dumps(changed)) == changed
    assert repr(ref).startswith("FileRef(uri='/src/a.png', relpath='a.png', size=10")
    with pytest.raises(TypeError):
        FileRef("/src/a.png")  # type: ignore[call-arg]


def test_file_facts_positional_order_is_kept():
    facts = FileFacts("ab" * 32, "png", 8, 6, None, None, None, None, 6, False, 2)
    assert (facts.sha256, facts.format, facts.width, facts.height) == ("ab" * 32, "png", 8, 6)
    assert (facts.orientation, facts.decoded, facts.frames) == (6, False, 2)
    assert FileFacts().decoded is True


def test_defaults_made_per_call_are_refused():
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithList:
        items: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="plain defaults only"):
        quick_frozen_init(WithList)

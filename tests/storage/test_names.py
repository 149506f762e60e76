"""The name gate (hubpress.storage.names): every input name that becomes a path, a path in a repo,
a git ref or a cache key passes it. A property test over generated names, then hostile names
driven through the flows and the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.errors import ConfigError
from hubpress.storage import names

SEGMENTS = st.sampled_from(["a", "b.png", "..", ".", "", "c d", "x\x00y", "\\", "..\\..", "~", "é"])
NAMES = st.one_of(
    st.text(max_size=40),
    st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join),
    st.lists(SEGMENTS, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts)),
)


@settings(max_examples=400, deadline=None)
@given(name=NAMES)
def test_a_resolved_name_is_inside_its_root_or_refused(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "gate-root"
    root.mkdir(exist_ok=True)
    try:
        path = names.inside(root, name)
    except names.UnsafeNameError as exc:
        assert isinstance(exc, ConfigError) and exc.kind == names.UNSAFE_NAME
        assert "\n" not in str(exc)  # one line, naming the input
        return
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    assert real.startswith(real_root + os.sep)
    assert ".." not in Path(name).parts and "\x00" not in name and not name.startswith("/")


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=30))
def test_a_git_ref_never_holds_what_git_refuses(name):
    try:
        names.git_ref(name)
    except names.UnsafeNameError:
        return
    assert ".." not in name and not name.startswith(("/", "-", "refs/")) and "\\" not in name
    assert not any(c in name for c in " ~^:?*[") and "@{" not in name and name not in ("", "@")


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "a/../b", "../x", "a//b", "./a", "a/", "a\x00b", "a\\b"])
def test_refused_names(tmp_path, bad):
    with pytest.raises(names.UnsafeNameError):
        names.inside(tmp_path, bad)


def test_a_symlink_leaving_the_root_is_refused_when_links_are_followed(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    with pytest.raises(names.UnsafeNameError, match="outside"):
        names.inside(tmp_path / "root", "out/x")
    assert names.inside(tmp_path / "root", "out/x", follow_links=False).name == "x"


@pytest.mark.parametrize("ref", ["../x", "a..b", "refs/pr/1", "v1 ", "a.lock", "-x", "x/", "@", "a@{1}"])
def test_refs_git_refuses(ref):
    with pytest.raises(names.UnsafeNameError, match="not a valid git ref"):
        names.git_ref(ref)


@pytest.mark.parametrize("ok", ["main", "v1.0", "release/2024-01", "step-500", "final"])
def test_refs_git_accepts(ok):
    assert names.git_ref(ok) == ok


@pytest.mark.parametrize("key", ["../../x", "a/b", "", ".", "..", "x" * 200])
def test_cache_keys(key):
    with pytest.raises(names.UnsafeNameError):
        names.cache_key(key)


def test_overlap_of_source_and_local_target(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    assert "is the source" in names.overlap(str(src), str(src))
    assert "inside the source" in names.overlap(str(src), str(src / "out"))
    assert "contains the source" in names.overlap(str(src / "sub"), str(src))
    assert names.overlap(str(src), str(tmp_path / "elsewhere")) is None
    assert names.overlap("s3://b/p", str(src)) is None

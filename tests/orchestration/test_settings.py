import os

import pytest

from hubpress._env import apply_transfer_compat
from hubpress.errors import MissingTokenError
from hubpress.settings import Settings, require_write_token, resolve_token


@pytest.fixture
def clean_env(monkeypatch):
    for var in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HUGGINGFACE_HUB_TOKEN",
        "HUBPRESS_TOKEN",
        "HUBPRESS_TOKEN_SECRET_BLOCK",
    ):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_token_lookup_order(clean_env):
    clean_env.setenv("HUGGINGFACE_HUB_TOKEN", "tok-guide")
    assert resolve_token(settings=Settings()).source == "HUGGINGFACE_HUB_TOKEN"
    clean_env.setenv("HUGGING_FACE_HUB_TOKEN", "tok-legacy")
    assert resolve_token(settings=Settings()).source == "HUGGING_FACE_HUB_TOKEN"
    clean_env.setenv("HF_TOKEN", "tok-hf")
    found = resolve_token(settings=Settings())
    assert (found.value, found.source) == ("tok-hf", "HF_TOKEN")
    assert resolve_token("explicit", Settings()).source == "the token argument"


def test_resolved_token_never_prints_its_value(clean_env):
    clean_env.setenv("HF_TOKEN", "hf_secretvalue123")
    token = resolve_token(settings=Settings())
    assert "hf_secretvalue123" not in repr(token) and "hf_secretvalue123" not in str(token)
    assert "hf_secretvalue123" not in repr(Settings(token="hf_secretvalue123"))


def test_missing_write_token_names_every_way(clean_env):
    with pytest.raises(MissingTokenError) as info:
        require_write_token(settings=Settings())
    message = str(info.value)
    for way in (
        "token=",
        "Secret block",
        "HUBPRESS_TOKEN",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HUGGINGFACE_HUB_TOKEN",
    ):
        assert way in message


def test_secret_block_is_used_and_a_missing_one_falls_through(clean_env, prefect_harness):
    from prefect.blocks.system import Secret

    Secret(value="tok-from-block").save("hubpress-test-token", overwrite=True)
    clean_env.setenv("HF_TOKEN", "tok-env")
    found = resolve_token(settings=Settings(token_secret_block="hubpress-test-token"))
    assert (found.value, found.source) == ("tok-from-block", "Prefect Secret block 'hubpress-test-token'")
    # A block that does not exist is skipped; the environment wins.
    assert resolve_token(settings=Settings(token_secret_block="no-such-block-here")).source == "HF_TOKEN"


def test_hf_transfer_is_translated_to_xet_high_performance():
    env = {"HF_HUB_ENABLE_HF_TRANSFER": "1"}
    assert apply_transfer_compat(env) is True
    assert env["HF_XET_HIGH_PERFORMANCE"] == "1"
    untouched = {"HF_HUB_ENABLE_HF_TRANSFER": "0"}
    assert apply_transfer_compat(untouched) is False and "HF_XET_HIGH_PERFORMANCE" not in untouched


def test_hf_transfer_translation_happens_before_huggingface_hub_import(tmp_path):
    import subprocess
    import sys

    code = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.INFO)\n"
        "import hubpress, huggingface_hub.constants as c, os\n"
        "print('XET', os.environ.get('HF_XET_HIGH_PERFORMANCE'), c.HF_XET_HIGH_PERFORMANCE)\n"
    )
    env = dict(os.environ, HF_HUB_ENABLE_HF_TRANSFER="1")
    env.pop("HF_XET_HIGH_PERFORMANCE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "XET 1 True" in out.stdout
    assert (out.stdout + out.stderr).count("HF_HUB_ENABLE_HF_TRANSFER=1 is ignored") == 1


def test_settings_read_hubpress_env(monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", "s3://bucket/stage")
    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", "http://127.0.0.1:1/")
    s = Settings()
    assert s.staging == "s3://bucket/stage" and s.endpoint() == "http://127.0.0.1:1"
    assert s.with_overrides({"staging": "/tmp/x"}).staging == "/tmp/x"


@pytest.fixture
def login_file(clean_env):
    """The file `hf auth login` writes (HF_HOME is the session's temporary one, never the user's)."""
    from huggingface_hub import constants

    path = constants.HF_TOKEN_PATH
    assert "hubpress-tests-" in path, path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    yield path
    if os.path.exists(path):
        os.remove(path)


def test_the_token_of_hf_auth_login_is_used_last(login_file, clean_env):
    with pytest.raises(MissingTokenError) as info:
        require_write_token(settings=Settings())
    assert login_file in str(info.value) and "hf auth login" in str(info.value)

    with open(login_file, "w") as f:
        f.write("hf_fromloginfile\n")
    found = resolve_token(settings=Settings())
    assert found.value == "hf_fromloginfile" and login_file in found.source
    clean_env.setenv("HF_TOKEN", "tok-env")
    assert resolve_token(settings=Settings()).value == "tok-env"


def test_a_publish_with_only_the_login_file_works(login_file, hub, tmp_path, prefect_harness):
    from hubpress.testdata.synth import write_dataset
    from tests.conftest import WRITE_TOKEN, run_cli

    with open(login_file, "w") as f:
        f.write(WRITE_TOKEN + "\n")
    write_dataset(tmp_path / "src", samples=3, test_fraction=0.0, image_size=16, seed=4)
    code, out, err = run_cli("publish-dataset", str(tmp_path / "src"), "alice/login-file-check")
    assert code == 0, err
    assert hub.stats.commits == 1

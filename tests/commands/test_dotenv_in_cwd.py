"""hubpress reads HUBPRESS_* settings from a `.env` file in the working directory. A project's own
`.env` there (docker compose's, another tool's) is often not UTF-8: written in Latin-1, or as
UTF-16 by Windows Notepad. Every command run from that directory was a UnicodeDecodeError
traceback, though none of its keys were hubpress's; now it is one line naming the file. A `.env`
that is a folder (a virtual environment named `.env`) is no settings file and is passed over."""

from __future__ import annotations

import pytest

from hubpress.errors import SettingsFileError
from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


@pytest.mark.parametrize(
    "content", [b"APP_NAME=Caf\xe9\n", "APP_NAME=x\n".encode("utf-16")], ids=["latin-1", "utf-16"]
)
def test_a_dotenv_that_is_not_utf8_is_one_line_naming_it(tmp_cwd, content):
    write_dataset(tmp_cwd / "src", samples=1)
    (tmp_cwd / ".env").write_bytes(content)
    code, out, err = run_cli("scan", "src")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {tmp_cwd / '.env'} is not UTF-8 text")
    assert "save it as UTF-8" in err
    with pytest.raises(SettingsFileError, match=r"\.env is not UTF-8 text"):
        from hubpress.api import upload_editing_dataset

        upload_editing_dataset("src", "./out")
    assert not (tmp_cwd / "out").exists()


def test_a_dotenv_folder_is_passed_over(tmp_cwd):
    write_dataset(tmp_cwd / "src", samples=1)
    (tmp_cwd / ".env" / "bin").mkdir(parents=True)
    code, out, err = run_cli("scan", "src", "--json")
    assert code == 0 and '"samples": 1' in out, err

"""A refresh's `local` backend whose folder holds links out of it: `cat.txt` linked to a
credentials file beside the folder, `dog.png` linked to an image elsewhere. publish-dataset refuses
what leads outside its source (hubpress.storage.listed_reads); the refresh's local backend read
through the links, and published the credentials as the caption of `cat.png` and the other image
as the folder's own. Now a link out is not read: a sample whose image or caption file is one is
left out as `outside_source` (captioning it from its file name instead would change its caption
silently); links that stay inside the folder are read as before."""

from __future__ import annotations

from hubpress.refresh.config import parse_refresh_config
from hubpress.refresh.reading import read_backend
from tests.refresh.test_refresh_upstream import png


def test_links_out_of_a_local_backends_folder_are_not_read(tmp_path):
    (tmp_path / "secret.txt").write_text("aws_secret_access_key = hunter2\n")
    (tmp_path / "elsewhere.png").write_bytes(png(6, 6))
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "cat.png").write_bytes(png(8, 4))
    (folder / "cat.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "dog.png").symlink_to(tmp_path / "elsewhere.png")
    (folder / "dog.txt").write_text("a dog\n")
    (folder / "owl.png").symlink_to(folder / "cat.png")  # inside the folder: read
    (folder / "owl.txt").write_text("an owl\n")
    cfg = parse_refresh_config({"id": "l", "type": "local", "instance_data_dir": str(folder)}).backends[0]
    read = read_backend(cfg)
    rows = list(read.rows())
    assert [(r["image"]["path"], r["captions"]) for r in rows] == [("owl.png", ["an owl"])]
    assert all("hunter2" not in str(r["captions"]) for r in rows)
    assert dict(read.report.dropped) == {"outside_source": 2}

"""Multipart uploads, one at a time per uploader: each LFS batch answer names a fresh upload id in
its part and completion links (as S3's UploadId does), and the parts of each upload are kept apart.

Two clients uploading the same object at once (two publishes of the same new dataset) then each
complete their own upload: the object is stored by content, so both succeed, as on the Hub. Before,
both wrote into one parts folder and the second completion found the first one's part ETags.
"""

from __future__ import annotations

import re
import uuid

from .errors import BadRequest
from .messages import Request

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def new_upload_id() -> str:
    return uuid.uuid4().hex


def with_upload_id(url: str, upload_id: str) -> str:
    return f"{url}&upload={upload_id}"


def parts_key(request: Request) -> str:
    """The key of this upload's parts folder: the object id and the upload id of its links."""
    upload_id = request.arg("upload") or ""
    if upload_id and not _UPLOAD_ID.match(upload_id):
        raise BadRequest("The upload id of this link is malformed")
    oid = request.params["oid"]
    return f"{oid}-{upload_id}" if upload_id else oid

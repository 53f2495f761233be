"""Drives the official Feishu Python SDK (lark-oapi) against the facesync emulator.

Usage: feishu_sdk.py BASE_URL APP_ID APP_SECRET PHOTO USER_ID UNKNOWN_USER_ID

Steps: the SDK fetches a tenant access token by itself, uploads PHOTO as USER_ID's face,
downloads it back (whole and cropped), lists the users, and uploads for a user that does not
exist. Prints one JSON object per step to stdout; tests/emulator.rs checks them. Exits 3 when
lark_oapi is not installed, so the Rust test can skip with a reason.
"""

import io
import json
import sys

try:
    import lark_oapi as lark
    from lark_oapi.api.acs.v1 import (
        File,
        GetUserFaceRequest,
        ListUserRequest,
        UpdateUserFaceRequest,
    )
except ImportError as e:  # the Rust test skips on exit code 3
    print(f"lark_oapi is not installed: {e}", file=sys.stderr)
    sys.exit(3)


def report(step, **fields):
    print(json.dumps({"step": step, **fields}, sort_keys=True), flush=True)


def upload(client, user_id, data):
    body = (
        File.builder()
        .files(io.BytesIO(data))
        .file_type("jpg")
        .file_name(f"{user_id}.jpg")
        .build()
    )
    request = (
        UpdateUserFaceRequest.builder()
        .user_id(user_id)
        .user_id_type("user_id")
        .request_body(body)
        .build()
    )
    return client.acs.v1.user_face.update(request)


def download(client, user_id, cropped):
    request = (
        GetUserFaceRequest.builder()
        .user_id(user_id)
        .user_id_type("user_id")
        .is_cropped(cropped)
        .build()
    )
    return client.acs.v1.user_face.get(request)


def main():
    base_url, app_id, app_secret, photo, user_id, unknown = sys.argv[1:7]
    client = (
        lark.Client.builder()
        .app_id(app_id)
        .app_secret(app_secret)
        .domain(base_url)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )
    with open(photo, "rb") as f:
        data = f.read()

    response = upload(client, user_id, data)
    report("upload", code=response.code, msg=response.msg)

    response = download(client, user_id, False)
    body = response.file.read() if response.code == 0 and response.file else b""
    report(
        "download",
        code=response.code,
        same_bytes=body == data,
        file_name=response.file_name,
    )

    response = download(client, user_id, True)
    body = response.file.read() if response.code == 0 and response.file else b""
    report("download_cropped", code=response.code, jpeg=body[:3] == b"\xff\xd8\xff")

    request = ListUserRequest.builder().page_size(50).user_id_type("user_id").build()
    response = client.acs.v1.user.list(request)
    items = response.data.items if response.code == 0 and response.data else []
    report(
        "list",
        code=response.code,
        users={i.user_id: bool(i.feature and i.feature.face_uploaded) for i in items or []},
        has_more=bool(response.data and response.data.has_more),
    )

    response = upload(client, unknown, data)
    report("upload_unknown", code=response.code, msg=response.msg)


if __name__ == "__main__":
    main()

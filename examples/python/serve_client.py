#!/usr/bin/env python3
"""A small client for `trocr serve`: posts images as one multipart request and prints the texts
in upload order. Only the standard library.

    trocr serve -m MODEL_DIR --port 8080 &
    python3 serve_client.py http://127.0.0.1:8080 a.jpg b.png
"""
import json
import mimetypes
import os
import sys
import urllib.request
import uuid


def recognize(url, paths):
    boundary = uuid.uuid4().hex
    body = b""
    for index, path in enumerate(paths):
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image{index}\"; "
                 f"filename=\"{os.path.basename(path)}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
        body += open(path, "rb").read() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url.rstrip("/") + "/v1/recognize", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.load(reply)


if __name__ == "__main__":
    reply = recognize(sys.argv[1], sys.argv[2:])
    for path, item in zip(sys.argv[2:], reply["results"]):
        print(f"{path}\t{item['text']}\t{item['confidence']:.4f}")

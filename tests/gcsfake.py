"""A FAKE Google Cloud Storage JSON API for tests: a stand-in, not GCS.

No GCS emulator installs from the registries these machines reach, so the GCS store is
tested against this small HTTP server on 127.0.0.1, reached by the same code that talks to
GCS (google-auth's authorized session, pointed here with `storage_custom_endpoint`). It
speaks the part of the JSON API the store uses, as GCS answers it:

- objects insert (`POST /upload/storage/v1/b/B/o?uploadType=media&name=N`), get
  (`GET /storage/v1/b/B/o/N`, metadata; `?alt=media`, the bytes with `x-goog-generation`),
  delete (`DELETE`, 204) and list (`GET /storage/v1/b/B/o?prefix=P&pageToken=T`, pages of
  `page_size` with `nextPageToken`);
- generations: every write makes a new, larger one (GCS's are microsecond stamps);
  `ifGenerationMatch=0` means "only if absent", any other value "only at that
  generation"; a precondition that does not hold is `412` with reason `conditionNotMet`,
  a missing object or bucket `404 notFound`, in GCS's JSON error shape;
- bearer-token authentication (401 `required` without the token), and `deny` to answer
  403 `forbidden` as GCS does a principal without a role on the bucket.

Not served: metadata patches, resumable or multipart uploads, ifMetagenerationMatch,
versioned reads, IAM (a valid token may do anything). `unknown` lists every request the fake
could not route, so a test can assert the store asked for nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class FakeGCS:
    def __init__(self, buckets: tuple[str, ...] = ("state",), token: str = "gcs-fake-token") -> None:
        self.token = token
        self.page_size = 1000
        #: Answer every authenticated request 403, as GCS does a principal without a role.
        self.deny = False
        self.buckets: dict[str, dict[str, tuple[bytes, int]]] = {b: {} for b in buckets}
        self.unknown: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._last = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGCS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _generation(self) -> int:
        self._last = max(self._last + 1, time.time_ns() // 1000)
        return self._last

    def objects(self, bucket: str = "state") -> dict[str, bytes]:
        with self._lock:
            return {name: data for name, (data, _) in self.buckets[bucket].items()}

    def resource(self, bucket: str, name: str) -> dict[str, Any]:
        data, generation = self.buckets[bucket][name]
        return {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/{generation}",
            "name": name,
            "bucket": bucket,
            "generation": str(generation),
            "metageneration": "1",
            "contentType": "application/json",
            "size": str(len(data)),
            "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "storageClass": "STANDARD",
        }


def _error(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }


def _precondition() -> tuple[int, dict[str, Any]]:
    return 412, _error(
        412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold."
    )


def _handler(fake: FakeGCS) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(
            self, code: int, body: dict[str, Any] | bytes | None, headers: dict[str, str] | None = None
        ) -> None:
            raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            ctype = "application/json" if not isinstance(body, bytes) else "application/octet-stream"
            self.send_header("Content-Type", (headers or {}).pop("Content-Type", ctype))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.requests.append((method, parts.path))
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                self._send(
                    401, _error(401, "required", "Anonymous caller does not have storage.objects.get access.")
                )
                return
            if fake.deny:
                message = (
                    "caller does not have storage.objects.get access to the Google Cloud Storage object."
                )
                self._send(403, _error(403, "forbidden", message))
                return
            segments = [unquote(s) for s in parts.path.split("/")]
            # ['', 'storage', 'v1', 'b', B, 'o', N?] or ['', 'upload', 'storage', 'v1', 'b', B, 'o']
            with fake._lock:
                if segments[1:4] == ["storage", "v1", "b"] and len(segments) >= 6 and segments[5] == "o":
                    bucket = segments[4]
                    name = "/".join(segments[6:]) if len(segments) > 6 else None
                    answer = self._objects(method, bucket, name, query)
                elif (
                    segments[1:5] == ["upload", "storage", "v1", "b"]
                    and segments[6:] == ["o"]
                    and method == "POST"
                ):
                    answer = self._insert(segments[5], query, body)
                else:
                    answer = None
                if answer is None:
                    fake.unknown.append((method, parts.path))
                    self._send(404, _error(404, "notFound", "Not Found"))
                    return
            self._send(*answer)

        def _objects(
            self, method: str, bucket: str, name: str | None, query: dict[str, str]
        ) -> tuple[Any, ...] | None:
            if bucket not in fake.buckets:
                return 404, _error(404, "notFound", "The specified bucket does not exist.")
            objects = fake.buckets[bucket]
            if name is None:
                if method != "GET":
                    return None
                prefix = query.get("prefix", "")
                names = sorted(n for n in objects if n.startswith(prefix))
                start = names.index(query["pageToken"]) if query.get("pageToken") in names else 0
                page = names[start : start + fake.page_size]
                listed: dict[str, Any] = {
                    "kind": "storage#objects",
                    "items": [fake.resource(bucket, n) for n in page],
                }
                if start + fake.page_size < len(names):
                    listed["nextPageToken"] = names[start + fake.page_size]
                if not page:
                    del listed["items"]  # GCS leaves `items` out of an empty page
                return 200, listed
            if name not in objects:
                return 404, _error(404, "notFound", f"No such object: {bucket}/{name}")
            data, generation = objects[name]
            wanted = query.get("ifGenerationMatch")
            if wanted is not None and wanted != str(generation):
                return _precondition()
            if method == "GET":
                if query.get("alt") == "media":
                    return (
                        200,
                        data,
                        {
                            "Content-Type": "application/json",
                            "x-goog-generation": str(generation),
                            "x-goog-metageneration": "1",
                            "x-goog-stored-content-length": str(len(data)),
                        },
                    )
                return 200, fake.resource(bucket, name)
            if method == "DELETE":
                del objects[name]
                return 204, None
            return None

        def _insert(self, bucket: str, query: dict[str, str], body: bytes) -> tuple[Any, ...] | None:
            if query.get("uploadType") != "media" or not query.get("name"):
                return None
            if bucket not in fake.buckets:
                return 404, _error(404, "notFound", "The specified bucket does not exist.")
            objects, name = fake.buckets[bucket], query["name"]
            wanted = query.get("ifGenerationMatch")
            if wanted is not None:
                current = str(objects[name][1]) if name in objects else "0"
                if wanted != current:
                    return _precondition()
            objects[name] = (body, fake._generation())
            return 200, fake.resource(bucket, name)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler

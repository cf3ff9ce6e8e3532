"""A FAKE Azure Blob Storage service for tests: a stand-in, not Azure (nor Azurite).

Azurite is an npm package that needs a Node runtime these test machines do not ship, so the
Azure Blob store is tested against this small HTTP server on 127.0.0.1, reached by the real
`azure-storage-blob` client through a path-style account URL (`http://127.0.0.1:PORT/ACCOUNT`,
the form Azurite uses). It speaks the part of the Blob REST API the store uses, as Azure
answers it:

- Put Blob (`PUT /ACCOUNT/CONTAINER/BLOB`, `x-ms-blob-type: BlockBlob`, 201 with `ETag`),
  Get Blob (200, or 206 with `Content-Range` for `x-ms-range`/`Range`), Delete Blob (202),
  List Blobs (`GET /ACCOUNT/CONTAINER?restype=container&comp=list&prefix=P&marker=M`, the
  EnumerationResults XML, pages of `page_size` with `NextMarker`);
- conditions: `If-None-Match: *` on an existing blob is `409 BlobAlreadyExists`,
  `If-Match: <etag>` that does not match (or names a blob that is not there) is
  `412 ConditionNotMet`; a missing blob `404 BlobNotFound`, a missing container
  `404 ContainerNotFound`; errors as Azure's XML `<Error><Code>` with `x-ms-error-code`;
- a new ETag on every write; Shared Key (`Authorization: SharedKey ACCOUNT:...`) or a SAS
  (`sig=` in the query) is required (403 AuthenticationFailed otherwise), and so is
  `x-ms-version`. The signature is not verified; `deny` answers 403
  AuthorizationPermissionMismatch, as Azure does a principal without a data role.

Not served: leases, snapshots, block lists, append/page blobs, metadata, containers'
creation. `unknown` lists every request the fake could not route.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

ACCOUNT = "devstoreaccount1"
#: Any base64 string is a key to the fake (it does not verify signatures).
ACCOUNT_KEY = base64.b64encode(b"fake-azure-account-key-for-tests").decode()


class FakeAzureBlob:
    def __init__(self, containers: tuple[str, ...] = ("state",), account: str = ACCOUNT) -> None:
        self.account = account
        self.page_size = 5000
        #: Answer every authenticated request 403, as Azure does a principal without a data role.
        self.deny = False
        self.containers: dict[str, dict[str, tuple[bytes, str, str]]] = {c: {} for c in containers}
        self.unknown: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._n = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The account URL, path-style."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.account}"

    def __enter__(self) -> FakeAzureBlob:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def blobs(self, container: str = "state") -> dict[str, bytes]:
        with self._lock:
            return {name: data for name, (data, _, _) in self.containers[container].items()}

    def _etag(self) -> str:
        self._n += 1
        return f'"0x8DD{self._n:012X}"'


def _error(code: int, error: str, message: str) -> tuple[int, bytes, dict[str, str]]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{error}</Code><Message>{escape(message)}\nRequestId:fake\nTime:{formatdate(usegmt=True)}</Message>"
        "</Error>"
    ).encode()
    return code, body, {"x-ms-error-code": error, "Content-Type": "application/xml"}


def _handler(fake: FakeAzureBlob) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            headers = {
                "x-ms-version": self.headers.get("x-ms-version", ""),
                "x-ms-request-id": "fake",
                **headers,
            }
            headers["Date"] = formatdate(usegmt=True)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.requests.append((method, parts.path))
            auth = self.headers.get("Authorization", "")
            if not (
                auth.startswith(f"SharedKey {fake.account}:") or auth.startswith("Bearer ") or "sig" in query
            ):
                self._send(*_error(403, "AuthenticationFailed", "Server failed to authenticate the request."))
                return
            if fake.deny:
                self._send(
                    *_error(
                        403,
                        "AuthorizationPermissionMismatch",
                        "This request is not authorized to perform this operation using this permission.",
                    )
                )
                return
            if not self.headers.get("x-ms-version"):
                self._send(
                    *_error(400, "MissingRequiredHeader", "An HTTP header that's mandatory is missing.")
                )
                return
            segments = parts.path.split("/", 3)  # ['', account, container, blob]
            if len(segments) < 3 or segments[1] != fake.account:
                fake.unknown.append((method, parts.path))
                self._send(*_error(400, "InvalidUri", "The requested URI does not represent any resource."))
                return
            container = unquote(segments[2])
            blob = unquote(segments[3]) if len(segments) > 3 and segments[3] else None
            with fake._lock:
                if container not in fake.containers:
                    answer: Any = _error(404, "ContainerNotFound", "The specified container does not exist.")
                elif blob is None and method == "GET" and query.get("comp") == "list":
                    answer = self._list(container, query)
                elif blob is not None and method in ("GET", "HEAD", "PUT", "DELETE"):
                    answer = self._blob(method, container, blob, body)
                else:
                    answer = None
            if answer is None:
                fake.unknown.append((method, parts.path))
                answer = _error(
                    400, "UnsupportedHttpVerb", "The resource doesn't support the specified verb."
                )
            self._send(*answer)

        def _blob(
            self, method: str, container: str, name: str, body: bytes
        ) -> tuple[int, bytes, dict[str, str]]:
            blobs = fake.containers[container]
            current = blobs.get(name)
            if_match = self.headers.get("If-Match")
            if_none = self.headers.get("If-None-Match")
            if if_match is not None and (current is None or if_match not in ("*", current[1])):
                if current is None and method != "PUT":
                    return _error(404, "BlobNotFound", "The specified blob does not exist.")
                return _error(
                    412,
                    "ConditionNotMet",
                    "The condition specified using HTTP conditional header(s) is not met.",
                )
            if method == "PUT":
                if self.headers.get("x-ms-blob-type") != "BlockBlob":
                    return _error(400, "MissingRequiredHeader", "An HTTP header that's mandatory is missing.")
                if if_none == "*" and current is not None:
                    return _error(409, "BlobAlreadyExists", "The specified blob already exists.")
                etag, stamp = fake._etag(), formatdate(usegmt=True)
                blobs[name] = (body, etag, stamp)
                md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
                return (
                    201,
                    b"",
                    {
                        "ETag": etag,
                        "Last-Modified": stamp,
                        "Content-MD5": md5,
                        "x-ms-request-server-encrypted": "true",
                    },
                )
            if current is None:
                return _error(404, "BlobNotFound", "The specified blob does not exist.")
            data, etag, stamp = current
            if if_none is not None and if_none in ("*", etag) and method in ("GET", "HEAD"):
                return 304, b"", {"ETag": etag}
            if method == "DELETE":
                del blobs[name]
                return 202, b"", {"x-ms-delete-type-permanent": "true"}
            headers = {
                "ETag": etag,
                "Last-Modified": stamp,
                "Content-Type": "application/json",
                "x-ms-blob-type": "BlockBlob",
                "x-ms-creation-time": stamp,
                "x-ms-lease-state": "available",
                "x-ms-lease-status": "unlocked",
                "x-ms-server-encrypted": "true",
                "Accept-Ranges": "bytes",
            }
            wanted = self.headers.get("x-ms-range") or self.headers.get("Range")
            if wanted and wanted.startswith("bytes="):
                if not data:
                    return _error(
                        416,
                        "InvalidRange",
                        "The range specified is invalid for the current size of the resource.",
                    )
                start_s, _, end_s = wanted.removeprefix("bytes=").partition("-")
                start = int(start_s)
                end = min(int(end_s) if end_s else len(data) - 1, len(data) - 1)
                if start >= len(data):
                    return _error(
                        416,
                        "InvalidRange",
                        "The range specified is invalid for the current size of the resource.",
                    )
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                return 206, data[start : end + 1], headers
            return 200, data, headers

        def _list(self, container: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
            prefix = query.get("prefix", "")
            size = min(int(query.get("maxresults") or fake.page_size), fake.page_size)
            names = sorted(n for n in fake.containers[container] if n.startswith(prefix))
            marker = query.get("marker", "")
            start = names.index(marker) if marker in names else 0
            page, rest = names[start : start + size], names[start + size :]
            items = "".join(
                f"<Blob><Name>{escape(n)}</Name><Properties>"
                f"<Creation-Time>{fake.containers[container][n][2]}</Creation-Time>"
                f"<Last-Modified>{fake.containers[container][n][2]}</Last-Modified>"
                f"<Etag>{fake.containers[container][n][1]}</Etag>"
                f"<Content-Length>{len(fake.containers[container][n][0])}</Content-Length>"
                "<Content-Type>application/json</Content-Type><BlobType>BlockBlob</BlobType>"
                "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
                "<ServerEncrypted>true</ServerEncrypted></Properties></Blob>"
                for n in page
            )
            xml = (
                '<?xml version="1.0" encoding="utf-8"?>'
                f'<EnumerationResults ServiceEndpoint="{fake.url}/" ContainerName="{escape(container)}">'
                f"<Prefix>{escape(prefix)}</Prefix><MaxResults>{size}</MaxResults><Blobs>{items}</Blobs>"
                f"<NextMarker>{escape(rest[0]) if rest else ''}</NextMarker></EnumerationResults>"
            )
            return 200, xml.encode(), {"Content-Type": "application/xml"}

        def do_GET(self) -> None:
            self._route("GET")

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_DELETE(self) -> None:
            self._route("DELETE")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler

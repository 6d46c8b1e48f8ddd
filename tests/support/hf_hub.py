"""A stand-in for the Hugging Face Hub on 127.0.0.1: serves local folders as dataset repos.

It answers the calls `huggingface_hub`'s `HfFileSystem` makes to read a dataset (repo info, tree
listing, paths info, file downloads with byte ranges) and, with an `upload_root`, the calls
`HfApi.create_repo` / `create_commit` make to publish one (repo creation, preupload, a commit
of inline base64 files), and records every request's path and `Authorization` header, so tests
run offline and can check the token was sent.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

SHA = "0" * 40


@dataclass
class Hub:
    """Dataset repos (`org/name` -> folder) and the requests seen."""

    repos: dict[str, Path]
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    url: str = ""
    upload_root: Path | None = None
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)


def _entry(root: Path, path: Path) -> dict[str, Any]:
    rel = path.relative_to(root).as_posix()
    if path.is_dir():
        return {"type": "directory", "path": rel, "oid": SHA}
    data = path.read_bytes()
    return {"type": "file", "path": rel, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}


class _Handler(BaseHTTPRequestHandler):
    hub: Hub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: bytes, ctype: str = "application/json", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: Any, status: int = 200, **headers: str) -> None:
        self._send(status, json.dumps(value).encode(), **headers)

    def _repo(self, parts: list[str]) -> tuple[str, Path] | None:
        repo = "/".join(parts[:2])
        root = self.hub.repos.get(repo)
        return (repo, root) if root is not None else None

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.hub.requests.append((self.command, url.path, self.headers.get("Authorization")))
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts[:2] == ["api", "datasets"]:
            found = self._repo(parts[2:])
            if found is None:
                self._json({"error": "Repository not found"}, 404, X_Error_Code="RepoNotFound")
                return
            repo, root = found
            rest = parts[4:]
            if not rest or rest[0] == "revision":
                self._json({"id": repo, "sha": SHA, "private": False, "siblings": []})
                return
            if rest[0] == "tree":
                self._tree(root, "/".join(rest[2:]), parse_qs(url.query))
                return
        if parts[:1] == ["datasets"] and len(parts) > 5 and parts[3] == "resolve":
            found = self._repo(parts[1:])
            target = found[1] / "/".join(parts[5:]) if found else None
            if target is None or not target.is_file():
                self._json({"error": "Entry not found"}, 404, X_Error_Code="EntryNotFound")
                return
            self._file(target.read_bytes())
            return
        self._json({"error": f"not served: {url.path}"}, 404)

    def _body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

    def _create_repo(self) -> None:
        body = json.loads(self._body())
        name = body["name"] if "/" in body["name"] else f"{body.get('organization')}/{body['name']}"
        if self.hub.upload_root is None:
            self._json({"error": "read-only hub"}, 403)
            return
        if name in self.hub.repos and not body.get("exist_ok", True):
            self._json({"error": "You already created this dataset repo"}, 409)
            return
        folder = self.hub.upload_root / name
        folder.mkdir(parents=True, exist_ok=True)
        self.hub.repos[name] = folder
        private = bool(body.get("private")) or body.get("visibility") == "private"
        self.hub.created[name] = {"private": private, "type": body.get("type")}
        self._json({"url": f"{self.hub.url}/datasets/{name}", "name": name})

    def _commit(self, repo: str, root: Path) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x.get("key") == "header"), {})
        written = []
        for item in lines:
            if item.get("key") != "file":
                continue
            value = item["value"]
            target = root / value["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(value["content"]))
            written.append(value["path"])
        self.hub.commits.append({"summary": header.get("summary"), "files": written})
        url = f"{self.hub.url}/datasets/{repo}/commit/{SHA}"
        self._json({"commitUrl": url, "commitOid": SHA})

    def do_POST(self) -> None:
        url = urlparse(self.path)
        self.hub.requests.append(("POST", url.path, self.headers.get("Authorization")))
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["api", "repos", "create"]:
            self._create_repo()
            return
        if parts == ["api", "validate-yaml"]:
            self.hub.cards.append(json.loads(self._body()).get("content", ""))
            self._json({"errors": [], "warnings": []})
            return
        found = self._repo(parts[2:]) if parts[:2] == ["api", "datasets"] else None
        if found is not None and parts[4:5] == ["preupload"]:
            files = json.loads(self._body()).get("files", [])
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            self._json({"files": modes, "commitOid": SHA})
            return
        if found is not None and parts[4:5] == ["commit"]:
            self._commit(*found)
            return
        if found is None or parts[4:5] != ["paths-info"]:
            self._json({"error": "not found"}, 404)
            return
        form = parse_qs(self._body().decode())
        root = found[1]
        paths = [root / p for p in form.get("paths", [])]
        self._json([_entry(root, p) for p in paths if p.exists()])

    def _tree(self, root: Path, sub: str, query: dict[str, list[str]]) -> None:
        base = root / sub
        if not base.is_dir():
            self._json({"error": "Entry not found"}, 404, X_Error_Code="EntryNotFound")
            return
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        items = base.rglob("*") if recursive else base.iterdir()
        self._json([_entry(root, p) for p in sorted(items)])

    def _file(self, data: bytes) -> None:
        rng = self.headers.get("Range")
        etag = '"' + hashlib.sha1(data).hexdigest() + '"'
        common = {"ETag": etag, "X_Repo_Commit": SHA, "Accept_Ranges": "bytes"}
        if rng and rng.startswith("bytes="):
            start_s, end_s = rng[6:].split("-")
            start = int(start_s)
            end = min(int(end_s), len(data) - 1) if end_s else len(data) - 1
            chunk = data[start : end + 1]
            self._send(
                206,
                chunk,
                "application/octet-stream",
                Content_Range=f"bytes {start}-{end}/{len(data)}",
                **common,
            )
            return
        self._send(200, data, "application/octet-stream", **common)


@contextmanager
def serve(repos: dict[str, Path], upload_root: Path | None = None) -> Iterator[Hub]:
    """Serve the repos on 127.0.0.1 (a free port) until the block ends; with `upload_root`,
    repos may also be created and committed to (their files land under it)."""
    hub = Hub(dict(repos), upload_root=upload_root)
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

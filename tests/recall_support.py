"""Recall with the local model: settings that turn it on, and a loopback OpenAI-compatible
embeddings server that answers with the same model's vectors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from memwarden import Memwarden, Settings
from memwarden.core.embedding import _load_local


def with_model(settings: Settings, **changes: Any) -> Settings:
    """The same database with the local embedder on (the suite's default is none)."""
    return settings.model_copy(update={"embedder": "local", **changes})


def remember_all(mw: Memwarden, project: str, contents: list[str]) -> list[int]:
    ids = [mw.remember(project, c, status="active").memory.id for c in contents]
    assert mw.wait_for_embeddings(60)
    return ids


@contextmanager
def embeddings_server() -> Iterator[dict[str, Any]]:
    """``POST /v1/embeddings`` on 127.0.0.1, vectors from the local model; ``state`` counts
    the calls and can make the server answer 503."""
    model = _load_local()
    state: dict[str, Any] = {"calls": 0, "fail": False, "auth": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            state["calls"] += 1
            state["auth"].append(self.headers.get("Authorization"))
            if state["fail"] or self.path != "/v1/embeddings":
                self.send_response(503 if state["fail"] else 404)
                self.end_headers()
                self.wfile.write(b'{"error": "unavailable"}')
                return
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vectors = model.embed(texts)
            # Scaled: the client must normalise what an endpoint returns.
            data = [
                {"object": "embedding", "index": i, "embedding": (v * 3.0).tolist()}
                for i, v in enumerate(vectors)
            ]
            payload = json.dumps({"object": "list", "data": data, "model": body["model"]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

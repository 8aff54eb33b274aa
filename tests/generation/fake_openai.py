"""A small OpenAI-compatible chat completions server on 127.0.0.1, for tests and the citation
benchmark: it answers POST /v1/chat/completions (plain or streamed as server-sent events) with
whatever its reply function writes for the request, and can be told to fail."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], str]


class FakeOpenAIServer:
    """Use as a context manager; base_url is what OpenAIConfig.base_url takes.

    mode: "ok" answers; "error" answers HTTP 500 every time; "garbage" answers 200 with a body
    that is not JSON (streamed: "data:" lines that are not JSON); "unauthorized" answers 401.
    fail_first: this many requests get a 503 before the mode applies."""

    def __init__(self, reply: Reply, mode: str = "ok", fail_first: int = 0, chunk_chars: int = 3) -> None:
        self.reply = reply
        self.mode = mode
        self.fail_first = fail_first
        self.chunk_chars = chunk_chars
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll interval: shutdown() waits for the loop to notice, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.requests.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if len(fake.requests) <= fake.fail_first:
                    return self._send(503, {"error": {"message": "model is loading"}})
                if fake.mode == "error":
                    return self._send(500, {"error": {"message": "the model crashed"}})
                if fake.mode == "unauthorized":
                    return self._send(401, {"error": {"message": "invalid api key"}})
                text = fake.reply(body)
                if body.get("stream"):
                    return self._stream(text)
                if fake.mode == "garbage":
                    return self._raw(200, b"<html>502 Bad Gateway</html>", "text/html")
                self._send(200, {"id": "fake", "object": "chat.completion", "model": body.get("model"),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}]})

            def _stream(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                if fake.mode == "garbage":
                    self.wfile.write(b"data: this is not json\n\n")
                    return
                first = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(first)}\n\n".encode())
                for i in range(0, len(text), fake.chunk_chars):
                    chunk = {"choices": [{"index": 0, "delta": {"content": text[i:i + fake.chunk_chars]}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                    self.wfile.flush()
                last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                self._raw(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json")

            def _raw(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def passages_of(body: dict[str, Any]) -> dict[int, str]:
    """The numbered passages of a request built by generation.backends.passages.build_messages."""
    user = body["messages"][-1]["content"].rsplit("\n\nQuestion: ", 1)[0]
    out = {}
    for block in user.split("\n\n[")[1:]:
        head, _, text = block.partition("\n")
        out[int(head.split("]")[0])] = text
    return out


def question_of(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"].rsplit("\n\nQuestion: ", 1)[1]

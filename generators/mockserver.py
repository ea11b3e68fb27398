"""A small OpenAI-compatible chat server on 127.0.0.1, for tests, benchmarks and dry runs.

Plain asyncio HTTP/1.1 with keep-alive in a background thread, no dependency. It answers
``POST /v1/chat/completions`` (non-streaming) and ``GET /v1/models``; what it answers is a
``responder(request_body) -> content`` function (or ``-> {"content": ..., **choice fields}``, e.g.
``logprobs``, for a choice with more than a message), and ``fault(number, body)`` can make any request
fail the ways real endpoints fail: an HTTP status (with ``Retry-After`` for 429), a hang past the
client's timeout, a body that is not JSON, a response without choices, a dropped connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Responder = Callable[[dict[str, Any]], str | dict[str, Any]]


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "hang" | "garbage" | "no_choices" | "drop"
    status: int = 500
    retry_after: float | None = None
    seconds: float = 30.0  # how long a hang lasts


def echo_responder(body: dict[str, Any]) -> str:
    return "## Extraction\n- nothing\n\n## Reasoning\n- nothing\n\n## Final Results\nnothing"


def compliant_responder(body: dict[str, Any]) -> str:
    """A well-formed reasoning that recovers every gold item of an ehr-r1 generation prompt."""
    from generators.prompt import prompt_gold

    gold = prompt_gold(body["messages"][-1]["content"])
    return ("## Extraction\n**Laboratory Test Events [2180-05-07 05:05:00]**: AST 98 IU/L, high.\n\n"
            "## Reasoning\nRaised transaminases point to chronic liver injury.\n\n"
            "## Final Results\n" + "\n".join(gold))


RESPONDERS = {"echo": echo_responder, "compliant": compliant_responder}


def prompt_digest(body: dict[str, Any]) -> str:
    text = json.dumps(body.get("messages"), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class MockOpenAIServer:
    """``with MockOpenAIServer(responder) as server: server.base_url`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, responder: Responder = echo_responder, *, model: str | None = None, latency: float = 0.0,
                 fault: Callable[[int, dict[str, Any]], Fault | None] | None = None,
                 reasoning_content: str | None = None, port: int = 0):
        self.responder = responder
        self.model = model
        self.latency = latency
        self.fault = fault
        self.reasoning_content = reasoning_content
        self.requests = 0  # chat requests received
        self.completed = 0  # chat requests answered with a completion
        self.by_prompt: Counter[str] = Counter()  # prompt digest -> requests received
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> MockOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            pending = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="mock-openai", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._handle(method, path, body, writer):
                    break
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the server is stopping; asyncio would log a cancelled handler
            pass
        finally:
            writer.close()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: int, payload: bytes, extra: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Content-Type: {content_type}",
                f"Content-Length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    def _error(self, writer, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        self._send(writer, status, json.dumps({"error": {"message": message, "type": "mock", "code": status}}).encode(), extra)

    async def _handle(self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection."""
        if method == "GET" and path.rstrip("/").endswith("/models"):
            self._send(writer, 200, json.dumps({"object": "list", "data": [
                {"id": self.model or "mock", "object": "model", "owned_by": "mock"}]}).encode())
            await writer.drain()
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            self._error(writer, 404, f"no route {method} {path}")
            await writer.drain()
            return True
        body = json.loads(raw or b"{}")
        with self._lock:
            self.requests += 1
            number = self.requests
            self.by_prompt[prompt_digest(body)] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return await self._chat(number, body, writer)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _chat(self, number: int, body: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.model is not None and body.get("model") != self.model:
            self._error(writer, 404, "model not found")
            await writer.drain()
            return True
        fault = self.fault(number, body) if self.fault else None
        if fault is not None:
            if fault.kind == "hang":
                await asyncio.sleep(fault.seconds)
                return False
            if fault.kind == "drop":
                return False
            if fault.kind == "garbage":
                self._send(writer, 200, b"<html>upstream exploded", content_type="application/json")
                await writer.drain()
                return True
            if fault.kind == "no_choices":
                self._send(writer, 200, json.dumps({"id": "x", "object": "chat.completion", "created": 0,
                                                    "model": body.get("model"), "choices": []}).encode())
                await writer.drain()
                return True
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
            self._error(writer, fault.status, "injected failure", extra)
            await writer.drain()
            return True
        n = int(body.get("n") or 1)
        answer = self.responder(body)
        choice_fields = {} if isinstance(answer, str) else {k: v for k, v in answer.items() if k != "content"}
        content = answer if isinstance(answer, str) else answer["content"]
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.reasoning_content is not None:
            message["reasoning_content"] = self.reasoning_content
        payload = {
            "id": f"chatcmpl-{number}", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": i, "message": message, "finish_reason": "stop", **choice_fields} for i in range(n)],
            "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": n * (len(content) // 4),
                      "total_tokens": prompt_chars // 4 + n * (len(content) // 4)},
        }
        self._send(writer, 200, json.dumps(payload).encode())
        await writer.drain()
        with self._lock:
            self.completed += 1
        return True


def main(argv: list[str] | None = None) -> None:
    """``python -m generators.mockserver [--port P] [--model M] [--latency S] [--responder compliant]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m generators.mockserver", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default=None, help="answer 404 to any other model name")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--responder", choices=sorted(RESPONDERS), default="compliant")
    args = parser.parse_args(argv)
    server = MockOpenAIServer(RESPONDERS[args.responder], model=args.model, latency=args.latency, port=args.port)
    with server:
        print(server.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()

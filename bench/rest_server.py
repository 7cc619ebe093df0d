#!/usr/bin/env python3
"""A paginated REST API over the benchmark's event rows, for floe's and dlt's rest_api sources.

    rest_server.py --port PORT [--items 200000] [--page-size 100] [--ready-file F]

GET /items?page=N (1-based) -> {"data": [...], "page": N, "page_size": S, "total_pages": P,
"total_items": I}; a page past the end has an empty "data". GET /healthz -> "ok".
Every page is encoded once at start-up, so serving costs the server as little CPU as possible:
on a 2-core machine the server shares the CPUs with the client being measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_data  # noqa: E402  (same rows as the files)


def build_pages(items: int, page_size: int) -> list[bytes]:
    lines = list(gen_data.jsonl_lines(items))
    total = (items + page_size - 1) // page_size
    pages = []
    for p in range(total):
        body = ",".join(line.rstrip("\n") for line in lines[p * page_size:(p + 1) * page_size])
        meta = json.dumps({"page": p + 1, "page_size": page_size, "total_pages": total, "total_items": items})
        pages.append(f'{{"data":[{body}],{meta[1:]}'.encode())
    return pages


def make_handler(pages: list[bytes], page_size: int, items: int) -> type[BaseHTTPRequestHandler]:
    empty_tail = json.dumps({"page_size": page_size, "total_pages": len(pages), "total_items": items})[1:]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as they would in production
        # Without TCP_NODELAY, the body's last segment waits for the client's delayed ACK of the
        # headers: 40 ms per page on Linux, which would make every client look slow.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self.reply(200, b"ok", "text/plain")
                return
            if url.path.rstrip("/") != "/items":
                self.reply(404, b'{"error":"not found"}')
                return
            try:
                page = int(parse_qs(url.query).get("page", ["1"])[0])
            except ValueError:
                self.reply(400, b'{"error":"page must be an integer"}')
                return
            if 1 <= page <= len(pages):
                self.reply(200, pages[page - 1])
            else:
                self.reply(200, f'{{"data":[],"page":{page},{empty_tail}'.encode())

        def reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # 2,000 log lines per run would only cost time

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--ready-file", help="written once the server accepts connections")
    args = ap.parse_args()
    pages = build_pages(args.items, args.page_size)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(pages, args.page_size, args.items))
    server.daemon_threads = True
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(str(os.getpid()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

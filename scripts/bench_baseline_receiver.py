#!/usr/bin/env python3
"""Minimal CDR receiver for the benchmark baseline: answers every request 200.

It reads each request body (Content-Length bytes) and throws it away: no
parsing, no storing. It speaks HTTP/1.1 with keep-alive like a CMS receiver
must (reference/cms-cdr.md A.1), one thread per connection. scripts/bench-cms.sh
runs the same load against it and against cdrhub and prints the ratio.

Usage: bench_baseline_receiver.py [--host 127.0.0.1] --port PORT
"""

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DiscardingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The answer is one small write; do not let Nagle hold it back.
    disable_nagle_algorithm = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # GET answers 200 too, so the script can poll it like cdrhub's /healthz.
    do_GET = do_POST

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The load generator opens all its connections at once.
    request_queue_size = 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with Server((args.host, args.port), DiscardingHandler) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Scripted HTTP peer for tests/e2e/test_operators.sh: POST /score answers a
fixed JSON document, GET /flaky answers 503 twice and then 200. Every
request is appended to LOG as one JSON line (method, path, headers, body).
Usage: server.py PORT_FILE LOG"""
import http.server
import json
import os
import sys

port_file, log_path = sys.argv[1], sys.argv[2]
flaky_calls = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, body):
        with open(log_path, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": dict(self.headers), "body": body}) + "\n")

    def do_GET(self):
        global flaky_calls
        self.record("")
        if self.path == "/flaky":
            flaky_calls += 1
            if flaky_calls <= 2:
                return self.answer(503, {"error": "warming up"})
            return self.answer(200, {"ok": True})
        self.answer(404, {"error": "no such path"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        self.record(body)
        if self.path == "/score":
            return self.answer(200, {"result": {"score": 0.87, "labels": ["ok", "fraud"]}})
        self.answer(404, {"error": "no such path"})

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()

#!/usr/bin/env python3
"""A scripted HTTP server on loopback for deploy analyses: an HTTP health
check or a Prometheus /api/v1/query. argv: ROUTES_JSON PORT_FILE LOG_FILE.
ROUTES_JSON maps a path to a list of [status, body] answered in turn (the
last one repeats); every request's path and query go to LOG_FILE.
SPDX-License-Identifier: MIT"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

routes = json.load(open(sys.argv[1]))
served = {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        u = urlsplit(self.path)
        with open(sys.argv[3], "a") as log:
            log.write(self.path + "\n")
        answers = routes.get(u.path)
        if not answers:
            status, body = 404, "no route"
        else:
            i = served.get(u.path, 0)
            served[u.path] = i + 1
            status, body = answers[min(i, len(answers) - 1)]
        if not isinstance(body, str):
            body = json.dumps(body)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()

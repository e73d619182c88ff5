#!/usr/bin/env python3
# A registry stand-in for what Debian's docker-registry does not do: Bearer
# token auth (a 401 challenge naming a token realm, which wants basic
# credentials) and tag lists paginated with the Link header (two tags a
# page, whatever n asks). Prints its port, then serves until killed.
# SPDX-License-Identifier: MIT
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs

USER, PASSWORD = sys.argv[1], sys.argv[2]
TAGS = ["a", "b", "c", "d", "e"]
TOKEN = "tok-" + base64.b16encode(PASSWORD.encode()).decode()[:8]


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        auth = self.headers.get("Authorization", "")
        if u.path == "/token":
            want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if auth != want:
                return self.reply(401, {"details": "bad credentials"})
            ok = q.get("service") == ["stub"] and q.get("scope") == ["repository:team/model:pull"]
            return self.reply(200 if ok else 400, {"token": TOKEN} if ok else {"details": "bad scope"})
        if auth != "Bearer " + TOKEN:
            port = self.server.server_address[1]
            challenge = (f'Bearer realm="http://127.0.0.1:{port}/token",service="stub",'
                         'scope="repository:team/model:pull"')
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                              [("WWW-Authenticate", challenge)])
        if u.path == "/v2/team/model/tags/list":
            last = q.get("last", [""])[0]
            rest = [t for t in TAGS if t > last]
            page, more = rest[:2], len(rest) > 2
            headers = [("Link", f'</v2/team/model/tags/list?n=2&last={page[-1]}>; rel="next"')] if more else []
            return self.reply(200, {"name": "team/model", "tags": page}, headers)
        self.reply(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "no such repository"}]})


srv = HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()

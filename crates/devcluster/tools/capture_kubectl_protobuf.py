#!/usr/bin/env python3
"""Capture the protobuf request bodies that kubectl sends, for decoder fixtures.

A small HTTP proxy: every request goes on to an upstream API server (a running
`rollgit devcluster`), except requests whose body is `application/vnd.kubernetes.protobuf`,
which are saved to OUT/NNN-METHOD-PATH.bin and answered with a 415 Status (so nothing is
created). Point kubectl at the proxy with a kubeconfig whose server is the proxy's address.

    target/debug/rollgit devcluster --listen 127.0.0.1:7450 --kubeconfig /tmp/kc-pb &
    python3 crates/devcluster/tools/capture_kubectl_protobuf.py \
        --upstream http://127.0.0.1:7450 --listen 7451 --out /tmp/pbcap &
    sed 's/7450/7451/' /tmp/kc-pb > /tmp/kc-cap
    KUBECONFIG=/tmp/kc-cap kubectl create deployment web --image=nginx:1.27 --replicas=3 --port=80
    KUBECONFIG=/tmp/kc-pb kubectl create deployment web --image=nginx:1.27 --replicas=3 \
        --port=80 --dry-run=client -o json > web.json   # the JSON the body must decode to

Stdlib only.
"""

import argparse
import http.server
import itertools
import json
import os
import sys
import urllib.error
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", default="http://127.0.0.1:7450")
    ap.add_argument("--listen", type=int, default=7451)
    ap.add_argument("--out", default="/tmp/pbcap")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    counter = itertools.count()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if "protobuf" in self.headers.get("Content-Type", ""):
                name = "%03d-%s-%s.bin" % (next(counter), self.command, self.path.split("?")[0].replace("/", "_"))
                with open(os.path.join(args.out, name), "wb") as fh:
                    fh.write(body)
                sys.stderr.write("captured %s (%d bytes)\n" % (name, len(body)))
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": "captured by capture_kubectl_protobuf.py",
                    "reason": "UnsupportedMediaType",
                    "code": 415,
                }
                self._reply(415, {"Content-Type": "application/json"}, json.dumps(status).encode())
                return
            req = urllib.request.Request(args.upstream + self.path, data=body if n else None, method=self.command)
            for k, v in self.headers.items():
                if k.lower() not in ("host", "content-length", "connection"):
                    req.add_header(k, v)
            try:
                with urllib.request.urlopen(req) as r:
                    self._reply(r.status, r.headers, r.read())
            except urllib.error.HTTPError as e:
                self._reply(e.code, e.headers, e.read())

        def _reply(self, code, headers, data):
            self.send_response(code)
            for k, v in headers.items():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", args.listen), Handler).serve_forever()


if __name__ == "__main__":
    main()

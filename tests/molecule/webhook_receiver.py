"""A webhook receiver for the watch's tests: every POST's JSON body appended as one line to a file.

Run inside a lab client namespace (the administrator's office), it stands for Slack or Teams: the watch's
alert has arrived when its line is in the file.
"""

from __future__ import annotations

import argparse
import http.server
import json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the standard library's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            record = {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": json.loads(body)}
            with open(options.out, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(record) + "\n")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("0.0.0.0", options.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

"""A stand-in for Google's Safe Browsing Lookup API (v4 ``threatMatches:find``) for the tests.

It answers as Google documents: a POST of ``{client, threatInfo}`` with the key as the ``key`` parameter; ``{}`` where
no URL matches, else ``{"matches": [{threatType, platformType, threatEntryType, threat: {url}, cacheDuration}]}``;
a key that is not the expected one refused with 400 INVALID_ARGUMENT and Google's error object; 403, 429 or a slow
answer on demand. A URL matches a listing by Google's host-suffix and path-prefix expressions, so a listing of
``example.com/`` also matches ``http://www.example.com/`` but not ``http://example.org/``.

Used in a thread by the unit tests (``FakeSafeBrowsing``), and as a script on a lab host by the molecule baseline
scenario::

    python3 fake_safe_browsing.py --listen 10.0.0.2:8089 --key KEY --list MALWARE=site1.lab.example/
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PATH = "/v4/threatMatches:find"
ERRORS = {
    400: ("INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "Safe Browsing API has not been used in project 0 before or it is disabled."),
    429: ("RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Requests' of service 'safebrowsing.googleapis.com'."),
}


def expressions(url):
    """The host-suffix/path-prefix expressions Google looks a URL up by (without the scheme)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().strip(".")
    labels = host.split(".")
    hosts = [host]
    if not host.replace(".", "").isdigit():
        hosts += [".".join(labels[-count:]) for count in range(min(len(labels) - 1, 5), 1, -1)]
    path = parts.path or "/"
    paths = [path + ("?" + parts.query if parts.query else ""), path, "/"]
    components = path.split("/")[1:-1][:3]
    paths += ["/" + "/".join(components[:count]) + "/" for count in range(1, len(components) + 1)]
    return {name + prefix for name in dict.fromkeys(hosts) for prefix in dict.fromkeys(paths)}


class FakeSafeBrowsing:
    """The fake API: ``listings`` maps an expression (``example.com/``) to its threat type; ``answer`` is ``ok``,
    an HTTP status of ERRORS, or ``slow`` (answers after ``delay`` seconds); ``requests`` holds what was asked."""

    def __init__(self, key, listings=None, host="127.0.0.1", port=0):
        self.key, self.listings = key, dict(listings or {})
        self.answer, self.delay, self.requests = "ok", 0.0, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {"path": parts.path, "query": parse_qs(parts.query), "body": body,
                           "content_type": self.headers.get("Content-Type")}
                fake.requests.append(request)
                status, answer = fake.respond(request)
                if fake.answer == "slow":
                    time.sleep(fake.delay)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.api = "http://%s:%d%s" % (host, self.server.server_address[1], PATH)

    @staticmethod
    def error(status, message=None):
        code, text = ERRORS.get(status, ("UNKNOWN", "error"))
        return status, {"error": {"code": status, "message": message or text, "status": code}}

    def respond(self, request):
        if request["path"] != PATH:
            return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
        if request["query"].get("key") != [self.key]:
            return self.error(400)
        if isinstance(self.answer, int):
            return self.error(self.answer)
        try:
            info = json.loads(request["body"])["threatInfo"]
            entries = [entry["url"] for entry in info["threatEntries"]]
        except (ValueError, KeyError, TypeError):
            return self.error(400, "Invalid JSON payload received.")
        if not info.get("threatEntryTypes"):
            return self.error(400, "Threat entry type not set.")
        if len(entries) > 500:
            return self.error(400, "Too many threat entries: %d (500 at most)." % len(entries))
        matches = []
        for url in entries:
            for expression in sorted(expressions(url)):
                threat = self.listings.get(expression)
                if threat in info.get("threatTypes", []):
                    matches += [{"threatType": threat, "platformType": platform, "threatEntryType": "URL",
                                 "threat": {"url": url}, "cacheDuration": "300s"}
                                for platform in info.get("platformTypes", [])]
        return 200, ({"matches": matches} if matches else {})

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--key", required=True)
    parser.add_argument("--list", action="append", default=[], metavar="THREAT_TYPE=EXPRESSION")
    options = parser.parse_args()
    address, port = options.listen.rsplit(":", 1)
    listings = dict(reversed(item.split("=", 1)) for item in options.list)
    FakeSafeBrowsing(options.key, listings, address, int(port)).server.serve_forever()


if __name__ == "__main__":
    main()

"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol on a pipe.

``--remote-debugging-pipe`` makes Chromium read protocol commands from fd 3 and write answers to fd 4, each a
JSON text ended by a NUL byte: no port, no websocket library. A page is loaded as a user's browser would load it
(its own Content-Security-Policy in force); the DOM, the computed styles and a screenshot are read back after
the load event.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile


class BrowserError(RuntimeError):
    pass


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    def __init__(self, width=1280, height=900, timeout=120):
        binary = chromium_path()
        if not binary:
            raise BrowserError("chromium is not installed (apt-get install chromium)")
        self.timeout = timeout
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="hostguard-chromium-")
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()

        def plumb():  # the child's fds 3 and 4 are the protocol's (copied first: either pipe may be 3 or 4)
            reading, writing = os.dup(to_browser_read), os.dup(from_browser_write)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-extensions", "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
             "--window-size=%d,%d" % (width, height), "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=plumb, pass_fds=(3, 4))
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def _message(self):
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed its protocol pipe (exit status %s)" % self.process.poll())
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(text)

    def call(self, method, session=False, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._message()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError("%s: %s" % (method, answer["error"]))
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, event):
        while True:
            for index, message in enumerate(self.events):
                if message.get("method") == event:
                    del self.events[:index + 1]
                    return message
            self.events.append(self._message())

    def open(self, path):
        """Load a local file and wait until it and everything it references have loaded."""
        self.events.clear()
        self.call("Page.navigate", session=True, url="file://" + os.path.abspath(path))
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (the protocol's, not subject to the page's CSP)."""
        answer = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise BrowserError("%s: %s" % (expression, answer["exceptionDetails"]))
        return answer["result"].get("value")

    def dom(self):
        """The rendered DOM, serialised (what ``chromium --dump-dom`` prints)."""
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path):
        """A PNG of the whole page, not only the window."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        width = max(self.width, int(self.evaluate("document.documentElement.scrollWidth")))
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        with open(path, "wb") as stream:
            stream.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._read)
        os.close(self._write)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

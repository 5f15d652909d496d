"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe): open
pages from disk, ask the page what it loaded, and record every failed request, script error and
console error. Needs only the browser (Debian: apt-get install chromium); no server, no package.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)

# Resolves to a list of [src, ok] for every <img> of the page once each has loaded or failed.
IMAGES_LOADED = """
(async () => {
  const wait = img => img.complete ? Promise.resolve() : new Promise(done => {
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
  });
  const images = Array.from(document.images);
  await Promise.all(images.map(wait));
  return images.map(img => [img.currentSrc || img.src, img.complete && img.naturalWidth > 0]);
})()
"""


def find_chromium() -> str | None:
    """The browser: $FILTERLENS_CHROMIUM, else the first of NAMES on PATH."""
    explicit = os.environ.get("FILTERLENS_CHROMIUM")
    if explicit:
        return explicit
    return next(filter(None, map(shutil.which, NAMES)), None)


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one tab; use as a context manager."""

    def __init__(self, executable: str, profile: Path, size=(1400, 900), timeout: float = 60):
        self.timeout = timeout
        commands_read, self._commands = os.pipe()  # we write, the browser reads fd 3
        self._replies, replies_write = os.pipe()  # the browser writes fd 4, we read

        def give_pipes():  # in the child, before exec: the pipe ends become fds 3 and 4
            a = fcntl.fcntl(commands_read, fcntl.F_DUPFD_CLOEXEC, 10)
            b = fcntl.fcntl(replies_write, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        command = [
            executable, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
            "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, preexec_fn=give_pipes, close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session = None

    def __enter__(self):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        return self

    def __exit__(self, *exc):
        try:
            self.call("Browser.close", session=False)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)

    # -- protocol -------------------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def _read(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise BrowserError(f"no answer from the browser within {self.timeout} s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                err = self.process.stderr.read().decode(errors="replace")[-2000:]
                raise BrowserError(f"the browser closed its pipe:\n{err}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method: str) -> dict:
        """The next event `method` (one already received counts)."""
        for i, event in enumerate(self.events):
            if event["method"] == method:
                return self.events.pop(i)
        while True:
            event = self._read()
            if event.get("method") == method:
                return event
            if "method" in event:
                self.events.append(event)

    # -- pages ----------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Load `url` and wait for its load event (images included)."""
        self.events.clear()
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script error: {json.dumps(result['exceptionDetails'])[:2000]}")
        return result["result"].get("value")

    def images(self) -> list[tuple[str, bool]]:
        return [tuple(pair) for pair in self.evaluate(IMAGES_LOADED)]

    def problems(self) -> list[str]:
        """Failed requests, uncaught script errors and console errors seen since the last open()."""
        self.evaluate("0")  # let pending events arrive
        urls = {
            e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        }
        found = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Network.loadingFailed" and not p.get("canceled"):
                found.append(f"failed to load {urls.get(p['requestId'], '?')}: {p.get('errorText')}")
            elif e["method"] == "Runtime.exceptionThrown":
                found.append(f"script error: {p['exceptionDetails'].get('text')} "
                             f"{json.dumps(p['exceptionDetails'].get('exception', {}))[:300]}")  # fmt: skip
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                found.append(f"console: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
                found.append(f"console.error: {json.dumps(p.get('args'))[:300]}")
        return found

    def loaded_urls(self) -> list[str]:
        """Every URL the page requested since the last open() that finished loading."""
        self.evaluate("0")  # let pending events arrive
        urls = {
            e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        }
        finished = (e for e in self.events if e["method"] == "Network.loadingFinished")
        done = [e["params"]["requestId"] for e in finished]
        return [urls[r] for r in done if r in urls]

    def move_mouse(self, x: float, y: float) -> None:
        """Move the pointer to (x, y) CSS pixels of the viewport (mouse and pointer events)."""
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def press_key(self, key: str, code: str | None = None, key_code: int = 0) -> None:
        """Press and release one key, as the page's keydown handlers see it (`key` as in
        KeyboardEvent.key; `key_code` the legacy code that default actions need)."""
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {
                "type": kind, "key": key, "code": code or key, "windowsVirtualKeyCode": key_code,
            })  # fmt: skip

    def screenshot(self, target: Path, full_page: bool = False) -> None:
        params = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": metrics["width"],
                              "height": metrics["height"], "scale": 1}  # fmt: skip
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        Path(target).write_bytes(base64.b64decode(data))

"""A headless Chromium driven over the DevTools protocol, standard library only.

Chromium (Debian's `chromium` package) is started with `--remote-debugging-pipe`: it
reads protocol messages from fd 3 and writes to fd 4, each a JSON object ended by a NUL
byte. A reader thread collects replies by id and keeps every event, so a test can ask
for the page's console errors and uncaught exceptions. No network is used: the browser
runs with background networking, component updates, sync and QUIC disabled, and a fresh
profile directory.

    with Browser(tmp_path / "profile") as b:
        b.open(page.as_uri())
        state = b.eval("window.explorer.state()")
        b.screenshot(tmp_path / "page.png")
        assert not b.errors()
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    """Path of the Chromium executable ($GEOMTOY_CHROMIUM, else the first on PATH), or None."""
    exe = os.environ.get("GEOMTOY_CHROMIUM")
    if exe:
        return exe if shutil.which(exe) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


TRAMPOLINE = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); "
    "os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"
)


def _above_9(fd: int) -> int:
    """A copy of fd numbered 10 or more (the original is closed)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page (tab) attached in flat session mode."""

    def __init__(
        self, profile: str | Path, width: int = 1440, height: int = 1000, timeout: float = 30.0
    ):
        exe = find_chromium()
        if exe is None:
            raise BrowserError("chromium not found (apt-get install chromium)")
        self.timeout = timeout
        profile = Path(profile)
        profile.mkdir(parents=True, exist_ok=True)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # A small Python trampoline puts the child's pipe ends on fds 3 and 4 (where
        # Chromium looks) and execs Chromium: no preexec_fn (no fork hazards beside JAX's
        # threads) and no shell (dash cannot name fds above 9).
        to_browser_r, from_browser_w = (_above_9(fd) for fd in (to_browser_r, from_browser_w))
        args = [
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(to_browser_r), str(from_browser_w), exe, *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._ids = itertools.count(1)
        self._replies: dict[int, dict] = {}
        self._events: list[dict] = []
        self._cond = threading.Condition()
        self._closed = False
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.send(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", session=True)
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=True,
            )
        except Exception:
            self.close()
            raise

    # ------------------------------------------------------------ protocol
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                self._cond.notify_all()

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)

    def send(
        self,
        method: str,
        params: dict | None = None,
        *,
        session: bool = False,
        timeout: float | None = None,
    ) -> dict:
        """Send one command and wait for its reply; BrowserError on a protocol error."""
        msg_id = next(self._ids)
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while msg_id not in self._replies:
                if self._closed:
                    raise BrowserError(f"{method}: browser exited ({self.stderr_tail()})")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"{method}: no reply in {timeout or self.timeout} s")
                self._cond.wait(left)
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_event(self, method: str, since: int = 0, timeout: float | None = None) -> dict:
        """The first event named `method` at or after position `since` of the event log."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while True:
                for ev in self._events[since:]:
                    if ev.get("method") == method:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise BrowserError(f"no {method} event in {timeout or self.timeout} s")
                self._cond.wait(left)

    def stderr_tail(self) -> str:
        return b"".join(self._stderr[-5:]).decode(errors="replace").strip()

    # ------------------------------------------------------------ page
    def open(self, url: str) -> None:
        """Navigate and wait for the load event (scripts of the page have run)."""
        for target in ("about:blank", url):  # via a blank page: a new #fragment loads afresh too
            since = len(self._events)
            reply = self.send("Page.navigate", {"url": target}, session=True)
            if reply.get("errorText"):
                raise BrowserError(f"navigate {target}: {reply['errorText']}")
            self.wait_event("Page.loadEventFired", since)

    def eval(self, expression: str):
        """Evaluate JavaScript in the page and return its value (JSON-able)."""
        reply = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in reply:
            d = reply["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise BrowserError(f"page exception: {text}")
        return reply["result"].get("value")

    def mouse(self, kind: str, x: float, y: float, buttons: int = 0) -> None:
        """A real mouse event at page coordinates: kind is mousePressed|mouseReleased|mouseMoved."""
        params = {
            "type": kind,
            "x": x,
            "y": y,
            "button": "left" if kind != "mouseMoved" or buttons else "none",
            "buttons": buttons,
            "clickCount": 1 if kind != "mouseMoved" else 0,
        }
        self.send("Input.dispatchMouseEvent", params, session=True)

    def key(self, key: str, code: int) -> None:
        """Press and release one key, e.g. key("ArrowRight", 39)."""
        for kind in ("rawKeyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code},
                session=True,
            )

    def click(self, x: float, y: float) -> None:
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, buttons=1)
        self.mouse("mouseReleased", x, y)

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole page by default)."""
        params: dict = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
            params |= {
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            }
        data = self.send("Page.captureScreenshot", params, session=True)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        with self._cond:
            events = list(self._events)
        for ev in events:
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(
                    "exception: " + (d.get("exception", {}).get("description") or d.get("text", ""))
                )
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(
                    "console.error: "
                    + " ".join(
                        str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
                    )
                )
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", ""))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                msg = {"id": next(self._ids), "method": "Browser.close", "params": {}}
                os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Headless Chromium driven over the DevTools protocol on a pipe (no extra Python package).

Used by the page tests (console errors, network requests, rendered pictures) and by
``scripts/screenshots.py`` (the pictures in ``docs/``). Debian's ``chromium`` package is
installed when missing and ``apt-get`` is there (``ensure_chromium``); where it cannot be, the
tests that need it are skipped with the reason.

The protocol runs over file descriptors 3 (commands to Chromium) and 4 (its answers and events),
one JSON message per NUL-terminated frame (``--remote-debugging-pipe``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Chromium", "PageReport", "ensure_chromium"]

# The flags the machine notes recommend for a headless, offline, quiet browser.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def ensure_chromium() -> tuple[str | None, str]:
    """(path to a Chromium, how it was found) — installed with apt-get when missing."""
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found, f"found {found}"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, "chromium is not installed and apt-get (as root) is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return None, f"`{' '.join(command)}` failed: {done.stderr.strip()[-300:]}"
    found = shutil.which("chromium")
    return found, "installed with apt-get" if found else "apt-get installed no chromium"


@dataclass
class PageReport:
    """What a page did when it was opened."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)  # anything but data:/file:/about:
    images: list[dict[str, Any]] = field(default_factory=list)  # naturalWidth/Height, complete
    title: str = ""
    screenshot: bytes | None = None


class Chromium:
    """One headless browser; :meth:`open` loads a page and reports on it."""

    def __init__(self, executable: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="crisk-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def pipes() -> None:  # in the child: the protocol's descriptors 3 and 4
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [
                executable,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            preexec_fn=pipes,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                frame, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(frame))

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        """Send one command and wait for its answer (events meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))
            self._events.append(answer)

    def _wait_for(self, method: str, session: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if any(
                e.get("method") == method and e.get("sessionId") == session for e in self._events
            ):
                return
            self._events.append(self._messages.get(timeout=max(0.1, deadline - time.monotonic())))

    def open(self, path: Path, width: int = 1200, screenshot: bool = False) -> PageReport:
        """Load ``path``; collect console errors, network requests, pictures (and a PNG)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self._events.clear()
        url = path.resolve().as_uri()
        self.send("Page.navigate", {"url": url}, session=session)
        self._wait_for("Page.loadEventFired", session)
        report = PageReport(url)
        report.images = self._evaluate(
            session,
            "[...document.images].map(i => ({alt: i.alt, complete: i.complete, "
            "width: i.naturalWidth, height: i.naturalHeight}))",
        )
        report.title = self._evaluate(session, "document.title")
        if screenshot:
            height = self._evaluate(session, "document.documentElement.scrollHeight")
            shot = self.send(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                },
                session=session,
            )
            report.screenshot = base64.b64decode(shot["data"])
        self._collect(report, session)
        self.send("Target.closeTarget", {"targetId": target})
        return report

    def _evaluate(self, session: str, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        return result["result"].get("value")

    def _collect(self, report: PageReport, session: str) -> None:
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                report.console_errors.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                report.console_errors.append(str(params["exceptionDetails"].get("text")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                report.console_errors.append(str(params["entry"].get("text")))
            elif method == "Network.requestWillBeSent":
                requested = params["request"]["url"]
                if not requested.startswith(("data:", "file:", "about:")):
                    report.network_requests.append(requested)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._to_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

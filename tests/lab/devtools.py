"""Headless Chromium driven over its DevTools protocol (--remote-debugging-pipe), for what a
page cannot report by itself: a screenshot once it shows its result, a button click, a
download. No driver library: JSON messages ended by NUL, Chromium reading fd 3 and writing
fd 4 (the pipe survives `ip netns exec`, a TCP debugging port inside the lan would not be
reachable from the lab)."""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import subprocess
import time
from contextlib import suppress
from types import TracebackType
from typing import Any, Protocol


class _Lan(Protocol):
    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]: ...


#: Injected before the page's own scripts: CSP violations the page causes, for a test to read.
_CSP_WATCH = ("window.__cspViolations = [];"
              "document.addEventListener('securitypolicyviolation', function (e) {"
              "window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI); });")


class DevToolsChromium:
    """One headless Chromium in the lan with one page, at width x height CSS pixels."""

    def __init__(self, lan: _Lan, binary: str, flags: tuple[str, ...], profile: str,
                 width: int = 1280, height: int = 900, timeout: float = 30.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self.profile = profile
        to_chrome_r, self._write_fd = os.pipe()
        self._read_fd, from_chrome_w = os.pipe()
        # bash, not dash: dash takes single-digit descriptors only in redirections.
        argv = ["/bin/bash", "-c", f'exec 3<&{to_chrome_r} 4>&{from_chrome_w} "$@"', "sh",
                binary, *flags, f"--user-data-dir={profile}/user-data", "--hide-scrollbars",
                f"--window-size={width},{height}", "--remote-debugging-pipe", "about:blank"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": profile,
               "LANG": "C.UTF-8"}
        self.process = lan.popen(argv, env=env, pass_fds=(to_chrome_r, from_chrome_w),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session = ""

    def __enter__(self) -> DevToolsChromium:
        targets = self.call("Target.getTargets")["targetInfos"]
        target = next(t["targetId"] for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self._metrics(self.height)
        self.call("Page.enable", self.session)
        self.call("Page.addScriptToEvaluateOnNewDocument", self.session, source=_CSP_WATCH)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for fd in (self._write_fd, self._read_fd):
            with suppress(OSError):
                os.close(fd)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        wanted = self._next_id
        message: dict[str, Any] = {"id": wanted, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == wanted:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._read_fd], [], [], self.timeout)
            if not ready:
                raise RuntimeError(f"Chromium sent nothing for {self.timeout} s")
            chunk = os.read(self._read_fd, 65536)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe (it exited)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        found: dict[str, Any] = json.loads(message)
        return found

    def _metrics(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", self.session, width=self.width,
                  height=height, deviceScaleFactor=1, mobile=self.width < 600)

    def resize(self, width: int, height: int) -> None:
        """Another viewport for the page that is open (a phone's width after a laptop's)."""
        self.width, self.height = width, height
        self._metrics(height)

    def open(self, url: str) -> None:
        self.call("Page.navigate", self.session, url=url)

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", self.session, expression=expression,
                          returnByValue=True)
        return found.get("result", {}).get("value")

    def wait_for_title(self, title: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate("document.title") == title:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the page's title did not become {title!r} within {timeout} s "
                           f"(it is {self.evaluate('document.title')!r})")

    def csp_violations(self) -> list[str]:
        found = self.evaluate("window.__cspViolations")
        return [str(v) for v in found] if isinstance(found, list) else ["(watch missing)"]

    def allow_downloads(self, directory: str) -> None:
        self.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=directory)

    def screenshot(self) -> bytes:
        """A PNG of the whole page (the viewport grown to the content's height)."""
        time.sleep(0.3)  # the last paint after the title changed
        metrics = self.call("Page.getLayoutMetrics", self.session)
        self._metrics(max(self.height, int(metrics["cssContentSize"]["height"])))
        shot = self.call("Page.captureScreenshot", self.session, format="png")
        self._metrics(self.height)
        return base64.b64decode(shot["data"])

"""A headless Chromium driven through chromedriver's W3C HTTP API with plain urllib.

No Python dependency beyond the standard library: the Debian packages `chromium` and
`chromium-driver` provide the browser and the driver.
"""

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dagster_project.processes import free_port, stop_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1600,1000",
]


def ensure_chromium() -> str | None:
    """Install chromium + chromium-driver if missing; return the reason it is unavailable, or None."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None
    if not shutil.which("apt-get"):
        return "chromium is not installed and apt-get is not available to install it"
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "chromium", "chromium-driver"], check=True,
                       capture_output=True, timeout=1200, env={"DEBIAN_FRONTEND": "noninteractive",
                                                              "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        return f"could not install chromium + chromium-driver with apt-get: {error} {detail.decode(errors='replace')[-500:]}"
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return "apt-get install of chromium + chromium-driver did not provide /usr/bin/chromium and /usr/bin/chromedriver"
    return None


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.3)


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    """The `data` of a query to the Dagster webserver at `url`; the test fails on any GraphQL error."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert "errors" not in answer, answer
    return answer["data"]


class Browser:
    """One chromedriver process and one headless Chromium session."""

    def __init__(self) -> None:
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.driver = subprocess.Popen(
            [str(CHROMEDRIVER), f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        try:
            wait_for_http(f"{self.base}/status", 20, self.driver)
            capabilities = {"browserName": "chrome", "goog:chromeOptions": {
                "binary": str(CHROMIUM), "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"]}}
            session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
            self.session = session["sessionId"]
            self._session("POST", "/window/rect", {"width": 1600, "height": 1000})
        except BaseException:
            self.close(quit_session=False)
            raise

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"webdriver {method} {path}: {error.read().decode(errors='replace')[:500]}") from None

    def _session(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def execute(self, script: str, *args):
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def text(self) -> str:
        return self.execute("return document.body ? document.body.innerText : '';")

    def html(self) -> str:
        return self.execute("return document.documentElement.outerHTML;")

    def wait_until(self, condition: Callable[["Browser"], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; page text: {self.text()[:1500]!r}")
            time.sleep(0.3)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._session("GET", "/screenshot")))

    def close(self, quit_session: bool = True) -> None:
        if quit_session and getattr(self, "session", None):
            try:
                self._call("DELETE", f"/session/{self.session}")
            except Exception:
                pass
        stop_process(self.driver)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def serving(command: list[str], log_path: Path, ready_url: str, timeout: float, env: dict[str, str],
            cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """A server started in its own session, once `ready_url` answers; the test fails with the tail of its log
    if it never does. Stopped, with its children, afterwards."""
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        try:
            wait_for_http(ready_url, timeout, server)
        except (TimeoutError, RuntimeError) as error:
            pytest.fail(f"{error}\n{log_path.read_text(errors='replace')[-3000:]}")
        yield server
    finally:
        stop_process(server, group=True)

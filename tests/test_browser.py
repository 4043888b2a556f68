"""The rollout viewer as a user sees it: notebook 10 served by Voila on 127.0.0.1, opened in headless Chromium
(Debian's, driven by Playwright). Changes the parse filter and the sort order through the page and checks that the
rollout shown and its figure change, with no error logged. Screenshots are kept in tests/artifacts/."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/lib/chromium/chromium" if os.path.exists("/usr/lib/chromium/chromium") else None


def _require():
    missing = []
    try:
        import playwright  # noqa: F401
        import voila  # noqa: F401
    except ImportError as e:
        missing.append(str(e))
    if _chromium() is None:
        missing.append("chromium (apt-get install chromium)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install the browser test's tools: {missing}")
        pytest.skip(f"browser test needs {missing}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_viewer_in_a_real_browser(rollout_file, tmp_path):
    _require()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    serve = tmp_path / "serve"
    serve.mkdir()
    shutil.copy(ROOT / "notebooks" / "10_rollout_viewer.ipynb", serve / "viewer.ipynb")
    port, token = _free_port(), "samr1test"
    env = {**os.environ, "SAMR1_ROLLOUTS": str(rollout_file), "JUPYTER_CONFIG_DIR": str(tmp_path / "jcfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jrt"), "MPLBACKEND": "Agg"}
    voila = Path(sys.executable).parent / "voila"
    # jupytext's JupyterLab extension (the notebooks' .py pairing) fails to load in Voila's page ("The getter for the
    # shared module is not a function"): the viewer needs only the widgets, so Voila leaves it out
    server = subprocess.Popen([str(voila), "viewer.ipynb", "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
                               f"--token={token}", '--VoilaConfiguration.extension_denylist=["jupyterlab-jupytext"]'],
                              cwd=serve, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    errors: list[str] = []
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1300, "height": 1100})
            # offline machine: resources from other hosts (CDNs) cannot load; those are logged, not errors of the page
            external: list[str] = []
            page.on("requestfailed", lambda r: (external if not r.url.startswith("http://127.0.0.1") else errors)
                    .append(f"request failed: {r.url}"))
            page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}")
                    if r.status >= 400 and r.url.startswith("http://127.0.0.1") else None)
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
                    if m.type == "error" and "Failed to load resource" not in m.text else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(f"http://127.0.0.1:{port}/?token={token}", timeout=120_000)
            page.wait_for_selector(".samr1-row", timeout=120_000)
            page.wait_for_selector(".samr1-image", timeout=30_000)

            def shown():
                return page.get_attribute(".samr1-row", "data-row"), page.get_attribute(".samr1-image", "src")

            def wait_change(before):
                for _ in range(100):
                    now = shown()
                    if now[0] != before[0] and now[1] != before[1]:
                        return now
                    time.sleep(0.1)
                raise AssertionError(f"the rollout shown did not change (still {now[0]})")

            first = shown()
            assert first[0] == "1"  # the best reward (6.0) first
            page.screenshot(path=str(ARTIFACTS / "viewer_1_initial.png"), full_page=True)
            page.select_option(".samr1-failure select", "failed")
            second = wait_change(first)
            assert second[0] == "2"  # first failed rollout (reward 0, ties in log order)
            assert "bad_json" in page.inner_text(".samr1-info")
            page.screenshot(path=str(ARTIFACTS / "viewer_2_failed_only.png"), full_page=True)
            page.select_option(".samr1-failure select", "any")
            third = wait_change(second)
            assert third[0] == "1" and "5 of 5" in page.inner_text(".samr1-count")
            page.select_option(".samr1-sort select", "advantage ↑")
            fourth = wait_change(third)
            assert fourth[0] == "2"  # the lowest advantage (-1.0)
            page.screenshot(path=str(ARTIFACTS / "viewer_3_sorted_by_advantage.png"), full_page=True)
            browser.close()
            (ARTIFACTS / "browser_external_requests.log").write_text("\n".join(external))
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # SIGTERM: the server shuts its kernels down
        try:
            out, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            out, _ = server.communicate()
        (ARTIFACTS / "voila.log").write_bytes(out or b"")
    assert not errors, errors

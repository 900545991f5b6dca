"""Drive MLflow's web UI in headless Chromium over the DevTools protocol (the `websockets` package, a vLLM
dependency): what a reviewer does by hand, as the tests and the README's screenshots need it.

    python tests/mlflow_ui.py http://127.0.0.1:5000 1 docs/mlflow-children.png

opens experiment 1's runs page, expands the parent run, shows the review columns and saves a screenshot."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

EXPANDER = 'button[data-component-id$="runnamecellrenderer.tsx_46"]'  # the +/- before a parent run's name
REVIEW_COLUMNS = ("perplexity_mean", "cosine_similarity_mean", "edit_distance_mean", "diversity", "temperature")


async def _review_runs_page(url: str, columns: tuple[str, ...], screenshot: str | None, port: int) -> dict:
    import websockets

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    browser = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "--window-size=2300,700",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2))
                page = next(target for target in targets if target["type"] == "page")
                break
            except Exception:  # the browser is still starting
                time.sleep(0.2)
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=2**26) as socket:
            counter = 0

            async def call(method: str, **params):
                nonlocal counter
                counter += 1
                await socket.send(json.dumps({"id": counter, "method": method, "params": params}))
                while True:
                    message = json.loads(await socket.recv())
                    if message.get("id") == counter:
                        return message.get("result", {})

            async def js(expression: str):
                result = await call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
                return result.get("result", {}).get("value")

            async def wait_for(expression: str, seconds: float = 45) -> bool:
                for _ in range(int(seconds * 5)):
                    if await js(expression):
                        return True
                    await asyncio.sleep(0.2)
                return False

            await call("Page.enable")
            await call("Page.navigate", url=url)
            if not await wait_for(f"!!document.querySelector('{EXPANDER}')"):
                return {"expanded": False, "text": await js("document.body.innerText"), "headers": ""}
            await js(f"document.querySelector('{EXPANDER}').click()")
            await asyncio.sleep(1)
            await js(
                "(() => { const b = [...document.querySelectorAll('button')]"
                ".find(b => b.getAttribute('aria-label') === 'Close'); if (b) b.click(); })()"
            )  # the assistant panel
            await js("document.querySelector('[data-testid=column-selection-dropdown]').click()")
            await wait_for("!!document.querySelector('[role=dialog], [role=menu]')")
            for name in columns:
                await js(f"""(() => {{
                    const menu = document.querySelector('[role=dialog], [role=menu]');
                    const item = [...menu.querySelectorAll('*')]
                        .find(e => e.children.length === 0 && e.textContent.trim() === '{name}');
                    if (item) (item.closest('[role=menuitemcheckbox], [role=option], label, li') || item).click();
                }})()""")
                await asyncio.sleep(0.3)
            await call("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape", windowsVirtualKeyCode=27)
            await asyncio.sleep(2)
            result = {
                "expanded": True,
                "text": await js("document.body.innerText"),
                "headers": await js(
                    "[...document.querySelectorAll('[role=columnheader]')].map(h => h.innerText).join('|')"
                ),
            }
            if screenshot:
                shot = await call("Page.captureScreenshot", format="png")
                with open(screenshot, "wb") as handle:
                    handle.write(base64.b64decode(shot["data"]))
            return result
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


def review_runs_page(
    uri: str,
    experiment_id: str,
    columns: tuple[str, ...] = REVIEW_COLUMNS,
    screenshot: str | None = None,
    port: int = 9333,
) -> dict:
    """The experiment's runs page after expanding the parent run and choosing ``columns`` (metrics and params):
    whether the parent could be expanded, the page's text and the column headers; optionally a screenshot."""
    url = f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs"
    return asyncio.run(_review_runs_page(url, tuple(columns), screenshot, port))


if __name__ == "__main__":
    uri, experiment_id, out = sys.argv[1:4]
    extra = tuple(sys.argv[4:])
    found = review_runs_page(uri, experiment_id, REVIEW_COLUMNS[:-1] + extra + ("temperature",), out)
    print(found["headers"])

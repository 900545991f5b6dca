"""Fill a survey form in headless Chromium as a participant would, over the DevTools protocol (the `websockets`
package, a vLLM dependency): click on each slider's track, click a radio button for each background question,
press the save button and catch the CSV the page downloads.

    python tests/survey_browser.py survey/forms/P1.html downloads/

prints the slider values the page shows and the path of the saved CSV."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


async def _fill(forms: list[tuple[Path, Path]], seed: int, submit_first: bool) -> list[dict]:
    import websockets

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    browser = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.is_file() and len(port_file.read_text().splitlines()) >= 2:
                break
            time.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        version = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=5))
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5))
        page = next(target for target in targets if target["type"] == "page")
        counter = 0

        async def call(socket, method: str, **params):
            nonlocal counter
            counter += 1
            await socket.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await socket.recv())
                if message.get("id") == counter:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message.get("result", {})

        async with (
            websockets.connect(version["webSocketDebuggerUrl"], max_size=2**26) as browser_socket,
            websockets.connect(page["webSocketDebuggerUrl"], max_size=2**26) as socket,
        ):

            async def js(expression: str):
                result = await call(
                    socket, "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
                )
                return result.get("result", {}).get("value")

            async def click(x: float, y: float) -> None:
                for kind in ("mousePressed", "mouseReleased"):
                    await call(socket, "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

            async def place(selector: str, fraction: float = 0.5) -> None:
                """Scroll the element into view and click at ``fraction`` of its width, mid-height."""
                box = await js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
                    e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
                    return [r.left, r.top, r.width, r.height]; }})()""")
                await click(box[0] + fraction * box[2], box[1] + box[3] / 2)

            await call(socket, "Page.enable")
            rng = random.Random(seed)
            results = []
            for index, (form, downloads) in enumerate(forms):
                await call(
                    browser_socket,
                    "Browser.setDownloadBehavior",
                    behavior="allow",
                    downloadPath=str(downloads.resolve()),
                    eventsEnabled=True,
                )
                await call(socket, "Page.navigate", url=form.resolve().as_uri())
                for _ in range(100):
                    if await js("document.readyState === 'complete' && !!document.getElementById('submit')"):
                        break
                    await asyncio.sleep(0.1)
                problems_before = ""
                if submit_first and index == 0:  # nothing filled in: the page must refuse and save nothing
                    await place("#submit")
                    problems_before = await js("document.getElementById('problems').textContent")
                sliders = await js("[...document.querySelectorAll('input[type=range]')].map(s => s.name)")
                for name in sliders:
                    await place(f"input[name='{name}']", rng.uniform(0.02, 0.98))
                questions = await js(
                    "[...document.querySelectorAll('fieldset[data-question]')].map(f => f.dataset.question)"
                )
                for question in questions:
                    await place(f"input[name='{question}'][value='{rng.randint(1, 5)}']")
                shown = await js(
                    "Object.fromEntries([...document.querySelectorAll('input[type=range]')]"
                    ".map(s => [s.name, s.closest('.scale').querySelector('.value').textContent]))"
                )
                background = await js(
                    f"Object.fromEntries({json.dumps(questions)}.map(q => "
                    "[q, document.querySelector(`input[name=${q}]:checked`).value]))"
                )
                await place("#submit")
                saved = None
                for _ in range(200):
                    found = list(downloads.glob("*.csv"))
                    if found and not list(downloads.glob("*.crdownload")):
                        saved = found[0]
                        break
                    await asyncio.sleep(0.1)
                results.append(
                    {
                        "problems_before": problems_before,
                        "problems_after": await js("document.getElementById('problems').textContent"),
                        "shown": shown,
                        "background": background,
                        "saved": saved,
                        "text_on_page": await js("document.getElementById('answers-text').value"),
                    }
                )
            return results
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


def fill_forms(forms: list[tuple[Path, Path]], seed: int = 0, submit_first: bool = False) -> list[dict]:
    """Fill each form in one headless Chromium, one after the other, as participants would, each saving into its
    own folder.

    Args:
        forms: (the participant's HTML form, the folder the browser saves its answers into) per form.
        seed: which slider positions and radio buttons are clicked.
        submit_first: press the first form's save button once before filling anything in.

    Returns:
        Per form: problems_before/problems_after (the page's complaint text), shown (slider name
        "code-criterion" -> the value the page shows), background (question -> chosen value), saved (the
        downloaded CSV's path or None) and text_on_page (the CSV text shown in the page).
    """
    for _, downloads in forms:
        Path(downloads).mkdir(parents=True, exist_ok=True)
    return asyncio.run(_fill([(Path(form), Path(downloads)) for form, downloads in forms], seed, submit_first))


if __name__ == "__main__":
    result = fill_forms([(Path(sys.argv[1]), Path(sys.argv[2]))])[0]
    print(json.dumps({**result, "saved": str(result["saved"])}, indent=2))

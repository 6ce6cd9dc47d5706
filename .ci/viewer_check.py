"""Open Neuroglancer links of the book in headless Chromium against the offline server.

The links are the ones the page ``chapters/look/01_neuroglancer.md`` builds: its code cells
(all but the exercise stubs) run in this process against a server of the sample, and the
variables it leaves (``NEURON_URL``, ``SHORT_URL``, ``TYPES_URL``) are opened with the
viewer the datastack info names (``viewer_site``: the neuroglancer wheel's client, served by
the same server). Chromium renders WebGL in software (SwiftShader). For every link the check
waits until the view stops changing, then shoots the page and judges the viewer's canvas:

- it must not be blank: at least ``MIN_LIT`` of the canvas pixels differ from its
  background colour;
- the segmentation must be rendered: the same state with no segment selected is shot too,
  and at least ``MIN_SEGMENT`` of the pixels of the 3D panel must differ between the two
  shots (the meshes of the selected cells; the annotation layers are in both). Only the 3D
  panel is judged (the largest of the viewer's rendered-data panels; the links use the
  ``3d`` layout), not the parts of the canvas under the layer panel and the top bar, which
  no mesh can reach. Every link is compared with its own state: a short link (a state of
  the state service) is read from the service, as the viewer reads it, to build that state
  with no segment selected;
- segment properties must reach the viewer: for each segmentation layer with a
  ``neuroglancer_segment_properties`` source (nglui's ``add_segment_properties``), the
  viewer's property map must hold every id of that file, with the file's label for them.

It prints what it measured and, for diagnosis, every viewer request answered >= 400 and the
console errors. Exit status 1 when a check fails.

usage: python .ci/viewer_check.py --data sample-data OUT_DIR [--page PAGE.md]
       [--url LINK ...] [--browser-flag=--disable-webgl]  (to see the check fail)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
from PIL import Image

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 800)
MIN_LIT = 0.01
MIN_SEGMENT = 0.001
"""Share of the 3D panel the selected cells must change; an unchanged view changes none. A
single cell drew 0.16-0.38 % of it (2026-12-03) while the links' ``scale_3d`` of 300,000 was
taken for nm: Neuroglancer counts it in 4 nm voxels, so the panel was 1.2 mm high and the
cell a few pixels wide; at the page's 400 um panel, centred on the soma, the single-cell
links change 0.94-0.95 % of it (2026-12-04, load average ~30)."""
SETTLE_S = 4.0
TIMEOUT_S = 90.0
LINKS = ("NEURON_URL", "SHORT_URL", "TYPES_URL")
VERBOSE = bool(os.environ.get("VIEWER_CHECK_VERBOSE"))
"""Print every request of the viewer (to find out what it needs from the server)."""
STATUS_BAR_PX = 60
"""Rows at the bottom left out when judging whether the view has settled (the viewer's
status messages there count down every second)."""


class DevTools:
    """A minimal Chrome DevTools Protocol client over tornado's websocket."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    @classmethod
    async def connect(cls, url: str) -> DevTools:
        from tornado.websocket import websocket_connect

        return cls(await websocket_connect(url, max_message_size=256 * 1024 * 1024))

    async def call(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self.ws.write_message(json.dumps(message))
        while True:
            raw = await asyncio.wait_for(self.ws.read_message(), 60)
            if raw is None:
                raise RuntimeError("chromium closed the DevTools connection")
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    async def drain(self, seconds: float) -> None:
        """Collect events for ``seconds``; the viewer's web workers (which fetch the meshes
        and chunks) are followed as they start."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.ws.read_message(), left)
            except TimeoutError:
                return
            if raw is None:
                return
            event = json.loads(raw)
            self.events.append(event)
            if event.get("method") == "Target.attachedToTarget":
                worker = event["params"]["sessionId"]
                for method in ("Network.enable", "Runtime.enable",
                               "Runtime.runIfWaitingForDebugger"):
                    with contextlib.suppress(RuntimeError):
                        await self.call(method, worker)


def launch(browser: str, profile: str, extra: tuple[str, ...] = ()
           ) -> tuple[subprocess.Popen, str]:
    """Start headless Chromium with software WebGL; returns it and its DevTools URL."""
    process = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--remote-allow-origins=*",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", *extra, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = Path(profile) / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.is_file() and len(port_file.read_text().split()) >= 2:
            port, path = port_file.read_text().split()[:2]
            return process, f"ws://127.0.0.1:{port}{path}"
        if process.poll() is not None:
            sys.exit(f"viewer-check: {browser} exited with {process.returncode} at start")
        time.sleep(0.2)
    process.kill()
    sys.exit(f"viewer-check: {browser} did not open its DevTools port within 60 s")


VIEWER_TOKEN = {"middle_auth_token": "viewer-check"}
"""What the viewer page sends to the offline services (a cookie; any token is accepted)."""


def _get_json(url: str) -> dict:
    import requests

    response = requests.get(url, cookies=VIEWER_TOKEN, timeout=30)
    response.raise_for_status()
    return response.json()


def link_state(url: str) -> dict:
    """The state a link opens: the ``#!{json}`` of the link itself, or, for a short link
    (``#!middleauth+http://.../nglstate/api/v1/<id>``), the state the service keeps."""
    fragment = unquote(url.partition("#!")[2])
    if fragment.startswith("{"):
        return json.loads(fragment)
    return _get_json(fragment.removeprefix("middleauth+"))


def without_segments(url: str, state: dict | None = None) -> str:
    """A ``#!{json}`` link to the same state with no segment selected in its segmentation
    layers (``state``: the link's state when already read)."""
    state = json.loads(json.dumps(link_state(url) if state is None else state))
    for layer in state.get("layers", []):
        if layer.get("type") == "segmentation":
            layer["segments"] = []
    return (url.partition("#!")[0] + "#!"
            + quote(json.dumps(state, separators=(",", ":")), safe=""))


def segment_property_files(state: dict) -> tuple[dict[str, dict], list[str]]:
    """``{segmentation layer name: inline properties}`` of the layers that have a
    ``neuroglancer_segment_properties`` source (read from where the viewer reads it), and
    the ``precomputed://`` sources of segmentation layers whose ``info`` cannot be read."""
    found, unreadable = {}, []
    for layer in state.get("layers", []):
        if layer.get("type") != "segmentation":
            continue
        sources = layer.get("source", [])
        for source in sources if isinstance(sources, list) else [sources]:
            source_url = source.get("url", "") if isinstance(source, dict) else source
            if not source_url.startswith("precomputed://"):
                continue
            base = source_url.removeprefix("precomputed://").removeprefix("middleauth+")
            try:
                info = _get_json(base.rstrip("/") + "/info")
            except Exception:  # noqa: BLE001 - any failure: the viewer cannot read it either
                unreadable.append(source_url)
                continue
            if info.get("@type") == "neuroglancer_segment_properties":
                found[layer["name"]] = info.get("inline", {})
    return found, unreadable


PROPERTY_PROBE = """(() => {
  const m = viewer.layerManager.getLayerByName(%s);
  const map = m && m.layer ? m.layer.displayState.segmentationGroupState.value
      .segmentPropertyMap.value : undefined;
  if (!map) return null;
  const inline = map.segmentPropertyMap.inlineProperties;
  return {n: inline ? inline.ids.length : 0,
          label: map.getSegmentLabel(BigInt(%s)) || null};
})()"""
"""What the viewer holds for a layer's segment properties: how many ids, and the label it
shows for one segment (Neuroglancer's ``PreprocessedSegmentPropertyMap``)."""


class Shooter:
    def __init__(self, tools: DevTools, session: str, out: Path) -> None:
        self.tools = tools
        self.session = session
        self.out = out

    async def evaluate(self, expression: str):
        result = await self.tools.call("Runtime.evaluate", self.session,
                                       expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def shot(self) -> np.ndarray:
        data = await self.tools.call("Page.captureScreenshot", self.session, format="png")
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data["data"])))
                          .convert("RGB"), dtype=np.int16)

    async def open(self, url: str, name: str
                   ) -> tuple[np.ndarray, tuple[int, ...] | None, tuple[int, ...] | None]:
        """Navigate, wait until two shots ``SETTLE_S`` apart agree; the last shot, the
        canvas rectangle and the 3D panel's (x0, y0, x1, y1) in pixels."""
        # from a blank page, so that a link differing only in its fragment reloads the viewer
        await self.tools.call("Page.navigate", self.session, url="about:blank")
        await self.tools.drain(0.5)
        self.tools.events.clear()
        await self.tools.call("Page.navigate", self.session, url=url)
        start = time.monotonic()
        await self.tools.drain(SETTLE_S)
        previous = await self.shot()
        while time.monotonic() - start < TIMEOUT_S:
            await self.tools.drain(SETTLE_S)
            current = await self.shot()
            if np.abs(current - previous)[:-STATUS_BAR_PX].max() < 8:
                break
            previous = current
        rect = await self.evaluate(
            "(() => { const c = document.querySelector('canvas'); if (!c) return null;"
            " const r = c.getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom].map(Math.round); })()")
        panel = await self.evaluate(
            "(() => { let best = null, area = 0;"
            " for (const p of document.querySelectorAll('.neuroglancer-rendered-data-panel')) {"
            "  const r = p.getBoundingClientRect(); const a = r.width * r.height;"
            "  if (a > area) { area = a; best = [r.left, r.top, r.right, r.bottom]; } }"
            " return best && best.map(Math.round); })()")
        Image.fromarray(current.astype(np.uint8)).save(self.out / f"{name}.png")
        print(f"viewer-check: {name}: settled after {time.monotonic() - start:.0f} s",
              flush=True)
        return current, tuple(rect) if rect else None, tuple(panel) if panel else None

    def report_requests(self, name: str) -> None:
        failed = {}
        for event in self.tools.events:
            if event.get("method") == "Network.responseReceived":
                response = event["params"]["response"]
                if response["status"] >= 400:
                    failed[response["url"][:160]] = response["status"]
            elif event.get("method") == "Runtime.consoleAPICalled":
                params = event["params"]
                if params["type"] == "error":
                    text = " ".join(str(a.get("value", a.get("description", "")))
                                    for a in params["args"])
                    print(f"viewer-check: {name}: console error: {text[:300]}")
            elif event.get("method") == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                print(f"viewer-check: {name}: exception: {str(text)[:600]}")
            elif event.get("method") == "Network.requestWillBeSent" and VERBOSE:
                request = event["params"]["request"]
                print(f"viewer-check: {name}: request {request['method']} "
                      f"{request['url'][:200]}")
        for url, status in list(failed.items())[:20]:
            print(f"viewer-check: {name}: {status} {url}")


def canvas_pixels(image: np.ndarray, rect: tuple[int, ...] | None) -> np.ndarray:
    if rect is None:
        return image[:0]
    x0, y0, x1, y1 = (max(0, v) for v in rect)
    return image[y0:min(y1, image.shape[0] - STATUS_BAR_PX), x0:x1]


def lit_share(canvas: np.ndarray) -> float:
    """Share of the canvas pixels away from its most common colour (the background)."""
    if canvas.size == 0:
        return 0.0
    flat = canvas.reshape(-1, 3)
    colours, counts = np.unique(flat // 16, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((np.abs(flat // 16 - background).max(axis=1) > 1).mean())


async def check_links(browser: str, links: dict[str, str], out: Path,
                      extra: tuple[str, ...] = ()) -> list[str]:
    failures = []
    with tempfile.TemporaryDirectory() as profile:
        process, ws_url = launch(browser, profile, extra)
        try:
            tools = await DevTools.connect(ws_url)
            target = await tools.call("Target.createTarget", url="about:blank")
            attached = await tools.call("Target.attachToTarget", targetId=target["targetId"],
                                        flatten=True)
            session = attached["sessionId"]
            for domain in ("Page", "Network", "Runtime"):
                await tools.call(f"{domain}.enable", session)
            await tools.call("Target.setAutoAttach", session, autoAttach=True,
                             waitForDebuggerOnStart=True, flatten=True)
            await tools.call("Emulation.setDeviceMetricsOverride", session, width=WINDOW[0],
                             height=WINDOW[1], deviceScaleFactor=1, mobile=False)
            shooter = Shooter(tools, session, out)
            for name, url in links.items():
                state = link_state(url)
                image, rect, panel = await shooter.open(url, name)
                shooter.report_requests(name)
                canvas = canvas_pixels(image, rect)
                view = canvas_pixels(image, panel)
                lit = lit_share(canvas)
                message = (f"viewer-check: {name}: canvas {rect}, {lit:.1%} of it lit")
                if canvas.size == 0 or lit < MIN_LIT:
                    failures.append(f"{message}: the viewer's canvas is blank")
                    print(failures[-1], flush=True)
                    continue
                property_files, unreadable = segment_property_files(state)
                if unreadable:
                    failures.append(f"{message}: sources without a readable info: "
                                    f"{unreadable}")
                    print(failures[-1], flush=True)
                    continue
                for layer, inline in property_files.items():
                    ids = inline.get("ids", [])
                    labels = next((p["values"] for p in inline.get("properties", [])
                                   if p.get("type") == "label"), None)
                    held = await shooter.evaluate(PROPERTY_PROBE % (
                        json.dumps(layer), json.dumps(ids[0] if ids else "0")))
                    message += (f", layer {layer!r}: viewer holds "
                                f"{held['n'] if held else 0} of {len(ids)} segment "
                                f"properties (label {held and held['label']!r})")
                    if (not held or held["n"] != len(ids) or not ids or labels is None
                            or not str(held["label"] or "").startswith(labels[0])):
                        failures.append(f"{message}: the segment properties did not load")
                        print(failures[-1], flush=True)
                        break
                else:
                    bare, _, _ = await shooter.open(without_segments(url, state),
                                                    f"{name}.nosegments")
                    baseline = canvas_pixels(bare, panel)
                    changed = (float((np.abs(view - baseline).max(axis=2) > 40).mean())
                               if baseline.shape == view.shape and view.size else 0.0)
                    message += (f", the selected segments change {changed:.2%} of its 3D "
                                f"panel {panel}")
                    if changed < MIN_SEGMENT:
                        failures.append(f"{message}: no segmentation rendered")
                        print(failures[-1], flush=True)
                        continue
                    print(message, flush=True)
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            if process.poll() is None:
                process.kill()
    return failures


def run_page(page: Path) -> dict:
    """Run the page's code cells (not the exercise stubs) here; returns its namespace."""
    import jupytext
    import matplotlib

    matplotlib.use("Agg")  # this process only: the figures are not looked at here
    notebook = jupytext.read(page)
    namespace: dict = {"__name__": "__page__"}
    from IPython.display import display

    namespace["display"] = display
    cwd = os.getcwd()
    os.chdir(page.parent)
    try:
        for cell in notebook.cells:
            tags = cell.metadata.get("tags", [])
            if cell.cell_type != "code" or "raises-exception" in tags:
                continue
            source = "\n".join(line for line in cell.source.splitlines()
                               if not line.lstrip().startswith(("%", "!")))
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, f"{page.name} cell", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path("sample-data"))
    parser.add_argument("--page", type=Path,
                        default=Path("chapters/look/01_neuroglancer.md"))
    parser.add_argument("--url", action="append", default=[],
                        help="open this link instead of the page's (repeatable)")
    parser.add_argument("--browser-flag", action="append", default=[],
                        help="an extra Chromium flag, e.g. --browser-flag=--disable-webgl "
                             "to see the check fail (repeatable)")
    args = parser.parse_args()
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        sys.exit(f"viewer-check: none of {BROWSERS} on PATH (make screenshot installs it)")
    args.out.mkdir(parents=True, exist_ok=True)
    from offline_cave.client.runner import offline_server

    with offline_server(args.data.resolve(), generate=False, set_environ=True) as (url, _home):
        if args.url:
            links = {f"link{i}": u for i, u in enumerate(args.url)}
        else:
            t0 = time.monotonic()
            namespace = run_page(args.page.resolve())
            print(f"viewer-check: ran the code of {args.page} in "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
            links = {name.lower(): namespace[name] for name in LINKS if name in namespace}
            missing = [name for name in LINKS if name not in namespace]
            if missing:
                sys.exit(f"viewer-check: {args.page} defines no {missing}")
        for name, link in links.items():
            if not link.startswith(url):
                sys.exit(f"viewer-check: {name} does not open the served viewer: {link[:120]}")
        failures = asyncio.run(check_links(browser, links, args.out,
                                           tuple(args.browser_flag)))
    print(f"viewer-check: {len(links)} links opened, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""static/playground/live.js in real Chromium (Playwright, sync API).

The harness page tests/browser/harness/frames.html reproduces the pattern page's DOM contract with the real
vendored htmx, ws extension and Mermaid; only the WebSocket is faked, so `fakeServer.push(html)` delivers a
server message through the real ws extension path (OOB swaps, then `htmx:wsAfterMessage`). The repository
root is served by Python's http.server on 127.0.0.1 in a thread.

Run: python -m pytest tests/browser/test_live_js.py -q   (add `-p no:django` where no Django settings exist)
"""

from __future__ import annotations

import functools
import html
import json
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[2]
HARNESS = "/tests/browser/harness/frames.html"

pytestmark = pytest.mark.browser

STATE_5 = """stateDiagram-v2
  [*] --> CLOSED
  CLOSED --> OPEN: failures
  OPEN --> HALF_OPEN: timeout
  HALF_OPEN --> CLOSED: success
  HALF_OPEN --> OPEN: failure"""

FLOW = """flowchart TD
  A[Client] e1@--> B[Breaker]
  B e2@--> C[(Service)]"""

# Shaped like patterns/core/charts.py output: embedded default colours that the site stylesheet overrides.
RATES_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 40" class="line-chart">'
    "<style>.line-chart .series-0{stroke:#1f9d55}.line-chart .series-1{stroke:#e5484d}</style>"
    '<polyline class="line series-0" points="0,40 50,20 100,30"/></svg>'
)


# ------------------------------------------------------------------ fixtures


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(REPO)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def context(browser, base_url):
    context = browser.new_context(base_url=base_url)
    yield context
    context.close()


@pytest.fixture
def page(context) -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_harness(page)
    yield page
    assert errors == [], f"uncaught page errors: {errors}"


def open_harness(page: Page) -> None:
    page.goto(HARNESS)
    page.wait_for_function("window.playground && window.fakeServer.connected() && document.body.dataset.frame === '0'")
    idle(page)


# ------------------------------------------------------------------ helpers


def idle(page: Page) -> None:
    page.evaluate("() => window.playground.idle()")


def make_frame(
    n: int,
    *,
    state=STATE_5,
    state_nodes=("CLOSED",),
    state_edges=(),
    flow=FLOW,
    flow_nodes=("A",),
    flow_edges=("e1",),
    flow_details=None,
    rates=RATES_SVG,
    t=None,
    link=None,
    caption="Breaker is closed",
) -> dict:
    return {
        "run": "r-test",
        "frame": n,
        "t": float(n) / 10 if t is None else t,
        "horizon": 30.0,
        "max_time": 600,
        "playing": True,
        "speed": 1.0,
        "last_seq": n * 3,
        "link": link or f"/patterns/circuit-breaker/?seed=1&failure_rate=0.2&frame={n}",
        "diagrams": {
            "state": {
                "mermaid": state,
                "nodes": list(state_nodes),
                "edges": list(state_edges),
                "svg": "",
                "caption": caption,
            },
            "flow": {
                "mermaid": flow,
                "nodes": list(flow_nodes),
                "edges": list(flow_edges),
                "svg": "",
                "caption": "",
                "details": flow_details or {},
            },
            "rates": {"mermaid": "", "nodes": [], "edges": [], "svg": rates, "caption": "Requests per second"},
        },
    }


def frame_html(frame: dict, status: str = "Running") -> str:
    """One websocket message, shaped like the server's: OOB fragments, #frame-data always included."""
    data = html.escape(json.dumps(frame), quote=True)
    return (
        f'<div id="run-status" hx-swap-oob="true">{html.escape(status)}</div>'
        f'<ol id="event-log" hx-swap-oob="true"><li>frame {frame["frame"]}</li></ol>'
        f'<div id="frame-data" hidden data-frame="{data}" hx-swap-oob="true"></div>'
    )


def push(page: Page, frame: dict, *, wait_idle: bool = True) -> None:
    """Deliver a frame through the (fake) websocket and wait until live.js applied it."""
    page.evaluate("html => window.fakeServer.push(html)", frame_html(frame))
    page.wait_for_function("n => document.body.dataset.frame === String(n)", arg=frame["frame"])
    if wait_idle:
        idle(page)


def active(page: Page, diagram: str) -> list[str]:
    """The elements carrying pg-active in one diagram, sorted: `node:<element id without the render id prefix and
    Mermaid's trailing counter>` (e.g. `node:state-OPEN`, `node:flowchart-A`, `node:S1`) or
    `edge:<tag>:<data-id>` (the edge path and its label group)."""
    return page.evaluate(
        """name => {
            const svg = document.querySelector(`[data-diagram="${name}"] .diagram-view svg`);
            return [...document.querySelectorAll(`[data-diagram="${name}"] .pg-active`)].map(el => {
                if (el.hasAttribute('data-edge') || el.closest('.edgeLabel'))
                    return `edge:${el.tagName}:${el.getAttribute('data-id')}`;
                if (!el.id.startsWith(svg.id + '-')) return `unexpected:${el.id}`;
                const id = el.id.slice(svg.id.length + 1);
                return 'node:' + (/^(flowchart|state)-/.test(id) ? id.replace(/-\\d+$/, '') : id);
            }).sort();
        }""",
        diagram,
    )


def renders(page: Page) -> int:
    return page.evaluate("window.playground.stats.renders")


def svg_id(page: Page, diagram: str) -> str | None:
    return page.evaluate(f"document.querySelector('[data-diagram=\"{diagram}\"] .diagram-view svg')?.id ?? null")


def stray_mermaid_elements(page: Page) -> list[str]:
    """Anything Mermaid may have left in the document: elements outside the harness's own top-level nodes, any
    element named after a render id (`pg-mmd-N…`, `dpg-mmd-N`, `ipg-mmd-N`) outside the diagram views, and
    diagram views holding more than their one SVG."""
    return page.evaluate(
        """() => {
            const out = [...document.body.children].filter(el => !['HEADER', 'MAIN'].includes(el.tagName))
                .map(el => `body>${el.tagName}#${el.id}`);
            for (const el of document.querySelectorAll('[id^="pg-mmd-"], [id^="dpg-mmd-"], [id^="ipg-mmd-"]')) {
                if (!el.closest('.diagram-view')) out.push(`${el.tagName}#${el.id}`);
            }
            for (const view of document.querySelectorAll('.diagram-view')) {
                if (view.children.length > 1) out.push(`${view.children.length} children in a diagram view`);
            }
            return out;
        }"""
    )


# ------------------------------------------------------------------ tests


def test_initial_frame_renders_mermaid_and_server_svg(page: Page):
    assert page.locator('[data-diagram="state"] .diagram-view svg[id^="pg-mmd-"]').count() == 1
    assert page.locator('[data-diagram="flow"] .diagram-view svg[id^="pg-mmd-"]').count() == 1
    assert page.locator('[data-diagram="rates"] .diagram-view svg.line-chart polyline.series-0').count() == 1
    assert page.locator('[data-diagram="state"] .diagram-caption').text_content() == "Breaker is closed"
    assert active(page, "state") == ["node:state-CLOSED"]
    assert active(page, "flow") == sorted(["node:flowchart-A", "edge:path:e1", "edge:g:e1"])
    assert renders(page) == 2
    assert stray_mermaid_elements(page) == []


def test_ws_message_is_applied_once_via_wsAfterMessage(page: Page):
    page.evaluate("for (const k in window.fakeServer.events) window.fakeServer.events[k] = 0")
    push(page, make_frame(7))
    events = page.evaluate("window.fakeServer.events")
    # Why live.js hooks htmx:wsAfterMessage: it fires once per message, after all OOB swaps. htmx:oobAfterSwap
    # fires for every OOB element on every element settled so far (#live plus each fragment swapped in so far:
    # 2+3+4 = 9 times for 3 fragments), with detail.target the old, detached element.
    assert events["wsAfterMessage"] == 1
    assert events["oobAfterSwap"] == 9
    body = page.evaluate("({...document.body.dataset})")
    assert body["frame"] == "7" and body["seq"] == "21" and body["run"] == "r-test"
    assert page.locator("#run-status").text_content() == "Running"
    assert page.locator("#event-log li").all_text_contents() == ["frame 7"]
    # The frame is applied once, and the element that carries ws-connect is never replaced.
    assert page.evaluate("window.playground.stats.frames") == 2
    assert page.evaluate("document.querySelector('#live').hasAttribute('ws-connect')")


def test_apply_frame_html_hook(page: Page):
    page.evaluate("html => window.playground.applyFrameHtml(html)", frame_html(make_frame(9, state_nodes=["OPEN"])))
    assert page.evaluate("document.body.dataset.frame") == "9"
    assert page.locator("#event-log li").all_text_contents() == ["frame 9"]
    assert page.locator("#frame-data").get_attribute("hx-swap-oob") is None
    assert active(page, "state") == ["node:state-OPEN"]


def test_ws_send_controls_reach_the_socket(page: Page):
    page.click("#pause")
    page.wait_for_function("window.fakeServer.sent.length > 0")
    sent = json.loads(page.evaluate("window.fakeServer.sent.at(-1)"))
    assert sent["action"] == "pause"


def test_state_highlight_moves_without_rerender(page: Page):
    before = renders(page)
    state_id = svg_id(page, "state")
    push(page, make_frame(1, state_nodes=["OPEN"]))
    assert active(page, "state") == ["node:state-OPEN"]
    push(page, make_frame(2, state_nodes=["HALF_OPEN", "CLOSED"], state_edges=["edge1"]))
    assert active(page, "state") == sorted(
        ["node:state-HALF_OPEN", "node:state-CLOSED", "edge:path:edge1", "edge:g:edge1"]
    )
    push(page, make_frame(3, state_nodes=[]))
    assert active(page, "state") == []
    assert renders(page) == before
    assert svg_id(page, "state") == state_id


def test_flowchart_node_and_edge_highlight_moves(page: Page):
    push(page, make_frame(1, flow_nodes=["B"], flow_edges=["e2"]))
    assert active(page, "flow") == sorted(["node:flowchart-B", "edge:path:e2", "edge:g:e2"])
    push(page, make_frame(2, flow_nodes=["C", "A"], flow_edges=[]))
    assert active(page, "flow") == sorted(["node:flowchart-C", "node:flowchart-A"])
    # Unknown ids are ignored.
    push(page, make_frame(3, flow_nodes=["nope"], flow_edges=["e9"]))
    assert active(page, "flow") == []


def test_cluster_and_composite_state_lookup(page: Page):
    flow = "flowchart LR\n  n-1[x] e-1@--> n_2\n  subgraph S1 [Servers]\n    s1\n  end\n  n_2 --> S1"
    state = "stateDiagram-v2\n  [*] --> Idle\n  state Leader {\n    [*] --> ab\n  }\n  Idle --> Leader"
    push(
        page,
        make_frame(
            1, flow=flow, flow_nodes=["n-1", "S1"], flow_edges=["e-1"], state=state, state_nodes=["Leader", "ab"]
        ),
    )
    assert active(page, "flow") == sorted(["node:flowchart-n-1", "node:S1", "edge:path:e-1", "edge:g:e-1"])
    assert active(page, "state") == ["node:state-Leader", "node:state-ab"]
    assert page.locator('[data-diagram="state"] .statediagram-cluster.pg-active').count() == 1


def test_node_details_open_on_click_and_keyboard_and_follow_frames(page: Page):
    box = page.locator('[data-diagram="flow"] .diagram-details')
    push(page, make_frame(1, flow_details={"B": "Breaker B\nterm 3\nvotedFor s2"}))
    assert box.is_hidden()
    node = page.locator('[data-diagram="flow"] g.node.pg-details')
    assert node.count() == 1 and node.get_attribute("aria-label") == "Details of B"
    node.click()
    assert box.is_visible()
    assert box.locator(".details-title").text_content() == "Breaker B"
    assert box.locator(".details-text").text_content() == "term 3\nvotedFor s2"
    # The open box follows the live frames, and closes when its node no longer offers details.
    push(page, make_frame(2, flow_details={"B": "Breaker B\nterm 4"}))
    assert box.locator(".details-text").text_content() == "term 4"
    box.get_by_role("button", name="Close details").click()
    assert box.is_hidden()
    # Keyboard: the node is focusable and Enter opens it.
    node.focus()
    page.keyboard.press("Enter")
    assert box.is_visible()
    push(page, make_frame(3, flow_details={}))
    assert box.is_hidden()
    assert page.locator('[data-diagram="flow"] [tabindex="0"]').count() == 0


def test_same_source_does_not_rerender(page: Page):
    before = renders(page)
    ids = (svg_id(page, "state"), svg_id(page, "flow"))
    for n in range(1, 6):
        push(page, make_frame(n, caption=f"caption {n}"))
    assert renders(page) == before
    assert (svg_id(page, "state"), svg_id(page, "flow")) == ids
    assert page.locator('[data-diagram="state"] .diagram-caption').text_content() == "caption 5"


def test_changed_source_rerenders_and_leaves_nothing_behind(page: Page):
    before = renders(page)
    old = svg_id(page, "state")
    push(page, make_frame(1, state=STATE_5 + "\n  OPEN --> FORCED_OPEN: operator", state_nodes=["FORCED_OPEN"]))
    assert renders(page) == before + 1
    new = svg_id(page, "state")
    assert new != old
    assert active(page, "state") == ["node:state-FORCED_OPEN"]
    assert page.locator(".diagram-view svg").count() == 3
    assert page.locator(f"#{old}").count() == 0
    assert stray_mermaid_elements(page) == []


def test_rapid_sources_are_coalesced_to_the_latest(page: Page):
    before = renders(page)
    page.evaluate("""() => {
        window.shownStateSvgs = [];
        new MutationObserver(() => {
            const svg = document.querySelector('[data-diagram="state"] .diagram-view svg');
            if (svg) window.shownStateSvgs.push(svg.querySelector('g.node[id*="-state-S"]')?.id ?? svg.id);
        }).observe(document.querySelector('[data-diagram="state"] .diagram-view'), {childList: true});
    }""")
    # Seven messages in one burst (one task), as when frames arrive while a render is running.
    burst = [
        frame_html(make_frame(n, state=STATE_5 + f"\n  CLOSED --> S{n}", state_nodes=[f"S{n}"])) for n in range(1, 8)
    ]
    page.evaluate("messages => messages.forEach(m => window.fakeServer.push(m))", burst)
    page.wait_for_function("document.body.dataset.frame === '7'")
    idle(page)
    # At most the render started by the first message (unless it still had to rest), then only the latest.
    assert 1 <= renders(page) - before <= 2
    shown = page.evaluate("window.shownStateSvgs")
    assert len(shown) == 1 and "-state-S7-" in shown[0], shown  # S1 finished but was superseded: never shown
    assert active(page, "state") == ["node:state-S7"]
    assert stray_mermaid_elements(page) == []
    # Sequential messages while renders run still converge on the latest source.
    for n in range(8, 14):
        page.evaluate(
            "html => window.fakeServer.push(html)",
            frame_html(make_frame(n, state=STATE_5 + f"\n  CLOSED --> S{n}", state_nodes=[f"S{n}"])),
        )
    page.wait_for_function("document.body.dataset.frame === '13'")
    idle(page)
    assert active(page, "state") == ["node:state-S13"]
    assert stray_mermaid_elements(page) == []


def test_a_source_changing_every_frame_keeps_mermaid_to_a_sixth_of_the_main_thread(page: Page):
    """Frames every 25 ms, each with a new source: each render is followed by a rest five times its length."""
    result = page.evaluate(
        """async ([source, frames]) => {
            const stats = window.playground.stats, renders = stats.renders, ms = stats.renderMs;
            const started = performance.now();
            for (const f of frames) {
                f.diagrams.state.mermaid = source + `\n  CLOSED --> S${f.frame}`;
                window.playground.applyFrame(f);
                await new Promise(resolve => setTimeout(resolve, 25));
            }
            await window.playground.idle();
            return {renders: stats.renders - renders, busy: stats.renderMs - ms, wall: performance.now() - started};
        }""",
        [STATE_5, [make_frame(n) for n in range(1, 81)]],
    )
    # The last render has no rest after it: allow for it, and for timer slack.
    assert 2 <= result["renders"] < 80 and result["busy"] / result["wall"] < 0.25, result
    assert page.locator('[data-diagram="state"] g.node[id*="-state-S80-"]').count() == 1


def test_invalid_source_keeps_previous_svg_and_shows_error(page: Page):
    old = svg_id(page, "state")
    push(page, make_frame(1, state="stateDiagram-v2\n  CLOSED --> --> OPEN {{", state_nodes=["OPEN"]))
    assert page.evaluate("window.playground.stats.renderErrors") == 1
    assert svg_id(page, "state") == old
    caption = page.locator('[data-diagram="state"] .diagram-caption')
    assert caption.text_content().startswith("Diagram error:")
    assert len(caption.text_content()) < 150
    assert stray_mermaid_elements(page) == []
    # The old SVG still gets live state; the broken source is not retried on every frame.
    assert active(page, "state") == ["node:state-OPEN"]
    errors_before = page.evaluate("window.playground.stats.renders")
    push(page, make_frame(2, state="stateDiagram-v2\n  CLOSED --> --> OPEN {{", state_nodes=["CLOSED"]))
    assert renders(page) == errors_before
    # A good source again: rendered, error cleared.
    push(page, make_frame(3, state=STATE_5 + "\n  CLOSED --> X", state_nodes=["X"]))
    assert svg_id(page, "state") != old
    assert caption.text_content() == "Breaker is closed"
    assert stray_mermaid_elements(page) == []


def test_server_svg_chart_swaps(page: Page):
    new_svg = RATES_SVG.replace("100,30", "100,5").replace(
        "</svg>", '<polyline class="line series-1" points="0,10 100,10"/></svg>'
    )
    push(page, make_frame(1, rates=new_svg))
    lines = page.locator('[data-diagram="rates"] polyline')
    points = lines.evaluate_all("els => els.map(e => e.getAttribute('points'))")
    assert points == ["0,40 50,20 100,5", "0,10 100,10"]
    colours = page.locator('[data-diagram="rates"] polyline').evaluate_all(
        "els => els.map(e => getComputedStyle(e).stroke)"
    )
    assert colours == ["rgb(11, 99, 181)", "rgb(194, 65, 12)"]  # site.css light palette, not the embedded one
    # Same chart again: the element is not replaced.
    page.evaluate("document.querySelector('[data-diagram=rates] polyline').dataset.marker = 'kept'")
    push(page, make_frame(2, rates=new_svg))
    assert page.locator('[data-diagram="rates"] polyline[data-marker="kept"]').count() == 1


def test_timeline_follows_frames_but_not_while_user_holds_it(page: Page):
    push(page, make_frame(123, t=12.345))
    slider = page.locator("#timeline")
    assert slider.evaluate("el => [el.max, el.value]") == ["30", "12.3"]  # value snaps to step 0.1
    assert page.locator("#timeline-now").text_content() == "12.3 s / 30.0 s"
    slider.focus()
    page.keyboard.press("ArrowLeft")
    held = slider.evaluate("el => el.value")
    push(page, make_frame(124, t=20.0))
    assert slider.evaluate("el => el.value") == held
    assert page.locator("#timeline-now").text_content() == "20.0 s / 30.0 s"
    # The seek was sent through the websocket on change.
    seeks = [json.loads(m) for m in page.evaluate("window.fakeServer.sent")]
    assert any(m.get("action") == "seek" and m.get("t") == held for m in seeks), seeks


def test_theme_toggle_is_keyboard_operable_and_rerenders_mermaid(page: Page):
    toggle = page.locator("#theme-toggle")
    start = page.evaluate("document.documentElement.dataset.theme || ''")
    assert start == ""  # harness sets none; prefers-color-scheme is light in headless Chromium
    assert toggle.text_content() == "Dark theme"
    before = renders(page)
    toggle.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert toggle.get_attribute("aria-pressed") == "true"
    assert toggle.text_content() == "Light theme"
    assert page.evaluate("localStorage.getItem('pg-theme')") == "dark"
    idle(page)
    assert renders(page) == before + 2
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(17, 20, 24)"
    page.keyboard.press("Space")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    idle(page)
    assert renders(page) == before + 4
    assert stray_mermaid_elements(page) == []
    # Remembered across a reload.
    page.keyboard.press("Enter")
    open_harness(page)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.locator("#theme-toggle").text_content() == "Light theme"


def test_focus_is_not_trapped(page: Page):
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    for wanted in ["theme-toggle", "play", "pause", "timeline", "share-button", "share-output"]:
        assert wanted in seen, seen
    assert seen.index("theme-toggle") < seen.index("timeline") < seen.index("share-button")


def test_share_copies_absolute_link(page: Page, context, base_url):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    push(page, make_frame(5, link="/patterns/circuit-breaker/?seed=1&failure_rate=0.2&do=30:outage:on=true"))
    page.locator("#share-button").focus()
    page.keyboard.press("Enter")
    expected = base_url + "/patterns/circuit-breaker/?seed=1&failure_rate=0.2&do=30:outage:on=true"
    page.wait_for_function("document.querySelector('#share-status').textContent !== ''")
    assert page.locator("#share-output").input_value() == expected
    status = page.locator("#share-status").text_content()
    assert status in ("Link copied", "Copy the link above")
    if status == "Link copied":
        assert page.evaluate("navigator.clipboard.readText()") == expected


def test_render_time_and_frame_cost_are_reported(page: Page, capsys):
    # One Mermaid render of a 5-state stateDiagram, through live.js (off-screen render + swap).
    timings = []
    for n in range(1, 6):
        push(page, make_frame(n, state=STATE_5 + f"\n  %% variant {n}"))
        timings.append(page.evaluate("window.playground.stats.lastRenderMs"))
    # Playing at 1x: ~10 frames/s with moving highlights and unchanged sources, measured as main-thread task
    # time (CDP Performance.TaskDuration) over wall time.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    task0 = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}["TaskDuration"]
    wall0 = time.perf_counter()
    nodes = ["CLOSED", "OPEN", "HALF_OPEN"]
    for n in range(10, 40):
        page.evaluate(
            "html => window.fakeServer.push(html)",
            frame_html(
                make_frame(
                    n,
                    state=STATE_5 + "\n  %% variant 5",
                    state_nodes=[nodes[n % 3]],
                    flow_nodes=[["A", "B", "C"][n % 3]],
                    flow_edges=[["e1", "e2"][n % 2]],
                )
            ),
        )
        time.sleep(0.1)
    wall = time.perf_counter() - wall0
    task = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}["TaskDuration"] - task0
    # Click to visible effect: the theme toggle (a click handled entirely by live.js + CSS).
    latency = page.evaluate("""() => new Promise(resolve => {
        const t0 = performance.now();
        document.querySelector('#share-button').click();
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
    })""")
    with capsys.disabled():
        print(
            f"\n[live.js] mermaid render of a 5-state stateDiagram: {', '.join(f'{t:.1f}' for t in timings)} ms "
            f"(median {sorted(timings)[2]:.1f} ms)"
        )
        print(
            f"[live.js] 30 frames at 10/s: main-thread busy {100 * task / wall:.1f}% of {wall:.2f} s wall "
            f"(apply total {page.evaluate('window.playground.stats.applyMs'):.1f} ms)"
        )
        print(f"[live.js] share click to next painted frame: {latency:.1f} ms")
    assert page.evaluate("document.body.dataset.frame") == "39"
    assert task / wall < 0.25


def log_frame(n: int, last_seq: int, rows, *, after: int | None = None, keep: int = 2) -> str:
    """A message with a log, whole (``after`` None) or only the events after ``after``, and the frame data;
    ``rows`` are (seq, routine) pairs, newest first."""
    items = "".join(
        f'<li data-seq="{seq}" data-t="{seq / 10}" data-type="{"tick" if routine else "note"}" data-nodes=""'
        f"{' class=routine' if routine else ''}>#{seq}</li>"
        for seq, routine in rows
    )
    swap = (
        'hx-swap-oob="true"' if after is None else f'hx-swap-oob="afterbegin" data-after="{after}" data-keep="{keep}"'
    )
    data = html.escape(json.dumps({**make_frame(n), "last_seq": last_seq}), quote=True)
    frame_data = f'<div id="frame-data" hidden data-frame="{data}" hx-swap-oob="true"></div>'
    return f'<ol id="event-log" {swap}>{items}</ol>{frame_data}'


def test_new_events_go_on_top_once_and_each_kind_keeps_its_bound(page: Page):
    def push_log(n, *args, **kwargs):
        page.evaluate("html => window.fakeServer.push(html)", log_frame(n, *args, **kwargs))
        page.wait_for_function("n => document.body.dataset.frame === String(n)", arg=n)
        return page.evaluate("[...document.querySelectorAll('#event-log li')].map(li => li.dataset.seq)")

    assert push_log(1, 5, [(5, True), (4, False), (3, True)]) == ["5", "4", "3"]
    # Overlapping what the page lists (a joiner's whole log is newer than the group's previous frame): none twice;
    # two routine events kept (8, 7), the oldest dropped.
    assert push_log(2, 8, [(8, True), (7, True), (5, True)], after=3) == ["8", "7", "4"]
    assert page.locator("#log-gap").text_content().startswith("1 events went by")  # 6: neither listed nor shown
    assert push_log(3, 20, [(20, False), (19, True)], after=8) == ["20", "19", "8", "4"]
    assert page.locator("#log-gap").text_content().startswith("11 events went by")  # and 9 to 18
    assert push_log(4, 21, [(21, False), (20, False)]) == ["21", "20"]  # whole again (a rewind, a joiner)


def test_a_server_svg_that_changed_is_patched_in_place_unless_its_size_changed(page: Page):
    svg = "document.querySelector('[data-diagram=rates] svg')"
    push(page, make_frame(3))
    before = page.evaluate_handle(svg)
    moved = RATES_SVG.replace("50,20", "50,10")
    push(page, make_frame(4, rates=moved))
    assert page.evaluate(f"el => el === {svg}", before)  # the same element: only what differs was touched
    assert page.locator("[data-diagram=rates] polyline").get_attribute("points") == "0,40 50,10 100,30"
    push(page, make_frame(5, rates=moved.replace("0 0 100 40", "0 0 100 50")))
    assert not page.evaluate("el => el.isConnected", before)  # another view box: a new picture
    assert page.evaluate(f"{svg}.getAttribute('viewBox')") == "0 0 100 50"

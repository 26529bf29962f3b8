"""Every pattern's pictures at 1366x800 after a few seconds of a running preset, in real Chromium: every text in
every diagram and chart at least 12 CSS px as displayed, no two labels overlapping, messages on the wire moving
between two animation frames, and the numbers in the pictures those of the captions beside them."""

import re

import pytest

pytestmark = pytest.mark.browser

MIN_PX = 12.0
FRAME = "JSON.parse(document.getElementById('frame-data').dataset.frame)"
PAGES = [  # pattern, preset, the diagrams whose tokens must move
    ("raft", "catch-up", ("cluster",)),  # presets without a story: a story pauses the run at its chapters
    ("circuit-breaker", "flaky", ()),
    ("load-balancing", "slow-server", ("topology",)),
    ("messaging", "auto-ack-loss", ("topology",)),
]

# Every text of every picture: SVG <text> and Mermaid's HTML labels (the innermost element holding the words),
# with its displayed size (computed font size times the scale of the SVG around it) and its box (of the words,
# not of the element: a Range around them).
TEXTS = """() => {
  const out = [];
  for (const fig of document.querySelectorAll("figure.diagram")) {
    const elements = fig.querySelectorAll(".diagram-view svg text, .diagram-view svg foreignObject " +
      ":is(p, span.nodeLabel:not(:has(p)), span.edgeLabel:not(:has(p)))");
    for (const el of elements) {
      const words = el.textContent.trim();
      if (!words || el.closest("title, desc, .pg-tokens")) continue;
      const range = document.createRange();
      range.selectNodeContents(el);
      const box = range.getBoundingClientRect();
      if (box.width === 0 || box.height === 0) continue; // not displayed (a lane not picked)
      const owner = el instanceof SVGElement ? el : el.closest("foreignObject");
      const m = owner.getScreenCTM();
      const scale = Math.hypot(m.a, m.b);
      const px = parseFloat(getComputedStyle(el).fontSize) * (el instanceof SVGElement ? scale : scale);
      out.push({ diagram: fig.dataset.diagram, words, px, box: [box.left, box.top, box.right, box.bottom] });
    }
  }
  return out;
}"""

QUEUE_AND_CAPTION = """() => {
  const fig = document.querySelector("figure[data-diagram=topology]");
  const node = [...fig.querySelectorAll("g.node")].find(n => /-flowchart-qtasks-/.test(n.id));
  return [node.textContent, fig.querySelector(".diagram-caption").textContent];
}"""


def overlaps(texts):
    """Pairs of labels of one diagram whose boxes share more than a pixel each way."""
    found = []
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            if a["diagram"] != b["diagram"]:
                continue
            width = min(a["box"][2], b["box"][2]) - max(a["box"][0], b["box"][0])
            height = min(a["box"][3], b["box"][3]) - max(a["box"][1], b["box"][1])
            if width > 1 and height > 1:
                found.append((a["diagram"], a["words"], b["words"]))
    return found


def moved(page, diagram, tries=8):
    """Tokens of the diagram seen at two successive animation frames, and those that moved between them (tried
    a few times: on a loaded machine a frame may come after every dot seen has arrived)."""
    for _ in range(tries):
        first = page.evaluate(f"window.playgroundMotion.tokens({diagram!r})")
        page.evaluate("new Promise(r => requestAnimationFrame(r))")
        second = {t["id"]: (t["x"], t["y"]) for t in page.evaluate(f"window.playgroundMotion.tokens({diagram!r})")}
        went = [t for t in first if t["id"] in second and (t["x"], t["y"]) != second[t["id"]]]
        if went:
            return first, went
    return first, []


@pytest.mark.parametrize(("slug", "preset", "moving"), PAGES, ids=[p[0] for p in PAGES])
def test_pictures_are_legible_true_and_moving(browser, live_server_url, slug, preset, moving):
    context = browser.new_context(viewport={"width": 1366, "height": 800}, bypass_csp=True)  # for wait_for_function
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server_url}/patterns/{slug}/?preset={preset}")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_function(f"(() => {{ const f = {FRAME}; return f.run && f.t > 3; }})()", timeout=20000)
    # Slowed down, so that a message of a 10 ms network lives over several animation frames of a loaded machine.
    page.locator("select[name=speed]").select_option("0.25")
    page.wait_for_function(f"{FRAME}.speed === 0.25", timeout=10000)
    for diagram in moving:  # while it plays
        page.wait_for_function(f"window.playgroundMotion.tokens({diagram!r}).length > 0", timeout=20000)
        seen, went = moved(page, diagram)
        assert went, f"{diagram}: no token moved between animation frames ({seen})"
    if slug == "messaging":  # the queue's numbers in the topology are the caption's, frame after frame
        for _ in range(6):
            page.wait_for_timeout(150)
            label, caption = page.evaluate(QUEUE_AND_CAPTION)
            ready, unacked = re.search(r"ready (\d+) · unacked (\d+)", label).groups()
            assert f"tasks: {ready} ready, {unacked} unacked" in caption, (label, caption)
    page.get_by_role("button", name="Pause", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"!{FRAME}.playing", timeout=10000)
    page.evaluate("window.playground.idle()")
    texts = page.evaluate(TEXTS)
    drawn = page.evaluate(
        "[...document.querySelectorAll('figure.diagram svg')].map(svg => svg.closest('figure').dataset.diagram)"
    )
    assert {t["diagram"] for t in texts} == set(drawn)
    small = [(t["diagram"], t["words"], round(t["px"], 1)) for t in texts if t["px"] < MIN_PX - 0.05]
    assert not small, f"{len(small)} texts under {MIN_PX} px: {small[:12]}"
    assert not overlaps(texts), overlaps(texts)[:12]
    assert not errors
    context.close()

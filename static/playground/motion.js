/*
 * Diagrams that stay true between Mermaid renders, and messages that move (see patterns/core/motion.py).
 *
 * Live values: a drawing's `values` map a node or edge id to its label now. Its Mermaid source carries those
 * labels with placeholder numbers, so that live.js re-renders it only when the structure changes; this script
 * writes the real labels into the rendered SVG on every frame and whenever live.js puts in a new SVG (a
 * MutationObserver on each .diagram-view: the observer runs before the next paint, so the placeholders are
 * never seen).
 *
 * Tokens: a drawing's `tokens` are messages on the wire, each along an edge of the picture (a Mermaid edge path
 * by id, or a line in the SVG's coordinates) between two virtual times. Each is a dot in a layer of plain HTML
 * over the picture; at display rate (requestAnimationFrame) the dot's transform is set to the point of its way
 * that the share of its flight time gone gives, by the run's virtual time (the last frame's `t`, advanced at
 * its `speed` since it came). A moved dot repaints only its own few pixels: moved inside the SVG it would make
 * the whole picture be laid out and painted again, and moved by the compositor each would need a layer of its
 * own (hundreds made and dropped a second). Its way is measured once per picture, its element reused. Nothing
 * is asked of the browser while the run is paused, the tab hidden or no dot is on its way.
 *
 * Hooks: `htmx:wsAfterMessage` and `htmx:afterSettle` (as live.js), reading #frame-data. Test hook:
 * window.playgroundMotion (tokens(name): [{id, x, y}] in screen coordinates, stats).
 */
(() => {
  "use strict";

  const LEAD_LIMIT = 1.0; // virtual seconds the clock may run ahead of the last frame (a stalled stream stops)
  const stats = { frames: 0, patched: 0, ticks: 0, tickMs: 0 };
  const spare = []; // dot elements not in use, for the next tokens
  const MAX_FPS = 30; // dots move at most this often: smooth to the eye, half the work of a 60 Hz display
  let raf = 0, timer = 0, lastTick = 0;
  const figures = new Map(); // diagram name -> state, see figure()
  const clock = { t: 0, at: 0, speed: 1, playing: false };
  let lastText = null;

  // live.js replaced the picture (not only our own layer came or went): take the new one.
  const observer = new MutationObserver((records) => {
    for (const record of records) {
      const s = [...figures.values()].find((f) => f.view === record.target);
      if (s && s.svg !== s.view.querySelector("svg")) fresh(s);
    }
  });

  function figure(name) {
    const fig = document.querySelector(`figure.diagram[data-diagram="${CSS.escape(name)}"]`);
    const view = fig && fig.querySelector(".diagram-view");
    if (!view) return null;
    let s = figures.get(name);
    if (s && s.view === view) return s;
    s = {
      fig, view, values: {}, tokens: [], views: {}, picked: null, picker: null, viewsKey: "",
      svg: null, labels: null, edges: new Map(), layer: null, dots: new Map(), // token id -> {el, token, points}
    };
    figures.set(name, s);
    observer.observe(view, { childList: true });
    view.addEventListener("scroll", () => relay(s), { passive: true });
    return s;
  }

  // A new SVG is on screen: size it, forget what pointed into the old one, write the live labels into it and
  // lay the tokens on it.
  function fresh(s) {
    s.svg = s.view.querySelector("svg");
    if (s.svg) showView(s);
    for (const svg of s.view.querySelectorAll("svg")) fit(svg);
    s.labels = null;
    s.edges = new Map(); // edge id -> sample()
    patchValues(s);
    relay(s);
  }

  // Lay the figure's tokens at the next animation frame, when the browser lays the page out anyway: measuring
  // now, between live.js's swaps of this frame, would lay it out once more. `again`: measure every way again.
  const waiting = new Map(); // figure -> again
  function relay(s, again = true) {
    waiting.set(s, again || waiting.get(s) === true);
    if (waiting.size === 1) {
      requestAnimationFrame(() => {
        for (const [figure, anew] of waiting) move(figure, anew);
        waiting.clear();
      });
    }
  }

  // ------------------------------------------------------------------ size

  // Shown as wide as the figure allows and no taller than TALLEST_VH of the window, but never so small that its
  // text falls under MIN_TEXT_PX (a figure too narrow scrolls sideways instead) nor larger than drawn (charts: up
  // to CHART_GROWTH times). Mermaid writes 16 px text, the server-drawn pictures 13 px. Set through the CSSOM: no
  // inline style attribute (the page's CSP).
  const MIN_TEXT_PX = 12;
  const CHART_GROWTH = 1.6; // a chart may fill a wider figure up to this many times its drawn width
  const TALLEST_VH = 80; // no taller than this share of the window, as far as the text floor allows
  function fit(svg) {
    const box = svg.viewBox && svg.viewBox.baseVal;
    if (!box || !box.width) return;
    const mermaid = svg.id.startsWith("pg-mmd-");
    const least = (box.width * MIN_TEXT_PX) / (mermaid ? 16 : 13);
    const most = `${box.width * (svg.classList.contains("line-chart") ? CHART_GROWTH : 1)}px`;
    const tall = `${((TALLEST_VH * box.width) / box.height).toFixed(2)}vh`; // the width at which it is that tall
    svg.style.maxWidth = "none";
    svg.style.width = `clamp(${least.toFixed(1)}px, min(100%, ${tall}), ${most})`;
    svg.style.height = "auto";
    svg.style.flex = "none";
  }

  // ------------------------------------------------------------------ views

  // A drawing with `views` (subgraph id -> name) is shown one part at a time: the picker's buttons choose which
  // subgraph the SVG's viewBox frames (the rest lies outside it, unseen). The choice is the viewer's own.
  function offerViews(s) {
    const keys = Object.keys(s.views);
    const key = keys.map((k) => `${k}\u0001${s.views[k]}`).join("\n");
    if (key === s.viewsKey) return;
    s.viewsKey = key;
    if (!keys.includes(s.picked)) s.picked = keys[0] || null;
    if (keys.length < 2) {
      if (s.picker) s.picker.remove();
      s.picker = null;
      return;
    }
    if (!s.picker) {
      s.picker = document.createElement("div");
      s.picker.className = "view-picker";
      s.picker.setAttribute("role", "group");
      s.picker.setAttribute("aria-label", `${s.fig.querySelector("figcaption")?.textContent || "Diagram"}: show`);
      s.view.before(s.picker);
    }
    s.picker.replaceChildren(...keys.map((k) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.view = k;
      button.textContent = s.views[k];
      return button;
    }));
    markPicked(s);
  }

  function markPicked(s) {
    if (!s.picker) return;
    for (const button of s.picker.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.view === s.picked));
    }
  }

  function showView(s) {
    if (!s.picked || Object.keys(s.views).length < 2) return;
    const part = s.svg.querySelector(`g.cluster[id="${CSS.escape(`${s.svg.id}-${s.picked}`)}"]`);
    if (!part) return;
    const box = part.getBBox();
    const pad = 8;
    s.svg.setAttribute("viewBox", `${box.x - pad} ${box.y - pad} ${box.width + 2 * pad} ${box.height + 2 * pad}`);
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest(".view-picker button") : null;
    const s = button && [...figures.values()].find((f) => f.picker === button.parentElement);
    if (!s) return;
    s.picked = button.dataset.view;
    markPicked(s);
    if (s.svg) {
      showView(s);
      fit(s.svg);
    }
  });

  // ------------------------------------------------------------------ live values

  // Mermaid 11 names a flowchart node `<renderId>-flowchart-<id>-<n>`, and gives an edge label's group the
  // edge's id as data-id. Label text sits in a <p> (or the span itself) of a foreignObject.
  function labelIndex(s) {
    const index = new Map();
    if (!s.svg) return index;
    const prefix = s.svg.id ? s.svg.id + "-" : "";
    for (const node of s.svg.querySelectorAll("g.node")) {
      const match = /^flowchart-(.+)-\d+$/.exec(node.id.startsWith(prefix) ? node.id.slice(prefix.length) : node.id);
      const holder = node.querySelector(".nodeLabel p, .nodeLabel");
      if (match && holder) index.set(match[1], holder);
    }
    for (const group of s.svg.querySelectorAll(".edgeLabel [data-id]")) {
      const holder = group.querySelector("p, span.edgeLabel");
      if (holder) index.set(group.getAttribute("data-id"), holder);
    }
    return index;
  }

  function patchValues(s) {
    if (!s.svg) return;
    if (!s.labels) s.labels = labelIndex(s);
    for (const [id, text] of Object.entries(s.values)) {
      const holder = s.labels.get(id);
      if (!holder || holder.dataset.pgValue === text) continue;
      const lines = text.split("\n");
      holder.replaceChildren(...lines.flatMap((line, i) => (i ? [document.createElement("br"), line] : [line])));
      holder.dataset.pgValue = text;
      stats.patched++;
    }
  }

  // ------------------------------------------------------------------ tokens

  // The run's virtual time now, by the last frame's clock.
  function virtualNow() {
    if (!clock.playing) return clock.t;
    const ahead = ((performance.now() - clock.at) / 1000) * clock.speed;
    return clock.t + Math.min(ahead, LEAD_LIMIT * Math.max(1, clock.speed));
  }

  // The layer the dots move in: over the figure's view, clipped to it (its place written only when it moved).
  function layerOf(s) {
    if (!s.layer || !s.layer.isConnected) {
      s.layer = document.createElement("div");
      s.layer.className = "pg-token-layer";
      s.layer.setAttribute("aria-hidden", "true");
      s.view.after(s.layer);
      s.dots = new Map();
      s.layerBox = "";
    }
    const view = s.view;
    const box = `${view.offsetLeft} ${view.offsetTop} ${view.clientWidth} ${view.clientHeight}`;
    if (box !== s.layerBox) {
      const [left, top, width, height] = box.split(" ");
      Object.assign(s.layer.style, { left: `${left}px`, top: `${top}px`, width: `${width}px`, height: `${height}px` });
      s.layerBox = box;
    }
    return s.layer;
  }

  // SAMPLES + 1 points along the token's way, in the layer's pixels (`ctm` caches each element's matrix).
  const SAMPLES = 24;
  function route(s, token, origin, ctm) {
    let element = s.svg, points;
    if (token.line) {
      const [x1, y1, x2, y2] = token.line;
      points = [{ x: x1, y: y1 }, { x: x2, y: y2 }];
    } else {
      if (!s.edges.has(token.edge)) s.edges.set(token.edge, sample(s.svg, token.edge));
      const edge = s.edges.get(token.edge);
      if (!edge) return null;
      element = edge.path;
      points = token.reverse ? [...edge.points].reverse() : edge.points;
    }
    if (!ctm.has(element)) ctm.set(element, element.getScreenCTM());
    const m = ctm.get(element);
    if (!m) return null;
    return points.map((p) => [
      Math.round((m.a * p.x + m.c * p.y + m.e - origin.left) * 10) / 10,
      Math.round((m.b * p.x + m.d * p.y + m.f - origin.top) * 10) / 10,
    ]);
  }

  // An edge's path and SAMPLES + 1 points along it, measured once per SVG (getPointAtLength walks the curve).
  function sample(svg, id) {
    const path = svg.querySelector(`path[data-edge][data-id="${CSS.escape(id)}"]`);
    if (!path) return null;
    const length = path.getTotalLength();
    const points = [];
    for (let i = 0; i <= SAMPLES; i++) {
      const p = path.getPointAtLength((length * i) / SAMPLES);
      points.push({ x: p.x, y: p.y });
    }
    return { path, points };
  }

  // Give each token of the figure a dot and its way. With `relaid`, the picture or the layout changed: every way
  // is measured again. All measuring first, then all writing: one layout per call, however many tokens.
  function move(s, relaid) {
    if (!s.svg || (!s.tokens.length && !s.dots.size)) return;
    const layer = layerOf(s);
    const origin = layer.getBoundingClientRect();
    const ctm = new Map();
    const ways = s.tokens.map((token) => {
      const dot = s.dots.get(token.id);
      return !dot || relaid ? route(s, token, origin, ctm) : dot.points;
    });
    const wanted = new Set();
    s.tokens.forEach((token, index) => {
      if (!ways[index]) return;
      wanted.add(token.id);
      let dot = s.dots.get(token.id);
      if (!dot) {
        const el = spare.pop() || document.createElement("span");
        el.className = `pg-token ${token.kind}`;
        el.style.opacity = "0";
        layer.appendChild(el);
        dot = { el, shown: "" };
        s.dots.set(token.id, dot);
      }
      dot.token = token;
      dot.points = ways[index];
    });
    for (const [id, dot] of s.dots) {
      if (!wanted.has(id)) {
        dot.el.remove();
        spare.push(dot.el);
        s.dots.delete(id);
      }
    }
    place(s, virtualNow());
    schedule();
  }

  // Put each dot where its message is at virtual time `now`; one not on its way then is hidden. Returns whether
  // any is still to move.
  function place(s, now) {
    let pending = false;
    for (const dot of s.dots.values()) {
      const { token, points } = dot;
      const span = token.arrive - token.sent;
      const share = span > 0 ? (now - token.sent) / span : 1;
      if (share < 1) pending = true;
      let shown = "";
      if (share >= 0 && share < 1) {
        const at = share * (points.length - 1);
        const i = Math.min(Math.floor(at), points.length - 2), k = at - i;
        const [x1, y1] = points[i], [x2, y2] = points[i + 1];
        shown = `translate(${(x1 + (x2 - x1) * k).toFixed(1)}px, ${(y1 + (y2 - y1) * k).toFixed(1)}px)`;
      }
      if (shown === dot.shown) continue;
      if (shown) dot.el.style.transform = shown;
      if (Boolean(shown) !== Boolean(dot.shown)) dot.el.style.opacity = shown ? "1" : "0";
      dot.shown = shown;
    }
    return pending;
  }

  function tick(stamp) {
    raf = 0;
    lastTick = stamp;
    const started = performance.now();
    const now = virtualNow();
    let pending = false;
    for (const s of figures.values()) if (s.dots.size && place(s, now)) pending = true;
    stats.ticks++;
    stats.tickMs += performance.now() - started;
    if (pending && clock.playing) schedule();
  }

  // The next tick at the first display frame that MAX_FPS allows: the wait is a timer, not display frames asked
  // for and skipped (each one asked for makes the browser run its rendering steps, even for nothing).
  function schedule() {
    if (raf || timer || !clock.playing || document.hidden) return;
    const wait = lastTick + 1000 / MAX_FPS - 4 - performance.now();
    if (wait <= 0) raf = requestAnimationFrame(tick);
    else timer = setTimeout(() => { timer = 0; schedule(); }, wait);
  }

  // ------------------------------------------------------------------ frames

  function applyFrame(f) {
    stats.frames++;
    clock.t = Number(f.t) || 0;
    clock.at = performance.now();
    clock.speed = Number(f.speed) || 1;
    clock.playing = Boolean(f.playing) && !f.stopped;
    for (const [name, spec] of Object.entries(f.diagrams || {})) {
      const s = figure(name);
      if (!s) continue;
      s.values = (spec && spec.values) || {};
      s.tokens = (spec && spec.tokens) || [];
      s.views = (spec && spec.views) || {};
      offerViews(s);
      if (s.svg !== s.view.querySelector("svg")) fresh(s);
      else {
        patchValues(s);
        relay(s, false);
      }
    }
  }

  function readFrame() {
    const el = document.getElementById("frame-data");
    const text = el && el.getAttribute("data-frame");
    if (!text || text === lastText) return;
    lastText = text;
    try {
      applyFrame(JSON.parse(text));
    } catch (err) {
      console.warn("motion: unreadable frame", err);
    }
  }

  document.addEventListener("htmx:wsAfterMessage", readFrame);
  document.addEventListener("htmx:afterSettle", readFrame);
  window.addEventListener("resize", () => { for (const s of figures.values()) relay(s); });
  document.addEventListener("visibilitychange", schedule);

  window.playgroundMotion = {
    stats,
    // Where the visible tokens of a diagram are now, in screen pixels (for tests).
    tokens(name) {
      const s = figures.get(name);
      if (!s) return [];
      return [...s.dots.entries()]
        .filter(([, dot]) => dot.el.isConnected && dot.shown)
        .map(([id, dot]) => {
          const box = dot.el.getBoundingClientRect();
          return { id, x: box.x + box.width / 2, y: box.y + box.height / 2 };
        });
    },
  };

  for (const svg of document.querySelectorAll(".diagram-view svg")) fit(svg); // pictures sent in the page
  readFrame();
})();

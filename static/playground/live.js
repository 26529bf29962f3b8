/*
 * Playground live page: applies the frames the server pushes over the websocket.
 *
 * The server owns all HTML. Each websocket message is a set of out-of-band fragments that htmx and its ws
 * extension swap by id; one of them is always <div id="frame-data" data-frame='{json}'>. After every message
 * this script reads that JSON and does the few things HTML swapping cannot do well:
 *
 *   - Mermaid diagrams: re-render only when a diagram's source changed, off-screen, one render at a time,
 *     coalescing to the latest source; then swap the finished SVG in one step (the old one stays until then).
 *     After a render the next one waits five times as long as that render took, so that diagrams whose text changes
 *     every frame keep Mermaid to at most a sixth of the main thread and the page stays responsive.
 *   - Live state: mark the active nodes/edges with the class `pg-active` on the current SVG, in place, and the
 *     current story chapter's nodes/edges with `pg-story`.
 *   - Story (frame.story, a preset told as chapters): the chapter's text, its number, the off-script notice;
 *     Next resumes the run (the server pauses it at the next chapter that pauses; before a run, Next starts
 *     it), Back seeks to the previous chapter's time.
 *   - Details: nodes the frame has `details` for become buttons; clicking one (or Enter/Space on it) shows its
 *     text in the figure's details box (first line as the heading), which follows the live frames until closed.
 *   - Node actions: the page declares (registry NodeActions, #page-data) which nodes offer which commands; the
 *     details box of a clicked node also holds those commands' forms, cloned from the "All commands" forms with
 *     the node's name fixed, offered only for targets that exist now (frame.targets). Escape closes the box.
 *     Target fields of every form (data-target) become lists of the targets that exist now; in a node's box,
 *     without that node (a link's other end).
 *   - Errors: a refused action's message moves next to the control that sent it; the next action clears it.
 *   - Event log: filters by type and node, routine events hidden by default with a count, a click on an
 *     event's time seeks there. A frame to a joining viewer (or after a rewind) carries the whole log; the others
 *     carry only the events new since the previous frame (hx-swap-oob="afterbegin", data-keep): they go on top,
 *     any already listed skipped (a viewer who joined got them in its whole log), and the oldest beyond data-keep
 *     of each kind (routine or not) are dropped, so the page lists what a whole log would.
 *   - Timeline: the slider and its "now" label; on its track, the script's steps (server HTML) and the story's
 *     chapters as markers, each a button named by its label (also its tooltip) that seeks just before it; Delete
 *     on a step's marker, or "Remove step" after clicking it, removes the step; "Cut later steps", offered while
 *     steps are still to come, makes the next perturbation cut them (struck out meanwhile).
 *   - Share link, theme toggle, preset picker (a preset is a new page).
 *
 * Hook: `htmx:wsAfterMessage`. The ws extension fires it once per message, after every OOB swap is done.
 * (`htmx:oobAfterSwap` fires once per OOB element on every element settled so far, so it is noisy and its
 * target is not reliably #frame-data.) Frames are de-duplicated by their raw JSON text, so also listening to
 * `htmx:afterSettle` (plain htmx requests that carry a frame) costs nothing.
 *
 * Swaps in place: #metrics (in a frame whenever it changed) and a whole #event-log change only in a few values and
 * rows. Replacing them would cost htmx's clean-up of every old element and the style, layout and paint of ~250 new
 * ones; on `htmx:oobBeforeSwap` this script updates them in place instead (same resulting DOM, only what differs
 * is touched; log rows are matched by data-seq) and tells htmx not to swap. Small fragments, the live region
 * #run-status, and anything carrying htmx attributes are swapped by htmx as sent.
 *
 * Test hook: window.playground (applyFrame, applyFrameHtml, idle, stats).
 */
(() => {
  "use strict";

  const THEME_KEY = "pg-theme";
  const root = document.documentElement;
  const stats = { frames: 0, renders: 0, renderErrors: 0, lastRenderMs: 0, renderMs: 0, applyMs: 0, morphs: 0, morphMs: 0 };

  let lastFrameText = null; // raw data-frame text of the last applied frame
  let frame = null; // last applied frame object

  // ---------------------------------------------------------------- theme

  function storedTheme() {
    try {
      const value = localStorage.getItem(THEME_KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch {
      return null; // storage disabled: the toggle still works for this page
    }
  }

  function effectiveTheme() {
    const attr = root.dataset.theme;
    if (attr === "dark" || attr === "light") return attr;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  // The button names the theme it switches to, and is a toggle (aria-pressed = dark is on).
  function updateToggle() {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    const dark = effectiveTheme() === "dark";
    button.textContent = dark ? "Light theme" : "Dark theme";
    button.setAttribute("aria-pressed", String(dark));
  }

  function setTheme(theme) {
    root.dataset.theme = theme;
    try { localStorage.setItem(THEME_KEY, theme); } catch { /* not remembered, still applied */ }
    updateToggle();
    rerenderAllMermaid();
  }

  // ---------------------------------------------------------------- diagrams

  const diagrams = new Map(); // name -> per-diagram state, see diagramState()
  const pending = new Map(); // name -> Mermaid source waiting to be rendered (latest wins)
  let rendering = false;
  let nextRenderAt = 0; // performance.now() before which no render starts (see RENDER_REST)
  const RENDER_REST = 5; // rest after a render, as a multiple of its duration
  let renderSeq = 0; // makes every render id unique, so a render never collides with the SVG on screen
  let mermaidTheme = null; // theme Mermaid was last initialised with
  let idleWaiters = [];

  function diagramState(name) {
    let d = diagrams.get(name);
    if (d && d.fig.isConnected) return d;
    const fig = document.querySelector(`figure.diagram[data-diagram="${CSS.escape(name)}"]`);
    const view = fig && fig.querySelector(".diagram-view");
    if (!view) return null;
    d = {
      fig, view, captionEl: fig.querySelector(".diagram-caption"), caption: "",
      source: "", // Mermaid source wanted on screen ("" when the diagram is a server SVG or empty)
      svg: "", // server-rendered SVG on screen
      error: "", // last render error for `source`, shown instead of the caption
      nodes: [], edges: [], // ids to mark active
      index: null, // {nodes: Map, edges: Map} of the current SVG, built lazily once per SVG
      marked: new Set(), marksKey: null, // elements carrying pg-active, and for which nodes+edges
      story: [], storyMarked: new Set(), // ids the story's chapter highlights, and the elements carrying pg-story
      details: {}, // node id -> text shown when it is clicked
      detailsKey: null, // the details ids made clickable on the current SVG
      box: fig.querySelector(".diagram-details"), selected: null, // details box and the node id it shows
    };
    diagrams.set(name, d);
    return d;
  }

  function applyDiagram(name, spec) {
    const d = diagramState(name);
    if (!d) return;
    d.nodes = (spec.nodes || []).map(String);
    d.edges = (spec.edges || []).map(String);
    d.caption = spec.caption || "";
    d.details = spec.details || {};
    if (spec.svg) {
      // Server-rendered SVG (charts): swap only when it changed.
      d.source = "";
      pending.delete(name);
      if (spec.svg !== d.svg) {
        d.svg = spec.svg;
        d.error = "";
        patchView(d, spec.svg);
      }
    } else if (spec.mermaid) {
      d.svg = "";
      if (spec.mermaid !== d.source) {
        d.source = spec.mermaid;
        if (window.mermaid) pending.set(name, spec.mermaid);
      }
    } else if (d.source || d.svg) {
      d.source = d.svg = d.error = "";
      pending.delete(name);
      setView(d, "");
    }
    // A diagram with nothing to draw (the hash rings with no hashing lane) is not shown at all.
    const empty = !spec.svg && !spec.mermaid;
    if (d.fig.hidden !== empty) d.fig.hidden = empty;
    markActive(d);
    showCaption(d);
    offerDetails(d);
  }

  function setView(d, svgText) {
    d.view.innerHTML = svgText; // one step: the old SVG is replaced by a finished one
    forgetMarks(d);
  }

  // The picture changed: what the page knew of it (its node index, the marks it put on it) is to be made again.
  function forgetMarks(d) {
    d.index = null;
    d.marked = new Set();
    d.storyMarked = new Set();
    d.marksKey = null;
    d.detailsKey = null;
  }

  // A server SVG that changed is patched in place when its root (size, view box) is the same: the browser then
  // restyles, lays out and repaints only what differs (most frames change a few labels of a picture), and motion.js
  // keeps its tokens' ways. The page's own marks on it (pg-active, pg-story, details) are put back after.
  function patchView(d, svgText) {
    const old = d.view.firstElementChild;
    const parsed = document.createElement("template");
    parsed.innerHTML = svgText;
    const next = parsed.content.firstElementChild;
    if (d.view.childElementCount !== 1 || !next || next.nextElementSibling || !sameRoot(old, next)) {
      return setView(d, svgText);
    }
    morphChildren(old, next);
    forgetMarks(d);
  }

  // Two SVG roots alike but for `style` (motion.js sizes the picture through it).
  function sameRoot(el, next) {
    if (el.nodeName !== "svg" || next.nodeName !== "svg") return false;
    const names = (root) => root.getAttributeNames().filter((name) => name !== "style");
    const mine = names(el);
    return mine.length === names(next).length && mine.every((name) => el.getAttribute(name) === next.getAttribute(name));
  }

  function showCaption(d) {
    if (!d.captionEl) return;
    const text = d.error || d.caption;
    if (d.captionEl.textContent !== text) d.captionEl.textContent = text;
    d.captionEl.classList.toggle("diagram-error", Boolean(d.error));
  }

  // Mermaid 11 names elements after the render id (`<id>-flowchart-A-0`, `<id>-state-OPEN-4`); strip those
  // parts to get the id the source used.
  function nodeName(elementId, prefix) {
    let id = elementId || "";
    if (prefix && id.startsWith(prefix)) id = id.slice(prefix.length);
    const match = /^(?:flowchart|state)-(.+)-\d+$/.exec(id);
    return match ? match[1] : id;
  }

  // Index the SVG once: node id -> elements, edge id -> elements.
  //   nodes: g.node (flowchart and state nodes: id pattern above), g.cluster (flowchart subgraph, id
  //          `<renderId>-<subgraphId>`), any other [data-id] element (state composite `g.statediagram-cluster`,
  //          server SVGs).
  //   edges: [data-edge][data-id] (edge paths; data-id is the `e1@-->` id, or Mermaid's own `L_A_B_0` /
  //          `edge3`) and the [data-id] label group inside .edgeLabel.
  function buildIndex(d) {
    const nodes = new Map();
    const edges = new Map();
    const owner = new Map(); // node element -> its id, to know which node a click landed on
    const add = (map, key, el) => key && (map.get(key) || map.set(key, []).get(key)).push(el);
    const svg = d.view.querySelector("svg");
    if (svg) {
      const prefix = svg.id ? svg.id + "-" : "";
      for (const el of svg.querySelectorAll("[data-id], g.node, g.cluster")) {
        const key = el.getAttribute("data-id");
        if (key && (el.hasAttribute("data-edge") || el.closest(".edgeLabel"))) add(edges, key, el);
        else {
          add(nodes, key || nodeName(el.id, prefix), el);
          owner.set(el, key || nodeName(el.id, prefix));
        }
      }
    }
    return { nodes, edges, owner };
  }

  // Move pg-active to the elements of the current node/edge ids; touches only elements whose state changes.
  function markActive(d) {
    const key = [d.nodes.join("\n"), d.edges.join("\n"), d.story.join("\n")].join("\u0001");
    if (d.index && key === d.marksKey) return;
    if (!d.index) d.index = buildIndex(d);
    d.marked = mark(d, [...d.nodes, ...d.edges], d.marked, "pg-active");
    d.storyMarked = mark(d, d.story, d.storyMarked, "pg-story");
    d.marksKey = key;
  }

  // The elements of ``ids`` (node or edge ids) carry ``cls``, the others of ``marked`` no longer: the new set.
  function mark(d, ids, marked, cls) {
    const next = new Set();
    for (const id of ids) for (const el of [...(d.index.nodes.get(id) || []), ...(d.index.edges.get(id) || [])]) next.add(el);
    for (const el of marked) if (!next.has(el)) el.classList.remove(cls);
    for (const el of next) if (!marked.has(el)) el.classList.add(cls);
    return next;
  }

  function ensureMermaidTheme() {
    const theme = effectiveTheme() === "dark" ? "dark" : "default";
    if (theme === mermaidTheme) return;
    // suppressErrorRendering: on a bad source Mermaid throws and removes its temporary element instead of
    // drawing its "bomb" diagram (which would otherwise stay in <body>).
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme, suppressErrorRendering: true });
    mermaidTheme = theme;
  }

  // Render queue: one render at a time overall (Mermaid is not reentrant), latest source per diagram.
  async function pump() {
    if (rendering) return;
    rendering = true; // set synchronously: a second pump() in the same task is a no-op
    try {
      while (pending.size) {
        const wait = nextRenderAt - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait)); // newer sources coalesce meanwhile
        const [name, source] = pending.entries().next().value;
        pending.delete(name);
        await renderMermaid(diagrams.get(name), source);
      }
    } finally {
      rendering = false;
      const waiters = idleWaiters;
      idleWaiters = [];
      waiters.forEach((resolve) => resolve());
    }
  }

  async function renderMermaid(d, source) {
    ensureMermaidTheme();
    const id = `pg-mmd-${++renderSeq}`;
    // Off-screen scratch container: Mermaid needs layout to measure text, but nothing may show or shift.
    const scratch = document.createElement("div");
    scratch.setAttribute("aria-hidden", "true");
    scratch.style.cssText = "position:fixed;left:-10000px;top:0;width:1600px;visibility:hidden;pointer-events:none";
    document.body.appendChild(scratch);
    const started = performance.now();
    let svg = null;
    let error = null;
    stats.renders++;
    try {
      ({ svg } = await window.mermaid.render(id, source, scratch));
    } catch (err) {
      error = err;
      stats.renderErrors++;
    } finally {
      // Leave nothing behind, success or error: our container, and whatever Mermaid may have put elsewhere.
      scratch.remove();
      for (const stray of [id, "d" + id, "i" + id]) document.getElementById(stray)?.remove();
      stats.lastRenderMs = performance.now() - started;
      stats.renderMs += stats.lastRenderMs;
      nextRenderAt = performance.now() + RENDER_REST * stats.lastRenderMs;
    }
    if (d.source !== source) return; // superseded while rendering: the newer source is already queued
    if (error) {
      console.warn("Mermaid render failed", error);
      const firstLine = String((error && error.message) || error).split("\n")[0].replace(/:$/, "");
      d.error = `Diagram error: ${firstLine.slice(0, 120)}`;
    } else {
      d.error = "";
      setView(d, svg);
    }
    markActive(d);
    showCaption(d);
    offerDetails(d);
  }

  // ---------------------------------------------------------------- details

  // Nodes with details become keyboard-reachable buttons; the open box is refreshed from each frame.
  function offerDetails(d) {
    const ids = Object.keys(d.details);
    const key = ids.join("\n") + "\u0001" + JSON.stringify((frame && frame.targets) || {});
    if (key !== d.detailsKey && d.view.querySelector("svg")) {
      if (!d.index) d.index = buildIndex(d);
      for (const [el, id] of d.index.owner) {
        const offered = offers(d, id);
        el.classList.toggle("pg-details", offered);
        if (offered) {
          el.setAttribute("tabindex", "0");
          el.setAttribute("role", "button");
          el.setAttribute("aria-label", `Details of ${id}`);
        } else {
          ["tabindex", "role", "aria-label"].forEach((name) => el.removeAttribute(name));
        }
      }
      d.detailsKey = key;
    }
    if (d.selected !== null) showDetails(d, d.selected);
  }

  // A node opens a box when it has details or actions.
  function offers(d, id) {
    return Object.hasOwn(d.details, id) || actionsFor(d.fig.dataset.diagram, id).length > 0;
  }

  function showDetails(d, id) {
    if (!d.box) return;
    const actions = actionsFor(d.fig.dataset.diagram, id);
    const text = d.details[id] ?? (actions.length ? actions.map((a) => `${a.label} ${a.target}`.trim())[0] : undefined);
    const opened = d.selected !== id;
    d.selected = text === undefined ? null : id;
    d.box.hidden = d.selected === null;
    if (d.selected === null) return closeDetails(d);
    const [heading, ...rest] = text.split("\n");
    const title = d.box.querySelector(".details-title");
    const body = d.box.querySelector(".details-text");
    if (title.textContent !== heading) title.textContent = heading;
    if (body.textContent !== rest.join("\n")) body.textContent = rest.join("\n");
    body.hidden = rest.length === 0;
    offerActions(d, id);
    if (opened) placeBox(d);
  }

  function closeDetails(d) {
    const was = d.selected;
    d.selected = null;
    d.actionsKey = null;
    if (!d.box) return;
    d.box.hidden = true;
    d.box.querySelector(".details-actions")?.replaceChildren();
    const node = was !== null && d.index && (d.index.nodes.get(was) || [])[0];
    if (node && d.box.contains(document.activeElement)) node.focus(); // back where the keyboard was
    if (d.box.parentElement !== d.fig) {
      d.fig.appendChild(d.box);
      document.getElementById("node-panel")?.classList.remove("holding");
    }
  }

  // On wide screens the box opens in the side panel beside the diagrams (#node-panel), so that the picture stays
  // whole while the learner acts on it; on narrow screens it stays under its diagram. One box is open at a time.
  function placeBox(d) {
    const slot = document.getElementById("node-panel");
    const wide = slot && window.matchMedia("(min-width: 64rem)").matches;
    for (const other of diagrams.values()) if (other !== d && other.selected !== null) closeDetails(other);
    const home = wide ? slot : d.fig;
    if (d.box.parentElement !== home) home.appendChild(d.box);
    if (slot) slot.classList.toggle("holding", wide);
  }

  // ---------------------------------------------------------------- node actions

  // What the page declares (registry NodeActions): which nodes offer which commands, and for which argument.
  const pageData = document.getElementById("page-data");
  const nodeActions = (() => {
    try { return JSON.parse((pageData && pageData.dataset.nodeActions) || "[]"); } catch { return []; }
  })();

  // The actions a node offers now: only for targets that exist (frame.targets).
  function actionsFor(diagramName, id) {
    const targets = (frame && frame.targets) || {};
    const found = [];
    for (const actions of nodeActions) {
      if (actions.diagrams.length && !actions.diagrams.includes(diagramName)) continue;
      const match = new RegExp(`^(?:${actions.node})$`).exec(id);
      if (!match) continue;
      const name = actions.name || match[1] || "";
      const present = targets[actions.kind] || [];
      if (actions.arg && !present.includes(name)) continue;
      const others = present.filter((other) => other !== name).join(".");
      found.push({ ...actions, target: name, value: actions.value.replace("{name}", name).replace("{others}", others) });
    }
    return found;
  }

  // Fill the details box with forms cloned from the page's command forms, the target argument fixed.
  function offerActions(d, id) {
    const holder = d.box.querySelector(".details-actions");
    if (!holder) return;
    const found = actionsFor(d.fig.dataset.diagram, id);
    const key = id + "\u0001" + JSON.stringify(found.map((a) => [a.label, a.value]));
    if (key === d.actionsKey) return;
    d.actionsKey = key;
    const groups = [];
    for (const actions of found) {
      const group = document.createElement("div");
      group.className = "action-group";
      if (actions.commands.length > 1 && found.length > 1 && actions !== found[0]) {
        const heading = document.createElement("h4");
        heading.textContent = actions.target ? `${actions.label} ${actions.target}` : actions.label;
        group.appendChild(heading);
      }
      for (const command of actions.commands) {
        const source = document.querySelector(`#perturb form.command[data-command="${CSS.escape(command)}"]`);
        if (!source) continue;
        const form = source.cloneNode(true);
        form.removeAttribute("title");
        if (actions.arg) {
          const field = form.querySelector(`[name="${CSS.escape(actions.arg)}"]`);
          const hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = actions.arg;
          hidden.value = actions.value;
          hidden.dataset.fixed = "";
          (field && field.closest("label") || field)?.replaceWith(hidden);
          if (!field) form.appendChild(hidden);
        }
        if (actions.commands.length === 1) form.querySelector("button[type=submit]").textContent = actions.label;
        group.appendChild(form);
      }
      groups.push(group);
    }
    holder.replaceChildren(...groups);
    fillPickers(holder);
    if (window.htmx) window.htmx.process(holder);
  }

  // Every target field of a command form (registry Param.target: data-target names the kind) becomes a list of the
  // targets of that kind that exist now; in a node's box, without the node the form is fixed to (the other end of a
  // link is another node).
  let pickersKey = null;
  function fillPickers(root) {
    const targets = (frame && frame.targets) || {};
    for (const field of root.querySelectorAll("form.command [data-target]:is(input:not([type=hidden]), select)")) {
      const kind = field.dataset.target;
      const fixed = [...field.form.querySelectorAll("input[data-fixed]")].map((input) => input.value);
      const names = (targets[kind] || []).filter((name) => !fixed.includes(name));
      const current = field.value; // a text field's default ("s2") stays chosen when it exists
      let select = field;
      if (field.tagName !== "SELECT") {
        select = document.createElement("select");
        select.name = field.name;
        select.dataset.target = kind;
        select.required = true;
        field.replaceWith(select);
      }
      const wanted = names.join("\n");
      if (select.dataset.names === wanted) continue;
      select.replaceChildren(...names.map((name) => new Option(name, name, false, name === current)));
      select.dataset.names = wanted;
      select.disabled = names.length === 0;
    }
  }

  // A partition field (registry Param.groups_of) gets a button per target that exists now: each click moves it to
  // the next group (A, B, C); the text field follows ("s1.s2|s3.s4.s5") and stays editable.
  const GROUP_NAMES = ["A", "B", "C"];
  function fillGroupPickers(root) {
    const targets = (frame && frame.targets) || {};
    for (const field of root.querySelectorAll("input[data-groups-of]")) {
      const names = targets[field.dataset.groupsOf] || [];
      let picker = field.parentElement.querySelector(".group-picker");
      if (!picker) {
        picker = document.createElement("span");
        picker.className = "group-picker";
        picker.setAttribute("role", "group");
        picker.setAttribute("aria-label", "Put each one in a group");
        field.insertAdjacentElement("beforebegin", picker);
      }
      const groupOf = new Map();
      field.value.split("|").forEach((group, i) => group.split(".").forEach((name) => groupOf.set(name, i)));
      picker.replaceChildren(...names.map((name) => {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.node = name;
        const group = Math.min(groupOf.get(name) ?? GROUP_NAMES.length - 1, GROUP_NAMES.length - 1);
        button.dataset.group = String(group);
        button.textContent = `${name}: ${GROUP_NAMES[group]}`;
        return button;
      }));
    }
  }

  function cycleGroup(button) {
    const picker = button.closest(".group-picker");
    const field = picker.parentElement.querySelector("input[data-groups-of]");
    button.dataset.group = String((Number(button.dataset.group) + 1) % GROUP_NAMES.length);
    button.textContent = `${button.dataset.node}: ${GROUP_NAMES[Number(button.dataset.group)]}`;
    const groups = GROUP_NAMES.map(() => []);
    for (const b of picker.querySelectorAll("button")) groups[Number(b.dataset.group)].push(b.dataset.node);
    field.value = groups.filter((g) => g.length).map((g) => g.join(".")).join("|");
  }

  function refreshPickers() {
    const key = JSON.stringify((frame && frame.targets) || {});
    if (key === pickersKey) return;
    pickersKey = key;
    const perturb = document.getElementById("perturb");
    if (perturb) { fillPickers(perturb); fillGroupPickers(perturb); }
    fillNodeFilter();
    for (const d of diagrams.values()) if (d.selected !== null) { d.actionsKey = null; offerActions(d, d.selected); }
  }

  // The figure and node id a click or key press landed on, if that node offers details.
  function detailsTarget(target) {
    const fig = target.closest("figure.diagram");
    const d = fig && diagramState(fig.dataset.diagram);
    if (!d || !d.index) return null;
    for (let el = target; el && el !== d.view; el = el.parentElement) {
      const id = d.index.owner.get(el);
      if (id !== undefined && offers(d, id)) return { d, id };
    }
    return null;
  }

  function rerenderAllMermaid() {
    if (!window.mermaid) return;
    for (const [name, d] of diagrams) if (d.source) pending.set(name, d.source);
    pump();
  }

  // ---------------------------------------------------------------- timeline

  let pointerOnTimeline = false;
  let lastTimelineInput = 0;
  const USER_GRACE_MS = 1500; // after the user touched the slider, frames leave its value alone this long
  const SEEK_BEFORE = 0.001; // a marker seeks this much before its time, where its step or chapter is still to come

  // The script's steps (#timeline-steps, server HTML sent when the script changes) and the story's chapters
  // (#timeline-chapters, drawn here from frame.story) sit on the slider's track. The track spans from 0 to the
  // furthest of the time reached and every marker, so a step still to come shows where it will happen (a seek past
  // the time reached simulates on to it).
  function applyTimeline(f) {
    const slider = document.getElementById("timeline");
    const now = document.getElementById("timeline-now");
    const t = Number(f.t) || 0;
    const horizon = Math.max(Number(f.horizon) || 0, t);
    drawChapters(f.story);
    const marks = [...document.querySelectorAll(".track .mark")];
    const end = Math.max(horizon, ...marks.map((m) => Number(m.dataset.t) || 0));
    if (slider) {
      if (slider.max !== String(end)) slider.max = String(end);
      const userBusy = pointerOnTimeline ||
        (document.activeElement === slider && performance.now() - lastTimelineInput < USER_GRACE_MS);
      if (!userBusy && slider.value !== String(t)) slider.value = String(t);
    }
    if (now) {
      const text = `${t.toFixed(1)} s / ${horizon.toFixed(1)} s`;
      if (now.textContent !== text) now.textContent = text;
    }
    const cutting = offerCut(f, t);
    offerRemove(f);
    for (const mark of marks) {
      const at = Number(mark.dataset.t) || 0;
      const place = end > 0 ? at / end : 0;
      if (mark.style.getPropertyValue("--at") !== place.toFixed(4)) mark.style.setProperty("--at", place.toFixed(4));
      mark.classList.toggle("near-start", place < 0.15); // its tooltip opens rightwards, not off the screen
      mark.classList.toggle("near-end", place > 0.85);
    }
    for (const step of document.querySelectorAll("#timeline-steps .mark, #run-script li.step")) {
      step.classList.toggle("cut", cutting && Number(step.dataset.t) > t);
    }
  }

  // "Cut later steps" is offered while some step is still to come: checked, the next perturbation also cuts them
  // from the script (the server's default keeps them). The timeline strikes out what would go. True when checked.
  function offerCut(f, t) {
    const choice = document.getElementById("cut-later-choice");
    const box = document.getElementById("cut-later");
    if (!choice || !box) return false;
    const later = [...document.querySelectorAll("#timeline-steps .mark")].some((m) => Number(m.dataset.t) > t);
    const offered = Boolean(f.run) && later;
    if (choice.hidden === offered) choice.hidden = !offered;
    if (!offered && box.checked) box.checked = false;
    return box.checked;
  }

  // The step whose marker was clicked last (the run went just before it): the run bar offers to remove it. After a
  // removal by the keyboard, the focus goes to the marker now in its place, once the new markers have come.
  let chosenStep = null;
  let refocusStep = null;

  function offerRemove(f) {
    const button = document.getElementById("remove-step");
    const steps = [...document.querySelectorAll("#timeline-steps .mark")];
    const mark = chosenStep && steps.find((m) => m.dataset.index === chosenStep.index && m.dataset.label === chosenStep.label);
    if (button) {
      const shown = Boolean(mark && f.run);
      if (button.hidden === shown) button.hidden = !shown;
      const label = mark ? `Remove step ${Number(mark.dataset.index) + 1}: ${mark.dataset.label}` : "Remove step";
      if (button.getAttribute("aria-label") !== label) button.setAttribute("aria-label", label);
      button.title = label;
    }
    if (refocusStep !== null && !document.activeElement?.closest("#timeline-steps")) {
      (steps[Math.min(refocusStep, steps.length - 1)] || document.getElementById("timeline"))?.focus();
      refocusStep = null;
    }
  }

  // One button per chapter with a time: reached (its time), or pinned to a time still to come (drawn hollow).
  function drawChapters(story) {
    const holder = document.getElementById("timeline-chapters");
    if (!holder) return;
    const chapters = (story && story.chapters) || [];
    while (holder.children.length > chapters.length) holder.lastElementChild.remove();
    chapters.forEach((chapter, index) => {
      let mark = holder.children[index];
      if (!mark) {
        mark = document.createElement("button");
        mark.type = "button";
        mark.className = "mark chapter";
        holder.appendChild(mark);
      }
      const reached = chapter.t !== null && chapter.t !== undefined;
      const t = reached ? chapter.t : chapter.at;
      mark.hidden = t === null || t === undefined;
      if (mark.hidden) return;
      const time = `${Number(t.toFixed(3))} s`;
      const label = `Chapter ${index + 1}, ${reached ? `reached at ${time}` : chapter.when}: ${chapter.text}`;
      if (mark.dataset.t !== String(t)) mark.dataset.t = String(t);
      if (mark.getAttribute("aria-label") !== label) {
        mark.setAttribute("aria-label", label);
        mark.dataset.label = `Chapter ${index + 1} (${time}): ${chapter.text}`;
      }
      mark.classList.toggle("planned", !reached);
      mark.classList.toggle("current", index === story.current);
    });
  }

  // A chapter's marker seeks just before it, as a step's does (those are ws-send buttons of the server's HTML).
  function seekBefore(mark) {
    if (!socket || !frame || !frame.run) return;
    lastSender = mark;
    socket.send(JSON.stringify({ action: "seek", t: Math.max(0, Number(mark.dataset.t) - SEEK_BEFORE) }));
  }

  // A step is removed through its row of the script list (whose button sends the frame that names it).
  function removeStep(index) {
    const row = document.querySelector(`#run-script li[data-index="${CSS.escape(index)}"]`);
    row?.querySelector("button.remove")?.click();
  }

  // ---------------------------------------------------------------- frames

  function applyFrame(f) {
    const started = performance.now();
    frame = f;
    stats.frames++;
    for (const [name, spec] of Object.entries(f.diagrams || {})) applyDiagram(name, spec || {});
    applyStory(f.story);
    applyTimeline(f);
    refreshPickers();
    if (errorRun !== null && (f.run || "") !== errorRun) clearErrors(); // another run: errors about the old one are moot
    // For tests and CSS: <body data-frame data-seq data-run data-playing>.
    Object.assign(document.body.dataset, {
      frame: String(f.frame ?? ""), seq: String(f.last_seq ?? ""), run: f.run || "", playing: String(!!f.playing),
    });
    if (f.run) rememberRun(f.run);
    announce(f);
    countUnlisted(f);
    stats.applyMs += performance.now() - started;
    if (pending.size) pump();
  }

  // ---------------------------------------------------------------- story

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  }

  function applyStory(story) {
    if (!story || !document.getElementById("story")) return;
    const current = story.current;
    setText("story-count", current === null ? "Not begun" : `Chapter ${current + 1} of ${story.count}`);
    if (story.text) setText("story-text", story.text);
    const notice = setText("story-notice", story.notice || "");
    if (notice) notice.hidden = !story.off_script;
    const back = document.getElementById("story-back");
    const next = document.getElementById("story-next");
    if (back) back.disabled = current === null;
    if (next) next.disabled = story.next === null && !!(frame && frame.run);
    for (const d of diagrams.values()) d.story = [];
    for (const [name, ids] of Object.entries(story.highlight || {})) {
      const d = diagramState(name);
      if (d) d.story = ids.map(String);
    }
    for (const d of diagrams.values()) if (d.fig.isConnected) markActive(d);
  }

  let socket = null; // the ws extension's socket wrapper, for the story's buttons
  function storyButton(which) {
    const story = frame && frame.story;
    if (!story) return;
    if (which === "next") {
      if (!frame.run || !socket) document.getElementById("start-form")?.requestSubmit(); // a story begins a run
      else socket.send(JSON.stringify({ action: "play" }));
    } else if (story.current !== null && socket) {
      // Just past the previous chapter's time, so that the chapter is reached (the slider would round the time).
      const previous = story.current > 0 ? story.chapters[story.current - 1].t + 0.001 : 0;
      socket.send(JSON.stringify({ action: "seek", t: previous }));
    }
  }

  // Screen readers hear the run's state when it changes, not the status line that is redrawn every frame.
  function announce(f) {
    const el = document.getElementById("run-state");
    const text = !f.run ? "" : f.stopped ? `Ended: ${f.stopped}` : f.playing ? "Playing" : "Paused";
    if (el && el.textContent !== text) el.textContent = text;
  }

  // Sequence numbers tell whether the log missed anything: events that came and went between two frames
  // (more than the log lists) are counted, so the reader knows the Events link has more.
  let seenRun = null, seenSeq = -1, unlisted = 0;
  function countUnlisted(f) {
    if (f.run !== seenRun || f.last_seq < seenSeq) unlisted = 0; // another run, or a rewind
    else if (f.last_seq > seenSeq) {
      let listed = 0; // of the events since the previous frame (rows newest first)
      for (const row of document.querySelectorAll("#event-log li[data-seq]")) {
        if (Number(row.dataset.seq) <= seenSeq) break;
        listed++;
      }
      unlisted += Math.max(0, f.last_seq - seenSeq - listed);
    }
    seenRun = f.run;
    seenSeq = f.last_seq;
    const el = document.getElementById("log-gap");
    const text = unlisted ? `${unlisted} events went by between frames without being listed; the Events link has them all.` : "";
    if (el && el.textContent !== text) el.textContent = text;
  }

  // Keep the live run's id in the address, so that a reload rejoins the run instead of losing it.
  function rememberRun(run) {
    const url = new URL(location.href);
    if (url.searchParams.get("run") === run) return;
    url.searchParams.set("run", run);
    history.replaceState(history.state, "", url);
  }

  // Read #frame-data and apply it if it is a new frame.
  function readFrame() {
    const el = document.getElementById("frame-data");
    const text = el && el.getAttribute("data-frame");
    if (!text || text === lastFrameText) return;
    lastFrameText = text;
    let parsed;
    try { parsed = JSON.parse(text); } catch (err) { return console.warn("Unreadable frame-data", err); }
    applyFrame(parsed);
  }

  // Test hook: process a websocket message's HTML the way the ws extension does (OOB swaps), then apply it.
  function applyFrameHtml(html) {
    window.htmx.swap(document.getElementById("live"), html, { swapStyle: "none" });
    readFrame();
  }

  // ---------------------------------------------------------------- swaps in place

  const MORPH_IDS = new Set(["metrics", "event-log"]);
  const MORPH_MIN_ELEMENTS = 16; // below this a plain swap costs about the same: leave it to htmx
  const HTMX_ATTRIBUTE = /^(?:data-)?(?:hx|ws)-/;

  // True when the element or a descendant carries an htmx attribute: such content needs htmx's processing.
  function needsHtmx(root) {
    const hasIt = (el) => el.getAttributeNames().some((name) => HTMX_ATTRIBUTE.test(name));
    if (hasIt(root)) return true;
    for (const el of root.getElementsByTagName("*")) if (hasIt(el)) return true;
    return false;
  }

  const keyOf = (node) => (node.nodeType === Node.ELEMENT_NODE ? node.id || node.getAttribute("data-seq") || null : null);

  // `hidden` on a log row is the page's filter (filterLog), not the server's: kept, so a frame touches only new rows.
  function syncAttributes(el, next) {
    const keepHidden = el.parentElement !== null && el.parentElement.id === "event-log";
    for (const name of el.getAttributeNames()) {
      if (!next.hasAttribute(name) && !(keepHidden && name === "hidden")) el.removeAttribute(name);
    }
    for (const name of next.getAttributeNames()) {
      const value = next.getAttribute(name);
      if (el.getAttribute(name) !== value) el.setAttribute(name, value);
    }
  }

  // Make `el` (in the page) equal to `next` (parsed, same tag), touching only what differs. Children with a key
  // (id or data-seq) are matched by key, the others by position among the unkeyed; new nodes are moved over from
  // `next`, old ones without a counterpart removed.
  function morph(el, next) {
    if (el.nodeType !== Node.ELEMENT_NODE) {
      if (el.nodeValue !== next.nodeValue) el.nodeValue = next.nodeValue;
      return;
    }
    syncAttributes(el, next);
    morphChildren(el, next);
  }

  function morphChildren(el, next) {
    const keyed = new Map();
    for (let c = el.firstElementChild; c; c = c.nextElementSibling) {
      const key = keyOf(c);
      if (key !== null) keyed.set(c.nodeName + "\u0001" + key, c);
    }
    let cursor = el.firstChild; // the first old child not yet matched or passed
    for (let child = next.firstChild; child;) {
      const following = child.nextSibling; // read first: `child` may move into `el`
      const key = keyOf(child);
      let match = null;
      if (key !== null) {
        match = keyed.get(child.nodeName + "\u0001" + key) || null;
        if (match) keyed.delete(child.nodeName + "\u0001" + key);
      } else if (cursor && keyOf(cursor) === null && cursor.nodeType === child.nodeType &&
                 cursor.nodeName === child.nodeName) {
        match = cursor;
      }
      if (!match) {
        el.insertBefore(child, cursor);
      } else {
        if (match === cursor) cursor = cursor.nextSibling;
        else el.insertBefore(match, cursor);
        morph(match, child);
      }
      child = following;
    }
    while (cursor) {
      const after = cursor.nextSibling;
      cursor.remove();
      cursor = after;
    }
  }

  // The events new since the previous frame (see the top of this file): on top, none twice, `keep` of each kind.
  function addLogRows(log, fresh) {
    const newest = log.querySelector("li[data-seq]");
    const shown = newest ? Number(newest.dataset.seq) : -1;
    const rows = [...fresh.children].filter((row) => Number(row.dataset.seq) > shown);
    if (!rows.length) return;
    for (const empty of log.querySelectorAll("li.empty")) empty.remove();
    log.prepend(...rows);
    const keep = Number(fresh.dataset.keep);
    if (!(keep >= 0)) return;
    const left = { true: keep, false: keep };
    for (const row of [...log.children]) {
      const routine = row.classList.contains("routine");
      if (left[routine] > 0) left[routine]--;
      else row.remove();
    }
  }

  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    const detail = event.detail;
    const target = detail && detail.target;
    if (!detail || !detail.shouldSwap || !(target instanceof Element) || !MORPH_IDS.has(target.id)) return;
    // hx-swap-oob="afterbegin": the fragment is the (cloned) element whose children go on top.
    if (target.id === "event-log" && detail.fragment instanceof Element && detail.fragment.id === "event-log") {
      addLogRows(target, detail.fragment);
      detail.shouldSwap = false;
      return;
    }
    // hx-swap-oob="true" (outerHTML): the fragment is a DocumentFragment holding the new element alone.
    const fragment = detail.fragment;
    const next = fragment instanceof DocumentFragment ? fragment.firstChild : null;
    if (!next || next !== fragment.lastChild || next.nodeName !== target.nodeName || next.id !== target.id) return;
    const started = performance.now();
    if (next.getElementsByTagName("*").length < MORPH_MIN_ELEMENTS || needsHtmx(next) || needsHtmx(target)) return;
    morph(target, next);
    detail.shouldSwap = false;
    stats.morphs++;
    stats.morphMs += performance.now() - started;
  });

  // ---------------------------------------------------------------- errors beside their control

  // The server answers a refused action with #messages (level "error"). It is shown next to the control that
  // sent the action, and cleared by the next action sent (or a new run): an error never outlives its cause.
  let lastSender = null;
  let errorRun = null;

  function clearErrors() {
    errorRun = null;
    for (const el of document.querySelectorAll(".control-error")) el.remove();
    const box = document.getElementById("messages");
    if (box && box.classList.contains("error") && box.childElementCount) box.replaceChildren();
  }

  function placeError() {
    const box = document.getElementById("messages");
    if (!box || !box.classList.contains("error") || !box.childElementCount) return;
    errorRun = frame ? frame.run || "" : "";
    if (!lastSender || !lastSender.isConnected) return; // no control to point at: it stays at the top
    const note = document.createElement("p");
    note.className = "control-error";
    note.setAttribute("role", "alert");
    note.textContent = box.textContent.trim();
    for (const el of document.querySelectorAll(".control-error")) el.remove();
    (lastSender.closest(".timebar") || lastSender).insertAdjacentElement("afterend", note); // under the run bar
    box.replaceChildren();
  }

  // ---------------------------------------------------------------- event log filters

  function fillNodeFilter() {
    const select = document.getElementById("log-node");
    if (!select) return;
    const names = [...new Set(Object.values((frame && frame.targets) || {}).flat())];
    if (select.dataset.names === names.join("\n")) return;
    const current = select.value;
    select.replaceChildren(new Option("every node", ""), ...names.map((n) => new Option(n, n, false, n === current)));
    select.dataset.names = names.join("\n");
  }

  function filterLog() {
    const type = document.getElementById("log-type")?.value || "";
    const node = document.getElementById("log-node")?.value || "";
    const routine = document.getElementById("log-routine")?.checked || false;
    let hidden = 0;
    for (const row of document.querySelectorAll("#event-log li[data-seq]")) {
      const isRoutine = row.classList.contains("routine");
      const shown = (!type || row.dataset.type === type) && (!node || row.dataset.nodes.split(" ").includes(node)) &&
        (routine || !isRoutine || type === row.dataset.type);
      if (!shown && isRoutine && !routine) hidden++;
      if (row.hidden === shown) row.hidden = !shown;
    }
    const note = document.getElementById("log-hidden");
    const text = hidden ? `${hidden} routine event${hidden === 1 ? "" : "s"} hidden` : "";
    if (note && note.textContent !== text) note.textContent = text;
  }

  // A click on an event's time seeks there, through the timeline (which sends the seek).
  function seekTo(t) {
    const slider = document.getElementById("timeline");
    if (!slider || !Number.isFinite(t)) return;
    slider.value = String(t);
    lastTimelineInput = performance.now();
    slider.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // ---------------------------------------------------------------- options of a list parameter

  // A text parameter made of options (registry Param.options, e.g. the algorithms to race) is offered as
  // checkboxes; the text stays the value sent, and editable for variants ("ring_hash-3": the part before "-").
  function optionParts(fieldset) {
    const input = fieldset.querySelector("input[type=text]");
    const separator = fieldset.dataset.separator;
    const tokens = input.value ? input.value.split(separator) : [];
    return { input, separator, tokens, base: (token) => token.split("-")[0] };
  }

  function optionsFromText(fieldset) {
    const { tokens, base } = optionParts(fieldset);
    const chosen = new Set(tokens.map(base));
    for (const box of fieldset.querySelectorAll("input[type=checkbox]")) box.checked = chosen.has(box.value);
  }

  function textFromOptions(fieldset) {
    const { input, separator, tokens, base } = optionParts(fieldset);
    const checked = [...fieldset.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
    const kept = tokens.filter((token) => checked.includes(base(token)));
    const added = checked.filter((value) => !kept.some((token) => base(token) === value));
    input.value = [...kept, ...added].join(separator);
  }

  // ---------------------------------------------------------------- share

  async function share() {
    const out = document.getElementById("share-output");
    const status = document.getElementById("share-status");
    const link = new URL((frame && frame.link) || location.pathname + location.search, location.origin).href;
    if (out) out.value = link;
    let copied = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(link);
        copied = true;
      }
    } catch { /* permission refused: fall back below */ }
    if (!copied && out) {
      out.focus();
      out.select(); // selected, so that copying by hand is one keystroke if execCommand fails too
      try { copied = document.execCommand("copy"); } catch { copied = false; }
    }
    if (status) status.textContent = copied ? "Link copied" : "Copy the link above";
  }

  // ---------------------------------------------------------------- wiring

  const saved = storedTheme();
  if (saved) root.dataset.theme = saved;
  updateToggle();
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if (!root.dataset.theme) { updateToggle(); rerenderAllMermaid(); } // no explicit choice: follow the OS
  });

  // Delegated, so they survive any server swap of the controls.
  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest("#theme-toggle")) setTheme(effectiveTheme() === "dark" ? "light" : "dark");
    else if (target.closest("#share-button")) share();
    else if (target.closest("#story-next")) storyButton("next");
    else if (target.closest("#story-back")) storyButton("back");
    else if (target.closest(".group-picker button")) cycleGroup(target.closest(".group-picker button"));
    else if (target.closest("#event-log button.seek")) seekTo(Number(target.closest("li").dataset.t));
    else if (target.closest("#timeline-chapters .mark")) seekBefore(target.closest(".mark"));
    else if (target.closest("#timeline-steps .mark")) {
      const mark = target.closest(".mark"); // its own ws-send seeks just before it
      chosenStep = { index: mark.dataset.index, label: mark.dataset.label };
      if (frame) applyTimeline(frame);
    } else if (target.closest("#remove-step") && chosenStep) removeStep(chosenStep.index);
    else if (target.closest(".details-close")) {
      const box = target.closest(".diagram-details");
      for (const d of diagrams.values()) if (d.box === box) closeDetails(d);
    } else {
      const hit = detailsTarget(target);
      if (hit) showDetails(hit.d, hit.id);
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      for (const d of diagrams.values()) if (d.selected !== null) closeDetails(d);
      return;
    }
    if ((event.key === "Delete" || event.key === "Backspace") && event.target instanceof Element &&
        event.target.matches("#timeline-steps .mark")) {
      event.preventDefault();
      refocusStep = Number(event.target.dataset.index);
      removeStep(event.target.dataset.index);
      return;
    }
    if (event.key !== "Enter" && event.key !== " ") return;
    const hit = event.target instanceof Element ? detailsTarget(event.target) : null;
    if (!hit) return;
    event.preventDefault();
    showDetails(hit.d, hit.id);
    hit.d.box.querySelector(".details-actions button, .details-close")?.focus(); // the keyboard follows the box
  });
  // Timeline: note when the user holds or last touched the slider, so frames do not move it under them.
  const touchTimeline = (event) => {
    if (!(event.target instanceof Element) || !event.target.closest("#timeline")) return;
    lastTimelineInput = performance.now();
    chosenStep = null; // the slider moved: no step is chosen any more
    if (event.type === "pointerdown") pointerOnTimeline = true;
  };
  const releaseTimeline = () => {
    if (pointerOnTimeline) lastTimelineInput = performance.now();
    pointerOnTimeline = false;
  };
  ["pointerdown", "input", "keydown"].forEach((type) => document.addEventListener(type, touchTimeline));
  ["pointerup", "pointercancel"].forEach((type) => document.addEventListener(type, releaseTimeline));

  document.addEventListener("input", (event) => {
    const fieldset = event.target instanceof Element && event.target.closest("fieldset.options");
    if (fieldset && event.target.type === "text") optionsFromText(fieldset);
  });
  document.querySelectorAll("fieldset.options").forEach(optionsFromText);
  document.addEventListener("htmx:wsAfterMessage", () => { readFrame(); placeError(); filterLog(); });
  // A perturbation sent while "Cut later steps" is checked says so (the websocket frame's `cut_later`).
  document.addEventListener("htmx:wsConfigSend", (event) => {
    const choice = document.getElementById("cut-later-choice");
    const params = event.detail && event.detail.parameters;
    if (params && params.action === "command" && choice && !choice.hidden && document.getElementById("cut-later").checked) {
      params.cut_later = true;
    }
  });
  document.addEventListener("htmx:wsAfterSend", (event) => {
    lastSender = event.target instanceof Element ? event.target : null;
    clearErrors();
  });
  document.addEventListener("change", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest(".log-filters")) filterLog();
    else if (target.id === "cut-later" && frame) applyTimeline(frame);
    else if (target.matches("fieldset.options input[type=checkbox]")) textFromOptions(target.closest("fieldset"));
    else if (target.id === "preset-select") {
      const url = new URL(location.pathname, location.origin);
      if (target.value) url.searchParams.set("preset", target.value);
      location.assign(url); // a preset is a new page: its story, its scenario, its pictures at t = 0
    }
  });
  // After a reconnect the server no longer knows which run this page watches: say so, and get a full frame.
  document.addEventListener("htmx:wsOpen", (event) => {
    socket = event.detail.socketWrapper;
    const run = document.body.dataset.run;
    if (run) event.detail.socketWrapper.send(JSON.stringify({ action: "join", run }));
  });
  document.addEventListener("htmx:afterSettle", readFrame);

  window.playground = {
    applyFrame,
    applyFrameHtml,
    readFrame,
    stats, // frames applied, Mermaid renders (attempts) and errors, last render time, total apply time
    get renderCount() { return stats.renders; },
    // Resolves when no Mermaid render is running or queued.
    idle: () => (!rendering && !pending.size ? Promise.resolve() : new Promise((r) => idleWaiters.push(r))),
  };

  // The first screen: the workspace fills what the rows above it leave of the window (see site.css).
  const workspace = document.querySelector(".live > .workspace");
  if (workspace) {
    const measure = () => {
      const top = `${Math.round(workspace.getBoundingClientRect().top + window.scrollY)}px`;
      if (root.style.getPropertyValue("--workspace-top") !== top) root.style.setProperty("--workspace-top", top);
    };
    const watcher = new ResizeObserver(measure);
    let rows = [];
    const watchRows = () => {
      const above = [];
      for (const el of workspace.parentElement.children) {
        if (el === workspace) break;
        above.push(el); // every row above the workspace, including ones added later (a connection notice)
      }
      if (above.length === rows.length && above.every((el, i) => el === rows[i])) return; // a swap below it
      rows = above;
      above.forEach((el) => watcher.observe(el));
      measure();
    };
    new MutationObserver(watchRows).observe(workspace.parentElement, { childList: true });
    watchRows();
  }

  readFrame(); // the t=0 frame that came with the page
  filterLog();
})();

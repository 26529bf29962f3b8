/* Connection notices for the live page: a status line (role=status) saying when the websocket is lost, when it
 * is back, and when the run ended or moved to another worker; and controls that say they are waiting.
 *
 * Only the htmx ws extension's events are used (htmx:wsConnecting, wsOpen, wsClose, wsError, wsConfigSend,
 * wsAfterMessage): the extension reconnects by itself after an abnormal close (1006, 1011-1013) and queues what
 * a form sends meanwhile; live.js rejoins the run by id on wsOpen. This script only tells the viewer. The line is
 * made here, before #messages, so the templates need nothing but this script.
 */
(() => {
  "use strict";
  const RECONNECTS = [1006, 1011, 1012, 1013]; // the close codes after which the extension reconnects
  const SHOW_BACK_MS = 4000; // "Connection back" stays this long
  // Reconnect within a few seconds, never minutes (the extension's default doubles up to 64 s), with jitter so
  // that a class whose web process died does not knock on the next one all at once.
  if (window.htmx) htmx.config.wsReconnectDelay = (retry) => Math.min(5000, 500 * 2 ** retry) * (0.5 + Math.random() / 2);
  let line = null;
  let lost = false;
  let queued = false; // a control was used while the connection was lost
  let hideTimer = 0;

  const STYLES = {
    lost: { border: "var(--danger)", background: "var(--danger-bg)" },
    info: { border: "var(--accent)", background: "transparent" },
  };

  function statusLine() {
    if (line && document.body.contains(line)) return line;
    const live = document.getElementById("live");
    if (!live) return null;
    line = document.createElement("p");
    line.id = "connection-status";
    line.setAttribute("role", "status");
    line.hidden = true;
    Object.assign(line.style, { margin: "0.5rem 0", padding: "0.4rem 0.8rem", borderRadius: "0.4rem" });
    live.insertBefore(line, document.getElementById("messages") || live.firstChild);
    return line;
  }

  function say(text, kind) {
    const el = statusLine();
    if (!el) return;
    clearTimeout(hideTimer);
    el.textContent = text;
    el.dataset.state = kind;
    el.hidden = !text;
    const style = STYLES[kind === "lost" ? "lost" : "info"];
    el.style.border = `1px solid ${style.border}`;
    el.style.background = style.background;
    if (kind === "back") hideTimer = setTimeout(() => say("", "open"), SHOW_BACK_MS);
  }

  // -- controls that wait -------------------------------------------------------------------------------------
  // The control that sent: a button itself, a form's submit button, or a select or slider (busy, no note).
  function markWaiting(control, submitter) {
    const button = control instanceof HTMLFormElement
      ? submitter || control.querySelector("button[type=submit], button:not([type])")
      : control;
    if (!(button instanceof HTMLElement) || button.getAttribute("aria-busy") === "true") return;
    button.setAttribute("aria-busy", "true");
    if (!(button instanceof HTMLButtonElement)) return;
    const note = document.createElement("span");
    note.className = "pg-waiting";
    note.textContent = lost ? " (waiting for the connection…)" : " …";
    button.append(note);
  }

  function clearWaiting() {
    document.querySelectorAll("#live [aria-busy=true]").forEach((button) => {
      button.removeAttribute("aria-busy");
      button.querySelectorAll(".pg-waiting").forEach((note) => note.remove());
    });
  }

  // -- the socket -----------------------------------------------------------------------------------------------
  const lostText = () =>
    "Connection lost. Reconnecting… " +
    (queued ? "Your command waits until the connection is back." : "Controls you use now act once it is back.");

  document.addEventListener("htmx:wsConnecting", () => {
    if (lost) say(lostText(), "lost");
  });
  document.addEventListener("htmx:wsOpen", () => {
    if (!lost) return;
    lost = queued = false;
    say(document.body.dataset.run ? "Connection back: rejoining the run." : "Connection back.", "back");
  });
  document.addEventListener("htmx:wsClose", (event) => {
    const code = event.detail && event.detail.event ? event.detail.event.code : 0;
    lost = true;
    if (RECONNECTS.includes(code)) {
      say(lostText(), "lost");
    } else {
      say("The connection is closed. Reload the page to reconnect.", "lost");
    }
  });
  document.addEventListener("htmx:wsError", () => {
    if (!lost) say("The connection failed. Reconnecting…", "lost");
    lost = true;
  });

  document.addEventListener("htmx:wsConfigSend", (event) => {
    const trigger = event.detail && event.detail.triggeringEvent;
    markWaiting(event.target, trigger && trigger.submitter);
    if (!lost) return;
    queued = true;
    say(lostText(), "lost");
  });

  document.addEventListener("htmx:wsAfterMessage", (event) => {
    clearWaiting();
    const text = (event.detail && event.detail.message) || "";
    if (text.includes("This live run has ended")) say("This run has ended. Press Start, or open its Share link.", "ended");
    else if (text.includes("another took it over")) say("The run moved to another worker; it goes on.", "back");
    else if (text.includes("no other worker could take it over")) say("This run was lost: its Share link replays it.", "lost");
  });

  window.playgroundConnection = { say, get lost() { return lost; } }; // for the tests
})();

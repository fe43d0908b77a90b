/**
 * `GET /status`: one self-contained HTML page (no external assets) that reads
 * `/api/v1/upstreams` every 2 s and shows, per upstream, a table of its servers; buttons set a
 * server's state with `PUT …/state`.
 *
 * The page itself holds no data, so it is served without a token; its requests carry the token.
 * The operator types it into the page's form, or opens `/status#token=…` once (a fragment never
 * reaches a server or its logs; the page moves it out of the address bar). It is kept in
 * `sessionStorage`: this tab only, gone when the tab closes.
 *
 * The page's script and style are allowed by their SHA-256 in the Content-Security-Policy, and
 * nothing else: no other script, no frames around it (the buttons cannot be click-jacked), no
 * requests but to this origin.
 *
 * @module
 */
import { createHash } from "node:crypto";

const STYLE = `
:root { color-scheme: light; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --off: #6e7781;
  --line: #d0d7de; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px; font: 14px/1.4 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; color: #1f2328; background: #fff; }
header { display: flex; align-items: baseline; gap: 16px; margin-bottom: 12px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 0; }
.muted { color: var(--off); }
.banner { padding: 8px 12px; border-radius: 6px; background: #ffebe9; color: var(--bad);
  margin-bottom: 12px; }
form#login { padding: 12px; border: 1px solid var(--line); border-radius: 6px; max-width: 520px; }
form#login input { font: inherit; padding: 4px 6px; width: 22em; }
section { margin-bottom: 24px; }
.upstream-head { display: flex; align-items: baseline; gap: 12px; margin-bottom: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
th { background: var(--bg); font-weight: 600; font-size: 12px; text-transform: uppercase;
  letter-spacing: .03em; color: #57606a; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.down td { background: #fff5f5; }
.id { font-weight: 600; }
.tag { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px;
  border: 1px solid var(--line); color: #57606a; margin-left: 4px; }
.state { display: inline-block; min-width: 52px; text-align: center; padding: 1px 8px;
  border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.state-ready { background: var(--ok); }
.state-drain { background: var(--warn); }
.state-maint { background: var(--off); }
.health-up, .health-ok { color: var(--ok); font-weight: 600; }
.health-down, .health-failed { color: var(--bad); font-weight: 600; }
.health-unknown { color: var(--off); }
.dots { margin-left: 6px; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 2px;
  background: var(--ok); }
.dot.fail { background: var(--bad); }
button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid var(--line);
  border-radius: 6px; background: #fff; cursor: pointer; }
td.actions button { margin-right: 3px; }
button:disabled { background: var(--bg); color: var(--off); cursor: default; }
button.link { border: none; background: none; color: #0969da; padding: 0; }
`;

const SCRIPT = `
"use strict";
var KEY = "sticky-gateway-admin-token";
var REFRESH_MS = 2000;
var timer = 0;
var shown = null;
var fromHash = /^#token=(.+)$/.exec(location.hash);
if (fromHash) {
  sessionStorage.setItem(KEY, decodeURIComponent(fromHash[1]));
  history.replaceState(null, "", location.pathname);
}
function el(tag, cls, text) {
  var node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function authHeaders(extra) {
  var h = extra || {};
  var token = sessionStorage.getItem(KEY);
  if (token) h.Authorization = "Bearer " + token;
  return h;
}
function ago(ms) {
  if (ms === null || ms === undefined) return "never";
  var s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return s + " s ago";
  var m = Math.round(s / 60);
  if (m < 90) return m + " min ago";
  var h = Math.round(m / 60);
  if (h < 48) return h + " h ago";
  return Math.round(h / 24) + " d ago";
}
function num(n, digits) {
  if (n === null || n === undefined) return "\\u2013";
  return n >= 100 ? String(Math.round(n)) : n.toFixed(digits);
}
function count(n) {
  return n.toLocaleString("en-US");
}
function banner(text) {
  var b = document.getElementById("banner");
  b.textContent = text || "";
  b.hidden = !text;
}
function showLogin(message) {
  clearTimeout(timer);
  document.getElementById("login").hidden = false;
  document.getElementById("login-why").textContent = message;
  document.getElementById("upstreams").replaceChildren();
  document.getElementById("updated").textContent = "";
  document.getElementById("token").focus();
}
function schedule() {
  clearTimeout(timer);
  timer = setTimeout(refresh, REFRESH_MS);
}
function refresh() {
  fetch("/api/v1/upstreams", { headers: authHeaders(), cache: "no-store" })
    .then(function (res) {
      if (res.status === 401) {
        var had = sessionStorage.getItem(KEY);
        sessionStorage.removeItem(KEY);
        showLogin(had ? "That token was refused." : "This admin listener needs its token.");
        return;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json().then(function (data) {
        banner("");
        render(data);
        schedule();
      });
    })
    .catch(function (error) {
      banner("Cannot read /api/v1/upstreams (" + error.message + "); retrying.");
      schedule();
    });
}
function setState(upstream, id, state) {
  var url = "/api/v1/upstreams/" + encodeURIComponent(upstream) + "/servers/" +
    encodeURIComponent(id) + "/state";
  return fetch(url, {
    method: "PUT",
    headers: authHeaders({ "Content-Type": "application/json" }),
    body: JSON.stringify({ state: state }),
  }).then(function (res) {
    if (res.status === 401) return showLogin("That token was refused.");
    if (!res.ok) {
      return res.json().then(function (e) { banner("Could not set " + id + " to " + state +
        ": " + (e.error || res.status)); });
    }
    banner("");
    refresh();
  }).catch(function (error) { banner("Could not set " + id + ": " + error.message); });
}
function healthCell(h) {
  var td = el("td", "health");
  var word = h.active === "down" ? "down" : h.active === "unknown" ? "unknown"
    : h.passive === "failed" ? "failed" : h.active === "up" ? "up" : "ok";
  td.appendChild(el("span", "health-" + word, word));
  if (h.history.length > 0) {
    var dots = el("span", "dots");
    dots.title = "last " + h.history.length + " checks, oldest first";
    h.history.slice(-10).forEach(function (passed) {
      dots.appendChild(el("span", passed ? "dot" : "dot fail"));
    });
    td.appendChild(dots);
  }
  return td;
}
function serverRow(upstream, s, nowMs) {
  var bad = s.health.passive === "failed" || s.health.active === "down" ||
    s.health.active === "unknown";
  var tr = el("tr", bad ? "down" : "");
  tr.dataset.server = s.id;
  var name = el("td");
  name.appendChild(el("span", "id", s.id));
  if (s.address !== s.id) name.appendChild(el("span", "muted", " " + s.address));
  if (s.backup) name.appendChild(el("span", "tag", "backup"));
  if (s.weight !== 1) name.appendChild(el("span", "tag", "weight " + s.weight));
  if (s.cookieValue) name.title = "cookie value " + s.cookieValue;
  tr.appendChild(name);
  var state = el("td");
  state.appendChild(el("span", "state state-" + s.state, s.state));
  if (s.drain && s.drain.inFlight === 0) state.appendChild(el("span", "tag idle", "idle"));
  tr.appendChild(state);
  tr.appendChild(healthCell(s.health));
  tr.appendChild(el("td", "num inflight", s.inFlight));
  tr.appendChild(el("td", "num rate", num(s.requests.perSecond, 1)));
  tr.appendChild(el("td", "num latency", num(s.latencyMs.p50, 1) + " / " +
    num(s.latencyMs.p99, 1)));
  var sticky = el("td", "num sticky", count(s.sticky.hit) + " / " + count(s.sticky.new) +
    " / " + count(s.sticky.repin));
  sticky.title = "invalid " + s.sticky.invalid + ", refused " + s.sticky.refused;
  tr.appendChild(sticky);
  tr.appendChild(el("td", "last-sticky",
    s.lastStickyMs === null ? "never" : ago(nowMs - s.lastStickyMs)));
  var actions = el("td", "actions");
  ["ready", "drain", "maint"].forEach(function (target) {
    var b = el("button", "", target);
    b.dataset.action = target;
    b.disabled = s.state === target;
    b.setAttribute("aria-pressed", String(s.state === target));
    b.addEventListener("click", function () { setState(upstream, s.id, target); });
    actions.appendChild(b);
  });
  tr.appendChild(actions);
  return tr;
}
var COLUMNS = [["Server", ""], ["State", ""], ["Health", ""], ["In flight", "num"],
  ["Req/s", "num"], ["p50 / p99 ms", "num"], ["Sticky hit / new / repin", "num"],
  ["Last sticky", ""], ["Set state", ""]];
function render(data) {
  shown = data;
  document.getElementById("login").hidden = true;
  document.getElementById("signout").hidden = !sessionStorage.getItem(KEY);
  document.getElementById("updated").textContent = "updated " +
    new Date(data.nowMs).toLocaleTimeString() + ", every 2 s";
  var main = document.getElementById("upstreams");
  var sections = data.upstreams.map(function (u) {
    var section = el("section");
    section.dataset.upstream = u.name;
    var head = el("div", "upstream-head");
    head.appendChild(el("h2", "", u.name));
    var ready = u.servers.filter(function (s) {
      return s.state === "ready" && s.health.passive === "ok" &&
        (s.health.active === "unchecked" || s.health.active === "up");
    }).length;
    head.appendChild(el("span", "muted", ready + " of " + u.servers.length +
      " servers take new clients" + (u.stickyCookie ? ", cookie " + u.stickyCookie : ", not sticky")));
    section.appendChild(head);
    var table = el("table");
    var tr = el("tr");
    COLUMNS.forEach(function (c) { tr.appendChild(el("th", c[1], c[0])); });
    table.appendChild(el("thead")).appendChild(tr);
    var body = el("tbody");
    u.servers.forEach(function (s) { body.appendChild(serverRow(u.name, s, data.nowMs)); });
    table.appendChild(body);
    section.appendChild(table);
    return section;
  });
  main.replaceChildren.apply(main, sections);
}
document.getElementById("login").addEventListener("submit", function (event) {
  event.preventDefault();
  var input = document.getElementById("token");
  sessionStorage.setItem(KEY, input.value.trim());
  input.value = "";
  document.getElementById("login").hidden = true;
  refresh();
});
document.getElementById("signout").addEventListener("click", function () {
  sessionStorage.removeItem(KEY);
  location.reload();
});
refresh();
`;

function digest(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

/** The status page's Content-Security-Policy: its own script and style and nothing else. */
export const STATUS_PAGE_CSP: string = [
  "default-src 'none'",
  `script-src ${digest(SCRIPT)}`,
  `style-src ${digest(STYLE)}`,
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The whole status page: markup, style and script in one document. */
export const STATUS_PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sticky-gateway status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>sticky-gateway</h1>
<span id="updated" class="muted">loading…</span>
<button id="signout" class="link" hidden>forget token</button>
</header>
<div id="banner" class="banner" role="alert" hidden></div>
<form id="login" hidden>
<p id="login-why"></p>
<label>Admin token <input id="token" type="password" autocomplete="off" required></label>
<button type="submit">Open</button>
<p class="muted">Kept in this browser tab only (sessionStorage). <code>/status#token=…</code> works too.</p>
</form>
<main id="upstreams"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;

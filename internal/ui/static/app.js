// Regent status page: polls this member's REST API (same origin) every 2 s
// and renders the cluster. No dependencies and no innerHTML: member names,
// tags and history reasons are always inserted as text.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var TIMEOUT_MS = 5000;
  var HISTORY_SHOWN = 20;

  var state = {
    cluster: null, // last good /cluster body
    history: null, // last good /history body
    patroni: null, // last good /patroni body (optional)
    updated: 0, // Date.now() of the last good poll
    error: null, // message of the last failed poll, null after a good one
    renderFailed: false, // the last poll's answer could not be rendered
  };

  function $(id) {
    return document.getElementById(id);
  }

  // el builds an element: el("td", {class: "x", "data-label": "Role"}, child, "text", ...).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function replaceChildren(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    children.forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
  }

  // ---- formatting ----

  function humanBytes(n) {
    if (n === null || n === undefined) return "—";
    if (typeof n !== "number" || !isFinite(n)) return String(n);
    if (n < 1024) return n + " B";
    var units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    var v = n;
    var i = -1;
    do {
      v /= 1024;
      i++;
    } while (v >= 1024 && i < units.length - 1);
    return (v < 10 ? v.toFixed(1) : String(Math.round(v))) + " " + units[i];
  }

  function formatLSN(n) {
    if (typeof n !== "number" || !isFinite(n) || n < 0) return String(n);
    var hi = Math.floor(n / 4294967296);
    var lo = n % 4294967296;
    return (hi.toString(16) + "/" + lo.toString(16)).toUpperCase();
  }

  // parseTime accepts Regent's "2006-01-02T15:04:05.000000-07:00" (more
  // fractional digits than every engine parses) and plain ISO 8601.
  function parseTime(s) {
    if (typeof s !== "string" || s === "") return null;
    var d = new Date(s.replace(/(\.\d{3})\d+/, "$1"));
    return isNaN(d.getTime()) ? null : d;
  }

  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s ago";
    var m = Math.round(s / 60);
    if (m < 60) return m + " min ago";
    var h = Math.round(m / 60);
    if (h < 48) return h + " h ago";
    return Math.round(h / 24) + " d ago";
  }

  function timeElement(iso) {
    var d = parseTime(iso);
    if (!d) return el("span", { class: "muted" }, "time unknown");
    return el("time", { datetime: iso, title: d.toLocaleString() }, ago(Date.now() - d.getTime()));
  }

  // ---- fetching ----

  function getJSON(path) {
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, TIMEOUT_MS) : 0;
    return fetch(path, {
      cache: "no-store",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: ctl ? ctl.signal : undefined,
    })
      .then(function (resp) {
        if (resp.ok) return resp.json();
        return resp
          .json()
          .catch(function () { return null; })
          .then(function (body) {
            var detail = body && typeof body.error === "string" ? ": " + body.error : "";
            throw new Error(path + " answered HTTP " + resp.status + detail);
          });
      })
      .finally(function () {
        clearTimeout(timer);
      });
  }

  function poll() {
    Promise.all([
      getJSON("/cluster"),
      getJSON("/history"),
      getJSON("/patroni").catch(function () { return null; }),
    ])
      .then(function (res) {
        var c = res[0];
        var h = res[1];
        if (!c || typeof c !== "object" || !Array.isArray(c.members)) throw new Error("/cluster: unexpected answer");
        if (!Array.isArray(h)) throw new Error("/history: unexpected answer");
        state.cluster = c;
        state.history = h;
        state.patroni = res[2] && typeof res[2] === "object" ? res[2] : null;
        state.updated = Date.now();
        state.error = null;
        try {
          render();
        } catch (err) {
          // A bug of this page, not the member's: say so rather than
          // blaming the API.
          if (window.console) console.error(err);
          count("data-script-errors");
          state.error = "page error: " + ((err && err.message) || err);
          state.renderFailed = true;
          renderStatus();
        }
      })
      .catch(function (err) {
        state.error = err && err.name === "AbortError" ? "no answer within " + TIMEOUT_MS / 1000 + " s" : String((err && err.message) || err);
        state.renderFailed = false;
        renderStatus();
      })
      .finally(function () {
        setTimeout(poll, POLL_MS);
      });
  }

  // ---- rendering ----

  function leaderOf(c) {
    for (var i = 0; i < c.members.length; i++) if (c.members[i].role === "leader") return c.members[i];
    return null;
  }

  function render() {
    var c = state.cluster;
    var scope = c.scope || "cluster";
    setText($("scope"), scope);
    document.title = scope + " · Regent";
    renderServedBy();
    renderBanners(c);
    renderMembers(c);
    renderTopology(c);
    renderHistory(state.history);
    renderStatus();
    var app = $("app");
    app.setAttribute("data-ready", "true");
    app.setAttribute("aria-busy", "false");
  }

  function renderServedBy() {
    var p = state.patroni;
    var node = $("served-by");
    if (!p) {
      setText(node, "");
      return;
    }
    var name = p.patroni && p.patroni.name ? p.patroni.name : "this member";
    var text = "served by " + name + " (" + (p.role || "unknown role") + ", " + (p.state || "unknown state") + ")";
    var r = p.regent;
    if (r && r.action) text += " · last action: " + r.action + (r.reason ? " — " + r.reason : "");
    setText(node, text);
  }

  function renderBanners(c) {
    $("pause-banner").hidden = !c.pause;
    var sw = c.scheduled_switchover;
    var banner = $("switchover-banner");
    if (!sw) {
      banner.hidden = true;
      return;
    }
    var when = parseTime(sw.at);
    var parts = [el("strong", null, "Switchover scheduled"), " at ", when ? el("time", { datetime: sw.at }, when.toLocaleString()) : sw.at];
    if (sw.from) parts.push(" from ", el("strong", null, sw.from));
    if (sw.to) parts.push(" to ", el("strong", null, sw.to));
    else parts.push(" to the best replica");
    replaceChildren(banner, parts);
    banner.hidden = false;
  }

  function tagChips(tags) {
    var chips = [];
    if (!tags) return chips;
    if (tags.nofailover) chips.push("nofailover");
    if (tags.failover_priority !== undefined && tags.failover_priority !== null) chips.push("priority " + tags.failover_priority);
    if (tags.noloadbalance) chips.push("noloadbalance");
    if (tags.clonefrom) chips.push("clonefrom");
    if (tags.nosync) chips.push("nosync");
    if (tags.replicatefrom) chips.push("replicatefrom " + tags.replicatefrom);
    Object.keys(tags).forEach(function (k) {
      if (["nofailover", "failover_priority", "noloadbalance", "clonefrom", "nosync", "replicatefrom"].indexOf(k) < 0) {
        chips.push(k + "=" + JSON.stringify(tags[k]));
      }
    });
    return chips;
  }

  function healthyState(s) {
    return s === "running" || s === "streaming";
  }

  function renderMembers(c) {
    var leader = leaderOf(c);
    var self = state.patroni && state.patroni.patroni ? state.patroni.patroni.name : "";
    var rows = c.members.map(function (m) {
      var isLeader = m.role === "leader";
      var nameCell = el("th", { scope: "row", class: "member-name", "data-label": "Member" }, el("span", { class: "name" }, m.name));
      if (m.name === self) nameCell.appendChild(el("span", { class: "chip chip-self" }, "this member"));

      var roleCell = el(
        "td",
        { "data-label": "Role" },
        el("span", { class: "role role-" + (isLeader ? "leader" : "replica") }, isLeader ? el("span", { "aria-hidden": "true", class: "star" }, "★ ") : null, m.role || "unknown")
      );

      var stateCell = el("td", { "data-label": "State" }, el("span", { class: "state " + (healthyState(m.state) ? "state-ok" : "state-warn") }, m.state || "unknown"));
      if (m.pending_restart) stateCell.appendChild(el("span", { class: "chip chip-warn" }, "restart pending"));

      var tlWarn = leader && !isLeader && m.timeline && leader.timeline && m.timeline !== leader.timeline;
      var tlCell = el("td", { "data-label": "Timeline", class: "num" + (tlWarn ? " state-warn" : "") }, m.timeline ? String(m.timeline) : "—");

      var lagCell;
      if (isLeader) {
        lagCell = el("td", { "data-label": "Lag", class: "num muted" }, "—");
      } else {
        var lagText = humanBytes(m.lag);
        var title = "LSN " + (m.lsn || "unknown") + "; received " + (m.receive_lsn || "unknown") + " (" + humanBytes(m.receive_lag) + " behind); replayed " + (m.replay_lsn || "unknown") + " (" + humanBytes(m.replay_lag) + " behind)";
        var lagClass = typeof m.lag === "number" ? (m.lag > 16 * 1024 * 1024 ? "lag-high" : "lag-ok") : "lag-unknown";
        lagCell = el("td", { "data-label": "Lag", class: "num", title: title }, el("span", { class: lagClass }, lagText));
        if (typeof m.replay_lag === "number" && m.replay_lag !== m.lag) {
          lagCell.appendChild(el("span", { class: "sub" }, "replay " + humanBytes(m.replay_lag)));
        }
      }

      var addr = m.host ? m.host + (m.port ? ":" + m.port : "") : "—";
      var addrCell = el("td", { "data-label": "Address", class: "addr", title: m.api_url ? "REST API " + m.api_url : null }, el("code", null, addr));

      var chips = tagChips(m.tags);
      var tagCell = el("td", { "data-label": "Tags", class: "tags" });
      if (chips.length === 0) tagCell.appendChild(el("span", { class: "muted" }, "—"));
      chips.forEach(function (t) {
        tagCell.appendChild(el("span", { class: "chip" }, t));
      });

      return el(
        "tr",
        { "data-member": m.name, "data-role": m.role || "unknown", class: isLeader ? "is-leader" : null },
        nameCell,
        roleCell,
        stateCell,
        tlCell,
        lagCell,
        addrCell,
        tagCell
      );
    });
    if (rows.length === 0) {
      rows.push(el("tr", null, el("td", { colspan: 7, class: "muted" }, "No member has registered in the DCS.")));
    }
    replaceChildren($("member-rows"), rows);
    setText($("member-count"), "(" + c.members.length + ")");
  }

  // parents maps each member to the member it replicates from: its
  // tags.replicatefrom when that names another member, else the leader.
  // Members caught in a replicatefrom cycle hang from the leader.
  function parents(c) {
    var byName = {};
    c.members.forEach(function (m) {
      byName[m.name] = m;
    });
    var leader = leaderOf(c);
    var parent = {};
    c.members.forEach(function (m) {
      if (leader && m.name === leader.name) parent[m.name] = null;
      else {
        var rf = m.tags && m.tags.replicatefrom;
        parent[m.name] = rf && rf !== m.name && byName[rf] ? rf : leader ? leader.name : null;
      }
    });
    c.members.forEach(function (m) {
      var cur = parent[m.name];
      var steps = 0;
      while (cur && cur !== m.name && steps <= c.members.length) {
        cur = parent[cur];
        steps++;
      }
      if (cur) parent[m.name] = leader && m.name !== leader.name ? leader.name : null;
    });
    return parent;
  }

  function renderTopology(c) {
    var parent = parents(c);
    var kids = {};
    var roots = [];
    c.members.forEach(function (m) {
      var p = parent[m.name];
      if (p) (kids[p] = kids[p] || []).push(m);
      else roots.push(m);
    });
    function node(m) {
      var isLeader = m.role === "leader";
      var label = el(
        "span",
        { class: "node" + (isLeader ? " node-leader" : "") + (healthyState(m.state) ? "" : " node-warn") },
        isLeader ? el("span", { "aria-hidden": "true", class: "star" }, "★ ") : null,
        el("strong", null, m.name),
        " ",
        el("span", { class: "node-detail" }, isLeader ? "leader · TL " + (m.timeline || "?") : (m.state || "unknown") + " · lag " + humanBytes(m.lag))
      );
      var li = el("li", { "data-node": m.name }, label);
      var children = kids[m.name] || [];
      if (children.length) {
        var ul = el("ul", null);
        children.forEach(function (k) {
          ul.appendChild(node(k));
        });
        li.appendChild(ul);
      }
      return li;
    }
    var out = [];
    if (!leaderOf(c) && c.members.length) out.push(el("p", { class: "banner banner-error" }, "No leader: the cluster has no running primary right now."));
    if (c.members.length) {
      var tree = el("ul", { class: "tree", "aria-label": "Replication topology: each member under the member it replicates from" });
      roots.forEach(function (m) {
        tree.appendChild(node(m));
      });
      out.push(tree);
    } else {
      out.push(el("p", { class: "muted" }, "No members."));
    }
    replaceChildren($("topology"), out);
  }

  function eventKind(reason) {
    var r = String(reason || "").toLowerCase();
    if (r.indexOf("switchover") >= 0) return "switchover";
    if (r.indexOf("failover") >= 0) return "failover";
    if (r.indexOf("demot") >= 0) return "demotion";
    return "promotion";
  }

  function renderHistory(h) {
    var list = $("history");
    list.setAttribute("data-history-count", String(h.length));
    var entries = h.slice(-HISTORY_SHOWN).reverse();
    var items = entries.map(function (e) {
      if (!Array.isArray(e)) e = [];
      var tl = e[0];
      var lsn = e[1];
      var reason = e[2];
      var at = e[3];
      var who = e[4];
      var kind = eventKind(reason);
      var head = el(
        "p",
        { class: "event-head" },
        el("span", { class: "kind kind-" + kind }, kind),
        " ",
        who ? el("strong", null, who) : el("span", { class: "muted" }, "a member"),
        " became leader"
      );
      var meta = el("p", { class: "event-meta muted" }, timeElement(at), typeof tl === "number" ? " · timeline " + tl + " → " + (tl + 1) : "", typeof lsn === "number" ? " · at LSN " + formatLSN(lsn) : "");
      return el("li", { class: "event event-" + kind }, head, el("p", { class: "event-reason" }, reason ? String(reason) : "no reason recorded"), meta);
    });
    replaceChildren(list, items);
    $("history-empty").hidden = h.length > 0;
    var more = $("history-more");
    more.hidden = h.length <= HISTORY_SHOWN;
    setText(more, h.length > HISTORY_SHOWN ? h.length - HISTORY_SHOWN + " older entries not shown; see /history." : "");
    setText($("history-total"), h.length ? "(" + h.length + ")" : "");
  }

  function renderStatus() {
    var conn = $("conn");
    var app = $("app");
    if (state.error) {
      conn.className = "conn conn-err";
      setText(conn, state.renderFailed ? "cannot display the member's answer — retrying" : "member API unreachable — retrying");
      conn.title = state.error;
      app.classList.toggle("stale", state.updated > 0);
    } else if (state.updated) {
      conn.className = "conn conn-ok";
      setText(conn, "live");
      conn.title = "";
      app.classList.remove("stale");
    }
    var summary = "";
    if (state.cluster) {
      var l = leaderOf(state.cluster);
      summary = l ? "leader " + l.name + (l.timeline ? " · timeline " + l.timeline : "") : "no leader";
      if (state.cluster.pause) summary += " · paused";
    }
    setText($("leader-summary"), summary);
    if (state.error && state.updated === 0) setText($("age"), "never");
    tick();
  }

  function tick() {
    if (state.updated) setText($("age"), ago(Date.now() - state.updated));
  }

  // count records a problem on the root element (data-csp-violations,
  // data-script-errors) for the browser tests and for anyone inspecting
  // the page.
  function count(attr) {
    var app = $("app");
    if (app) app.setAttribute(attr, String(Number(app.getAttribute(attr) || 0) + 1));
  }
  document.addEventListener("securitypolicyviolation", function () {
    count("data-csp-violations");
  });
  window.addEventListener("error", function () {
    count("data-script-errors");
  });

  function start() {
    poll();
    setInterval(tick, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

// Berth Studio: the live parts of the server-rendered pages. Every call
// goes to the Studio's own origin (/ui/api/… is the API with the session's
// token); state-changing ones carry the page's CSRF token.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Operation events, live (server-sent events), until the operation ends;
// then the page reloads once to show the new state.
function followEvents(list) {
  const op = list.dataset.operation;
  const state = document.getElementById("op-state");
  const src = new EventSource("/ui/api/v1/operations/" + encodeURIComponent(op) + "/events?follow=true");
  src.addEventListener("event", (m) => {
    const ev = JSON.parse(m.data);
    const li = el("li", { class: "level-" + ev.level });
    li.append(el("time", { datetime: ev.time }, new Date(ev.time).toLocaleTimeString()), " ", ev.message);
    list.append(li);
  });
  src.addEventListener("end", (m) => {
    src.close();
    const o = JSON.parse(m.data);
    state.textContent = "Operation " + o.kind + " " + o.state + (o.error ? ": " + o.error.message : "");
    state.className = "op-state " + o.state.toLowerCase();
    if (!sessionStorage.getItem("berth-ended-" + op)) {
      sessionStorage.setItem("berth-ended-" + op, "1");
      setTimeout(() => location.reload(), 800);
    }
  });
  src.onerror = () => { state.textContent = "Reconnecting to the event stream…"; };
}

// Logs: the last lines; "Follow" streams what the replicas print next
// (the API's ?follow=true) until unchecked.
function logs(pre) {
  const follow = document.getElementById("logs-follow");
  let ctrl = null;
  const show = (text, append) => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = append ? pre.textContent + text : text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  async function load() {
    const r = await fetch(pre.dataset.src);
    const text = await r.text();
    show(r.ok ? text : "(logs unavailable: " + r.status + " " + text + ")");
  }
  async function stream() {
    ctrl = new AbortController();
    const r = await fetch(pre.dataset.src + "&follow=true", { signal: ctrl.signal });
    if (!r.ok) { show("(logs unavailable: " + r.status + " " + (await r.text()) + ")"); return; }
    show("");
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      show(dec.decode(value, { stream: true }), true);
    }
  }
  load();
  follow?.addEventListener("change", () => {
    ctrl?.abort();
    if (follow.checked) stream().catch(() => {});
    else load();
  });
}

// "Try it": scores the body from the server, which knows the key.
function tryIt(form) {
  const out = document.getElementById("try-result");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.textContent = "Scoring…";
    const r = await fetch(form.dataset.action, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: form.elements.body.value,
    });
    const a = await r.json().catch(() => ({ error: "HTTP " + r.status }));
    out.textContent = a.error ? "Error: " + a.error : "HTTP " + a.status + " in " + a.durationMs + " ms\n" + a.body;
  });
}

// Copy buttons for keys and new token secrets.
function copyButtons() {
  for (const b of document.querySelectorAll("button.copy")) {
    b.addEventListener("click", async () => {
      await navigator.clipboard.writeText(b.dataset.copy);
      b.textContent = "Copied";
      setTimeout(() => { b.textContent = "Copy"; }, 1500);
    });
  }
}

// Model upload with progress (XMLHttpRequest reports upload progress).
function upload(form) {
  const bar = document.getElementById("upload-progress");
  const result = document.getElementById("upload-result");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const file = form.elements.file.files[0];
    const q = new URLSearchParams({ name: form.elements.name.value, fileName: file.name,
      format: /\.(tar\.gz|tgz)$/.test(file.name) ? "tar.gz" : "file" });
    if (form.elements.description.value) q.set("description", form.elements.description.value);
    const x = new XMLHttpRequest();
    x.open("POST", form.dataset.action + "?" + q);
    x.setRequestHeader("X-CSRF-Token", csrf);
    x.setRequestHeader("Content-Type", "application/octet-stream");
    bar.hidden = false;
    x.upload.onprogress = (p) => { if (p.lengthComputable) bar.value = Math.round(100 * p.loaded / p.total); };
    x.onload = () => {
      if (x.status < 300) {
        const m = JSON.parse(x.responseText);
        result.textContent = "Registered " + m.name + " version " + m.version + ".";
        setTimeout(() => location.reload(), 600);
      } else {
        result.textContent = "Refused: " + (JSON.parse(x.responseText).error?.message || x.status);
      }
    };
    x.onerror = () => { result.textContent = "The upload failed."; };
    x.send(file);
  });
}

// Plots of a service's (or compute's) traffic, redrawn every 10 s.
const series = [
  { title: "Requests per second", lines: [["requests/s", (p) => p.requestsPerSecond]] },
  { title: "Latency (ms)", lines: [["p50", (p) => p.latencyP50Ms ?? null], ["p99", (p) => p.latencyP99Ms ?? null]] },
  { title: "Errors per second", errors: true },
  { title: "Queue time (ms)", lines: [["p50", (p) => p.queueP50Ms ?? null], ["p99", (p) => p.queueP99Ms ?? null]] },
  { title: "Replicas", lines: [["ready", (p) => p.readyReplicas], ["desired", (p) => p.desiredReplicas]] },
];
const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

function plots(box) {
  const charts = [];
  async function draw() {
    const r = await fetch(box.dataset.metrics);
    if (!r.ok) { box.textContent = "Metrics unavailable (" + r.status + ")."; return; }
    const m = await r.json();
    const xs = m.points.map((p) => Date.parse(p.time) / 1000);
    box.dataset.points = m.points.length;
    box.dataset.requests = m.points.reduce((n, p) => n + p.requestsPerSecond * m.stepSeconds, 0);
    series.forEach((s, i) => {
      let lines = s.lines;
      if (s.errors) {
        const codes = [...new Set(m.points.flatMap((p) => Object.keys(p.errorsPerSecond || {})))].sort();
        lines = codes.map((c) => [c, (p) => (p.errorsPerSecond || {})[c] || 0]);
        if (!lines.length) lines = [["none", () => 0]];
      }
      const data = [xs, ...lines.map(([, f]) => m.points.map(f))];
      const key = lines.map(([n]) => n).join(",");
      if (charts[i] && charts[i].key === key) { charts[i].plot.setData(data); return; }
      if (charts[i]) charts[i].fig.remove();
      const fig = el("figure", { class: "plot" });
      fig.append(el("figcaption", {}, s.title));
      box.append(fig);
      const opts = { width: Math.min(520, box.clientWidth || 520), height: 180,
        series: [{}, ...lines.map(([n], j) => ({ label: n, stroke: colors[j % colors.length], width: 2 }))],
        axes: [{}, { size: 50 }], scales: { x: { time: true } } };
      charts[i] = { key, fig, plot: new uPlot(opts, data, fig) };
    });
    if (!m.points.length && !box.querySelector(".empty")) {
      box.prepend(el("p", { class: "empty" }, "No traffic recorded in the last hour yet."));
    } else if (m.points.length) box.querySelector(".empty")?.remove();
  }
  draw();
  setInterval(draw, 10000);
}

// Secrets stay masked until shown.
function secrets() {
  for (const c of document.querySelectorAll("code.secret")) {
    c.tabIndex = 0;
    c.title = "Click to show";
    c.setAttribute("role", "button");
    c.setAttribute("aria-label", "Show key");
    const show = () => { c.textContent = c.dataset.secret; c.removeAttribute("role"); };
    c.addEventListener("click", show);
    c.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(); } });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const events = document.getElementById("events");
  if (events) followEvents(events);
  const l = document.getElementById("logs");
  if (l) logs(l);
  const t = document.getElementById("try");
  if (t) tryIt(t);
  const u = document.getElementById("upload");
  if (u) upload(u);
  for (const box of document.querySelectorAll(".plots")) if (window.uPlot) plots(box);
  copyButtons();
  secrets();
});

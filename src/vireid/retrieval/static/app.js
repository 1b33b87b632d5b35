// vireid search page: no external scripts; talks to this server's /search and /health.
"use strict";
const $ = (id) => document.getElementById(id);
let chosen = null;

function choose(file) {
  chosen = file;
  const preview = $("preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("status").textContent = `query: ${file.name}`;
}

$("file").addEventListener("change", (e) => { if (e.target.files.length) choose(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
});

function mark(hitIdentity, queryIdentity) {
  if (!queryIdentity || hitIdentity === null || hitIdentity === undefined) return "unknown";
  return String(hitIdentity) === queryIdentity ? "correct" : "wrong";
}

function card(hit, queryIdentity) {
  const div = document.createElement("figure");
  const m = mark(hit.identity, queryIdentity);
  div.className = `hit ${m}`;
  div.dataset.id = hit.id;
  div.dataset.identity = hit.identity === null ? "" : hit.identity;
  const img = document.createElement("img");
  img.src = hit.thumbnail;
  img.alt = `gallery ${hit.id}`;
  const cap = document.createElement("figcaption");
  const when = hit.time ? hit.time.replace("+00:00", "Z") : "time unknown";
  cap.textContent = `#${hit.rank}  ${hit.score.toFixed(3)}  cam ${hit.camera || "?"}  ${when}  ` +
    `id ${hit.identity === null ? "?" : hit.identity}  [${m}]`;
  div.append(img, cap);
  return div;
}

$("query-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!chosen) { $("status").textContent = "pick or drop a query image first"; return; }
  const form = new FormData();
  form.append("image", chosen);
  for (const name of ["modality", "k", "camera", "since", "until"]) form.append(name, $(name).value);
  $("status").textContent = "searching…";
  const results = $("results");
  results.replaceChildren();
  try {
    const response = await fetch("/search", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) { $("status").textContent = `error ${response.status}: ${body.error}`; return; }
    const queryIdentity = $("identity").value.trim();
    body.hits.forEach((hit) => results.append(card(hit, queryIdentity)));
    results.dataset.count = body.hits.length;
    $("status").textContent = `${body.hits.length} results (${body.query.modality} query)`;
  } catch (err) {
    $("status").textContent = `request failed: ${err}`;
  }
});

fetch("/health").then((r) => r.json()).then((h) => {
  $("health").textContent = `${h.gallery} gallery images · model ${h.model} (${h.fingerprint})`;
}).catch(() => { $("health").textContent = "server unreachable"; });

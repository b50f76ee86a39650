// The console's behaviour: every call goes to the public REST API with the
// operator's token, exactly as any other client's would; nothing is kept
// but the token (in this browser's localStorage).
"use strict";

const API = "/v2/face-recognition";
const TOKEN_KEY = "facesearch.token";
const $ = (id) => document.getElementById(id);
let selected = null; // { id, name } of the collection shown

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// One REST call; an error answer ({error, message}) becomes a thrown Error.
async function call(method, path, body) {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) throw new Error("paste a token first");
  const response = await fetch(API + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${answer.error || response.status}: ${answer.message || response.statusText}`);
  return answer;
}

// Runs an action, showing what failed instead of failing silently.
async function run(what, action) {
  status(`${what}...`);
  try {
    const done = await action();
    status(done || "");
  } catch (error) {
    status(`${what} failed: ${error.message}`, true);
  }
}

function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

function card(person, withScore) {
  const li = document.createElement("li");
  li.dataset.id = person.id;
  const img = document.createElement("img");
  img.alt = person.name;
  const thumbnail = person.thumbnails && person.thumbnails[0];
  if (thumbnail) img.src = `data:image/jpeg;base64,${thumbnail.thumbnail}`;
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = person.name;
  li.append(img, name);
  if (withScore) {
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = person.score.toFixed(3);
    li.append(score);
  }
  return li;
}

async function loadCollections() {
  const answer = await call("GET", "/collections?limit=100");
  const list = $("collections");
  list.replaceChildren();
  for (const c of answer.data) {
    const li = document.createElement("li");
    li.textContent = c.name;
    li.dataset.id = c.id;
    li.onclick = () => run("Loading persons", () => select(c));
    if (selected && selected.id === c.id) li.className = "selected";
    list.append(li);
  }
  return `${answer.pagination.total} collection(s)`;
}

async function select(collection) {
  selected = collection;
  for (const li of $("collections").children) li.className = li.dataset.id === collection.id ? "selected" : "";
  $("collection-name").textContent = `in ${collection.name}`;
  const answer = await call("GET", `/persons?collection=${encodeURIComponent(collection.id)}&limit=100`);
  $("persons").replaceChildren(...answer.data.map((p) => card(p, false)));
  return `${answer.pagination.total} person(s) in ${collection.name}`;
}

function useToken(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  if (token) localStorage.setItem(TOKEN_KEY, token);
  run("Loading collections", loadCollections);
}

async function createCollection(event) {
  event.preventDefault();
  const name = $("new-collection-name").value.trim();
  const answer = await call("POST", "/collections", { name });
  $("new-collection-name").value = "";
  await loadCollections();
  await select(answer.data);
  return `created ${name}`;
}

async function enroll(event) {
  event.preventDefault();
  if (!selected) throw new Error("choose a collection first");
  const files = [...$("enroll-files").files].slice(0, 3);
  const images = await Promise.all(files.map(readDataUrl));
  const name = $("enroll-name").value.trim();
  await call("POST", "/persons", { name, images, collections: [selected.id] });
  $("enroll-form").reset();
  await select(selected);
  return `enrolled ${name} in ${selected.name}`;
}

async function search(event) {
  event.preventDefault();
  const file = $("search-file").files[0];
  if (!file) throw new Error("choose an image");
  const image = await readDataUrl(file);
  $("probe").src = image;
  $("probe").hidden = false;
  const crop = $("search-kind").value === "crop";
  const body = { images: [image], min_score: $("min-score").value, search_mode: $("search-mode").value };
  if (selected) body.collection_id = selected.id;
  const answer = await call("POST", crop ? "/search/crops" : "/search", body);
  $("results").replaceChildren(...answer.data.map((p) => card(p, true)));
  $("searched").textContent = `${answer.faces_searched} face(s) searched`;
  return answer.data.length ? `${answer.data.length} match(es)` : "no match at this min score";
}

function dropZone() {
  const zone = $("drop");
  zone.ondragover = (e) => {
    e.preventDefault();
    zone.classList.add("over");
  };
  zone.ondragleave = () => zone.classList.remove("over");
  zone.ondrop = (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    $("search-file").files = e.dataTransfer.files;
    run("Searching", () => search(e));
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").onsubmit = useToken;
  $("forget-token").onclick = () => {
    localStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    status("token forgotten");
  };
  $("collection-form").onsubmit = (e) => run("Creating the collection", () => createCollection(e));
  $("enroll-form").onsubmit = (e) => run("Enrolling", () => enroll(e));
  $("search-form").onsubmit = (e) => run("Searching", () => search(e));
  dropZone();
  if (localStorage.getItem(TOKEN_KEY)) run("Loading collections", loadCollections);
});

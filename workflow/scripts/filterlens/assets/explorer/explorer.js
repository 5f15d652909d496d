// filterlens explorer: one filter's maps over an image set, drawn from data on canvases.
//
// Works from file:// with no server: data come as script files that call
// filterlensExplorer.index(...) once and filterlensExplorer.maps(...) per layer and filter,
// loaded on demand with <script> elements (fetch is refused for file:// pages). Maps arrive as
// uint16 levels over the filter's [low, high]; value = low + level / levels * (high - low).
"use strict";

(function () {
  const ZOOMS = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4];
  const TILE_PX = 180; // default zoom: the largest whose tiles fit this width
  const CACHE_BYTES = 128 << 20; // decoded filters kept for going back and forth
  const CROP_PX = 84;

  const app = {
    index: null, layer: 0, filter: 0, entry: null, token: 0, zoom: 1,
    tiles: [], gridLayer: -1, lut: null, hover: null, context: false, ahead: 1,
  };
  const cache = new Map(); // "layer/filter" -> decoded entry, least recently used first
  let cachedBytes = 0;
  const waiting = new Map(); // "layer/filter" -> {promise, resolve, reject}
  const $ = (id) => document.getElementById(id);

  window.filterlensExplorer = {
    index(data) { app.index = data; start(); },
    maps(data) { received(data); },
    // For scripts and tests: the selection, and the value the page reads at a map unit.
    state() { return {layer: layer().layer, filter: app.filter, zoom: app.zoom, loading: waiting.size}; },
    valueAt(image, y, x) { return valueAt(app.entry, image, y, x); },
    select(layerName, filter) {
      const i = app.index.layers.findIndex((l) => l.layer === layerName);
      select(i < 0 ? app.layer : i, filter);
    },
  };

  // --- start-up ------------------------------------------------------------------------------
  function start() {
    const d = app.index;
    $("set-name").textContent = d.set;
    $("weights").textContent = d.weights;
    $("note").textContent = d.note;
    $("held").textContent = heldText(d);
    showListed(d);
    app.lut = levelColors(d.palette, d.levels);
    drawColorbar(d.palette);
    for (const l of d.layers) {
      $("layer").add(new Option(`${l.layer}  (${l.channels} × ${l.height} × ${l.width})`, l.layer));
    }
    app.zoom = defaultZoom(d.input.width);
    for (const z of ZOOMS) {
      const w = Math.round(d.input.width * z);
      $("zoom").add(new Option(`${w} px${z === 1 ? " (input size)" : ""}`, String(z), false, z === app.zoom));
    }
    wire();
    const [li, f] = fromHash();
    select(li, f);
  }

  function heldText(d) {
    const all = d.held.length + d.listed.length;
    return d.listed.length ? `${d.held.length} of ${all} images held` : `${all} images`;
  }

  function showListed(d) {
    if (!d.listed.length) return;
    const box = $("listed");
    box.hidden = false;
    box.querySelector("summary").textContent =
      `${d.listed.length} more images of the set are listed, not held (the explorer holds the ` +
      `first ${d.cap}: config key explorer_max_images)`;
    box.querySelector("p").textContent = d.listed.join(", ");
  }

  function defaultZoom(width) {
    const fits = ZOOMS.filter((z) => width * z <= TILE_PX);
    return fits.length ? fits[fits.length - 1] : ZOOMS[0];
  }

  function wire() {
    $("layer").addEventListener("change", (ev) => { select(ev.target.selectedIndex, app.filter); ev.target.blur(); });
    $("filter").addEventListener("change", (ev) => selectTyped(ev.target.value));
    $("filter").addEventListener("input", (ev) => selectTyped(ev.target.value));
    $("filter-range").addEventListener("input", (ev) => select(app.layer, Number(ev.target.value)));
    $("prev").addEventListener("click", () => select(app.layer, app.filter - 1));
    $("next").addEventListener("click", () => select(app.layer, app.filter + 1));
    $("zoom").addEventListener("change", (ev) => { app.zoom = Number(ev.target.value); sizeTiles(); ev.target.blur(); });
    $("overlay").addEventListener("change", (ev) => showInputs(ev.target.checked));
    document.addEventListener("keydown", onKey);
    window.addEventListener("hashchange", () => { const [li, f] = fromHash(); select(li, f); });
    const grid = $("grid");
    grid.addEventListener("pointermove", onPointer);
    grid.addEventListener("pointerleave", () => { app.hover = null; showReadout(); });
  }

  function selectTyped(text) {
    const f = Number(text);
    if (text !== "" && Number.isInteger(f) && f !== app.filter) select(app.layer, f);
  }

  function onKey(ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const t = ev.target;
    const typing = t.tagName === "INPUT" && t.type !== "checkbox";
    const steps = {ArrowRight: [0, 1], j: [0, 1], ArrowLeft: [0, -1], k: [0, -1],
                   PageDown: [1, 0], PageUp: [-1, 0]};
    const step = steps[ev.key];
    if (!step || (typing && ev.key.startsWith("Arrow"))) return;
    ev.preventDefault();
    if (step[0]) select(app.layer + step[0], app.filter);
    else select(app.layer, app.filter + step[1]);
  }

  function fromHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const li = app.index.layers.findIndex((l) => l.layer === p.get("layer"));
    const f = parseInt(p.get("filter"), 10);
    return [li < 0 ? 0 : li, Number.isInteger(f) ? f : 0];
  }

  const layer = () => app.index.layers[app.layer];

  // --- selection -----------------------------------------------------------------------------
  // Maps appear when the filter's script has run, been decoded and drawn; then the page marks
  // <html data-shown="layer/filter" data-elapsed="ms since the selection">.
  function select(li, f) {
    const layers = app.index.layers;
    li = Math.max(0, Math.min(layers.length - 1, li));
    f = Math.max(0, Math.min(layers[li].channels - 1, Math.trunc(f) || 0));
    const started = performance.now();
    const token = ++app.token;
    const changedLayer = li !== app.layer || app.gridLayer !== li;
    app.ahead = !changedLayer && f < app.filter ? -1 : 1; // the way the user is going
    app.layer = li;
    app.filter = f;
    document.documentElement.dataset.shown = "";
    showControls();
    history.replaceState(null, "", "#" + new URLSearchParams({layer: layers[li].layer, filter: f}));
    if (changedLayer) buildGrid();
    load(li, f).then((entry) => {
      if (token !== app.token) return;
      app.entry = entry;
      draw(entry);
      requestAnimationFrame(() => {
        if (token !== app.token) return;
        const root = document.documentElement;
        root.dataset.elapsed = (performance.now() - started).toFixed(1);
        root.dataset.shown = `${layers[li].layer}/${f}`;
        prefetch(li, f + app.ahead);
      });
    }, (err) => { if (token === app.token) fail(err); });
  }

  function showControls() {
    const l = layer();
    $("layer").selectedIndex = app.layer;
    if (document.activeElement !== $("filter") || Number($("filter").value) !== app.filter) {
      $("filter").value = app.filter;
    }
    $("filter").max = l.channels - 1;
    $("filter-range").max = l.channels - 1;
    $("filter-range").value = app.filter;
    $("filter-count").textContent = `of 0–${l.channels - 1}`;
    $("error").hidden = true;
  }

  function fail(err) {
    const box = $("error");
    box.hidden = false;
    box.textContent = `${err.message}. Open the explorer from its own folder (index.html beside ` +
      `maps/ and data/), as the workflow wrote it.`;
  }

  // --- data ----------------------------------------------------------------------------------
  function mapUrl(l, f) {
    return `maps/${encodeURIComponent(l.layer)}/${String(f).padStart(4, "0")}.js`;
  }

  function load(li, f) {
    const l = app.index.layers[li];
    const key = `${l.layer}/${f}`;
    if (cache.has(key)) {
      const entry = cache.get(key);
      cache.delete(key);
      cache.set(key, entry);
      return Promise.resolve(entry);
    }
    if (waiting.has(key)) return waiting.get(key).promise;
    const wait = {};
    wait.promise = new Promise((resolve, reject) => { wait.resolve = resolve; wait.reject = reject; });
    waiting.set(key, wait);
    const script = document.createElement("script");
    script.src = mapUrl(l, f);
    const done = (message) => {
      script.remove();
      if (waiting.get(key) === wait) { waiting.delete(key); wait.reject(new Error(message)); }
    };
    script.onload = () => done(`${script.src} did not hold the maps of ${key}`);
    script.onerror = () => done(`cannot load ${script.src}`);
    document.head.appendChild(script);
    return wait.promise;
  }

  function received(data) {
    const l = app.index.layers.find((x) => x.layer === data.layer);
    const entry = {
      layer: data.layer, filter: data.filter, low: data.low, high: data.high,
      max: data.max, mean: data.mean, top: data.top, levels: decode(data.data),
      size: l.height * l.width,
    };
    const key = `${data.layer}/${data.filter}`;
    cache.set(key, entry);
    cachedBytes += entry.levels.byteLength;
    for (const [old, e] of cache) {
      if (cachedBytes <= CACHE_BYTES || old === key) break;
      cache.delete(old);
      cachedBytes -= e.levels.byteLength;
    }
    const wait = waiting.get(key);
    if (wait) { waiting.delete(key); wait.resolve(entry); }
  }

  function decode(text) {
    let bytes;
    if (typeof Uint8Array.fromBase64 === "function") {
      bytes = Uint8Array.fromBase64(text);
    } else {
      const binary = atob(text);
      bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    }
    return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1);
  }

  // The filter the user will most likely ask for next, loaded while they look at this one.
  function prefetch(li, f) {
    if (f >= 0 && f < app.index.layers[li].channels) load(li, f).catch(() => {}); // shown if selected
  }

  function valueAt(entry, image, y, x) {
    const l = app.index.layers.find((v) => v.layer === entry.layer);
    const level = entry.levels[image * entry.size + y * l.width + x];
    return entry.low + (level / app.index.levels) * (entry.high - entry.low);
  }

  // --- drawing -------------------------------------------------------------------------------
  // Level -> color as one RGBA word: the base cmap at 256 levels, as the frames quantize it.
  function levelColors(hex, levels) {
    const rgb = new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
    const words = new Uint32Array(levels + 1);
    for (let q = 0; q <= levels; q++) {
      const i = 3 * Math.floor((q / levels) * 255 + 0.5);
      words[q] = (255 << 24 | rgb[i + 2] << 16 | rgb[i + 1] << 8 | rgb[i]) >>> 0;
    }
    return words;
  }

  function drawColorbar(hex) {
    const ctx = $("colorbar").getContext("2d");
    const image = ctx.createImageData(256, 1);
    for (let i = 0; i < 768; i++) image.data[(i / 3 | 0) * 4 + i % 3] = parseInt(hex.substr(2 * i, 2), 16);
    for (let i = 0; i < 256; i++) image.data[4 * i + 3] = 255;
    ctx.putImageData(image, 0, 0);
  }

  function buildGrid() {
    const d = app.index;
    const l = layer();
    const grid = $("grid");
    grid.textContent = "";
    app.tiles = d.held.map((name, i) => {
      const figure = document.createElement("figure");
      figure.className = "tile";
      figure.dataset.image = name;
      const frame = document.createElement("div");
      frame.className = "frame";
      const canvas = document.createElement("canvas");
      canvas.className = "map";
      canvas.width = l.width;
      canvas.height = l.height;
      canvas.dataset.index = i;
      const marker = document.createElement("div");
      marker.className = "marker";
      marker.hidden = true;
      frame.append(canvas, marker);
      const caption = document.createElement("figcaption");
      caption.innerHTML = '<span class="name"></span><span class="max"></span>';
      caption.firstChild.textContent = name;
      caption.firstChild.title = name;
      figure.append(frame, caption);
      grid.append(figure);
      const ctx = canvas.getContext("2d");
      return {figure, frame, canvas, ctx, under: null, marker, max: caption.lastChild,
              image: ctx.createImageData(l.width, l.height)};
    });
    app.gridLayer = app.layer;
    sizeTiles();
    showInputs($("overlay").checked);
  }

  function sizeTiles() {
    const d = app.index;
    const w = Math.round(d.input.width * app.zoom);
    const h = Math.round(d.input.height * app.zoom);
    for (const t of app.tiles) {
      t.canvas.style.width = `${w}px`;
      t.canvas.style.height = `${h}px`;
      t.figure.style.width = `${w}px`;
    }
    app.hover = null;
    showReadout();
  }

  // The inputs under the maps load only when asked for (they are most of a first view's bytes).
  function showInputs(on) {
    $("grid").classList.toggle("overlay", on);
    app.index.held.forEach((name, i) => {
      const t = app.tiles[i];
      if (on && !t.under) {
        t.under = document.createElement("img");
        t.under.alt = name;
        t.under.src = app.index.inputs[name];
        t.frame.prepend(t.under);
      }
      if (t.under) t.under.hidden = !on;
    });
  }

  function draw(entry) {
    const n = entry.size;
    const lut = app.lut;
    const levels = entry.levels;
    app.tiles.forEach((t, i) => {
      const out = new Uint32Array(t.image.data.buffer);
      for (let k = 0, o = i * n; k < n; k++, o++) out[k] = lut[levels[o]];
      t.ctx.putImageData(t.image, 0, 0);
      t.max.textContent = `max ${format(entry.max[i], 4)}`;
      t.max.title = `max ${entry.max[i]}, mean ${entry.mean[i]}`;
    });
    const zero = $("bar-zero");
    zero.hidden = !(entry.low < 0 && entry.high > 0);
    zero.style.left = `${(-entry.low / (entry.high - entry.low)) * 100}%`;
    $("low").textContent = format(entry.low, 4);
    $("high").textContent = format(entry.high, 4);
    $("scale-note").textContent = entry.high > entry.low
      ? `one scale for filter ${entry.filter} of ${entry.layer}: min to max over the ${app.tiles.length} held images`
      : `filter ${entry.filter} of ${entry.layer} is constant (${format(entry.low, 6)}) on the held images`;
    showTop(entry);
    showReadout();
  }

  // --- the value under the pointer -------------------------------------------------------------
  // The unit is the one nearest upsampling puts under the pointer at the displayed size:
  // unit = floor(position * map size / displayed size), whatever resampling the frames used.
  function onPointer(ev) {
    const canvas = ev.target.closest("canvas.map");
    if (!canvas || !app.entry) { app.hover = null; showReadout(); return; }
    const l = layer();
    const r = canvas.getBoundingClientRect();
    const x = Math.min(l.width - 1, Math.max(0, Math.floor(((ev.clientX - r.left) * l.width) / r.width)));
    const y = Math.min(l.height - 1, Math.max(0, Math.floor(((ev.clientY - r.top) * l.height) / r.height)));
    app.hover = {image: Number(canvas.dataset.index), y, x};
    showReadout();
  }

  function showReadout() {
    const box = $("readout");
    for (const t of app.tiles) t.marker.hidden = true;
    const h = app.hover;
    const e = app.entry;
    if (!h || !e || e.layer !== layer().layer) {
      $("bar-mark").hidden = true;
      box.innerHTML = '<span class="muted">Point at a map to read its activation.</span>';
      delete box.dataset.value;
      return;
    }
    const l = layer();
    const value = valueAt(e, h.image, h.y, h.x);
    const name = app.index.held[h.image];
    box.innerHTML = "<b></b> · filter <b></b> · image <b></b> · unit (y <b></b>, x <b></b>) · " +
      '<span class="value"></span>';
    const cells = box.querySelectorAll("b");
    [l.layer, e.filter, name, h.y, h.x].forEach((v, i) => { cells[i].textContent = v; });
    box.querySelector(".value").textContent = format(value, 6);
    Object.assign(box.dataset, {value, image: name, y: h.y, x: h.x});
    const t = app.tiles[h.image];
    const w = parseFloat(t.canvas.style.width) / l.width;
    const hh = parseFloat(t.canvas.style.height) / l.height;
    Object.assign(t.marker.style, {left: `${h.x * w - 1}px`, top: `${h.y * hh - 1}px`,
      width: `${w + 2}px`, height: `${hh + 2}px`});
    t.marker.hidden = false;
    const mark = $("bar-mark");
    mark.hidden = false;
    mark.style.left = `${e.high > e.low ? ((value - e.low) / (e.high - e.low)) * 100 : 0}%`;
  }

  // --- top images ------------------------------------------------------------------------------
  function showTop(entry) {
    const panel = $("top");
    panel.textContent = "";
    const title = document.createElement("h2");
    title.textContent = `Top images of filter ${entry.filter}`;
    const context = document.createElement("label");
    context.className = "check muted";
    context.innerHTML = '<input type="checkbox" id="context"> around the field';
    context.firstChild.checked = app.context;
    context.firstChild.addEventListener("change", (ev) => { app.context = ev.target.checked; showTop(entry); });
    panel.append(title, context);
    for (const [by, words] of [["max", "by max activation"], ["mean", "by mean activation"]]) {
      const head = document.createElement("h3");
      head.textContent = words;
      panel.append(head);
      const rows = (entry.top && entry.top[by]) || [];
      if (!rows.length) {
        const none = document.createElement("p");
        none.className = "muted";
        none.textContent = "none listed for this filter";
        panel.append(none);
        continue;
      }
      const list = document.createElement("ol");
      list.className = "tops";
      for (const row of rows) list.append(topCard(row, by));
      panel.append(list);
    }
  }

  function topCard([rank, image, value, y, x, top, left, bottom, right, whole], by) {
    const d = app.index;
    const l = layer();
    const li = document.createElement("li");
    const held = d.held.indexOf(image);
    li.className = held >= 0 ? "held" : "";
    li.title = `${image}: ${by} ${value} at unit (${y}, ${x}); receptive field rows ${top}–${bottom}, ` +
      `columns ${left}–${right}${whole ? " (the whole image)" : ""}` + (held >= 0 ? "" : "; not held");
    const W = d.input.width;
    const H = d.input.height;
    // whole fields: the whole image, with the unit's cell marked; else the field's crop
    // (or, around the field, a window three times its size with the field outlined)
    const field = [Math.max(0, top), Math.max(0, left), Math.min(H, bottom), Math.min(W, right)];
    const box = whole ? [0, 0, H, W] : app.context ? around(field, H, W) : field;
    const bh = box[2] - box[0];
    const bw = box[3] - box[1];
    const s = CROP_PX / Math.max(bh, bw);
    const crop = document.createElement("div");
    crop.className = "crop";
    crop.style.width = `${bw * s}px`;
    crop.style.height = `${bh * s}px`;
    const img = document.createElement("img");
    img.src = d.inputs[image];
    img.alt = `${image}, rank ${rank} by ${by}`;
    if (s >= 2) img.className = "pixels";
    Object.assign(img.style, {width: `${W * s}px`, height: `${H * s}px`,
      left: `${-box[1] * s}px`, top: `${-box[0] * s}px`});
    crop.append(img);
    const mark = (cls, t, lft, h, w) => {
      const m = document.createElement("i");
      m.className = cls;
      Object.assign(m.style, {left: `${(lft - box[1]) * s}px`, top: `${(t - box[0]) * s}px`,
        width: `${Math.max(2, w * s)}px`, height: `${Math.max(2, h * s)}px`});
      crop.append(m);
    };
    if (whole) mark("cell", y * H / l.height, x * W / l.width, H / l.height, W / l.width);
    else if (app.context) mark("field", field[0], field[1], field[2] - field[0], field[3] - field[1]);
    const text = document.createElement("div");
    text.innerHTML = '<span class="rank"></span> <span class="name"></span><br>' +
      '<span class="value"></span><br><span class="where"></span>';
    text.querySelector(".rank").textContent = `#${rank}`;
    text.querySelector(".name").textContent = image;
    text.querySelector(".value").textContent = `${by} ${format(value, 4)}`;
    const notes = [whole ? "whole" : "", held >= 0 ? "" : "not held"].filter(Boolean);
    text.querySelector(".where").textContent = [`(${y}, ${x})`, ...notes].join(" · ");
    const frame = document.createElement("div");
    frame.className = "crop-box";
    frame.append(crop);
    li.append(frame, text);
    if (held >= 0) li.addEventListener("click", () => flash(held));
    return li;
  }

  function around([t, l, b, r], H, W) {
    const h = b - t;
    const w = r - l;
    const top = Math.max(0, Math.min(H - 3 * h, t - h));
    const left = Math.max(0, Math.min(W - 3 * w, l - w));
    return [top, left, Math.min(H, top + 3 * h), Math.min(W, left + 3 * w)];
  }

  function flash(i) {
    const t = app.tiles[i];
    t.figure.scrollIntoView({block: "center", behavior: "smooth"});
    t.figure.classList.add("flash");
    setTimeout(() => t.figure.classList.remove("flash"), 1200);
  }

  function format(v, digits) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(digits))) : v.toExponential(digits - 1);
  }
})();

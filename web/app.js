// llhls demo page: plays ?src= with hls.js in low-latency mode, reads the clock barcode
// from the picture, and publishes its numbers as window.llhlsStats for tests.
//
// URL parameters:
//   src     stream URL (default /live/index.m3u8)
//   target  hls.js liveSyncDuration in seconds (default: the playlist's PART-HOLD-BACK)
//   rate    hls.js maxLiveSyncPlaybackRate (default 1.1; 1 disables catch-up)
//   debug   any value: hls.js debug logging to the console
//
// All latencies are in seconds.

import { decodeFrom } from "./barcode.js";

const TICK_MS = 100; // barcode read-out and sampling period
const MAX_SAMPLES = 36000; // one hour of 100 ms samples
const MAX_ERRORS = 1000;
const CHART_SECONDS = 60;
const MAX_RECOVERIES = 10;

const params = new URLSearchParams(location.search);
const src = params.get("src") || "/live/index.m3u8";

function numberParam(name) {
  const raw = params.get(name);
  if (raw === null || raw.trim() === "") return undefined;
  const value = Number(raw);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

const $ = (id) => document.getElementById(id);
const video = $("video");
const bandCanvas = $("band");
const startedAt = performance.now();
const elapsed = () => (performance.now() - startedAt) / 1000;

/** The numbers, for people (the tiles) and for tests (window.llhlsStats). */
const stats = {
  src,
  engine: null, // "hls.js" | "native" | null
  hlsVersion: window.Hls ? window.Hls.version : null,
  live: null, // true for a live playlist, false for VOD, null before the first playlist
  playing: false,
  currentTime: 0,
  hlsLatency: null,
  barcodeLatency: null,
  barcodeReads: 0,
  barcodeMisses: 0,
  lastBarcodeMs: null,
  targetLatency: null,
  buffer: 0,
  playbackRate: 1,
  rendition: null, // level height in lines
  stalls: 0,
  stallSeconds: 0,
  droppedFrames: 0,
  protocol: null, // nextHopProtocol of the last fragment or part
  protocols: {}, // request count per nextHopProtocol (every XHR/fetch of the page)
  firstFrameSeconds: null, // page load to first 'playing'
  fatalErrors: [],
  errors: [],
  samples: [],
};
window.llhlsStats = stats;

// ---------------------------------------------------------------- event log

function logEvent(text, kind = "") {
  const list = $("log");
  const item = document.createElement("li");
  item.textContent = `${elapsed().toFixed(1).padStart(6)} s  ${text}`;
  if (kind) item.className = kind;
  list.prepend(item);
  while (list.children.length > 200) list.lastElementChild.remove();
}

function showNotice(text, { error = false, action = null } = {}) {
  const notice = $("notice");
  notice.replaceChildren(document.createTextNode(text));
  notice.classList.toggle("error", error);
  if (action) {
    const button = document.createElement("button");
    button.textContent = action.label;
    button.addEventListener("click", action.run);
    notice.append(button);
  }
  notice.hidden = false;
}

function hideNotice() {
  $("notice").hidden = true;
}

// ---------------------------------------------------------------- errors

function recordError(entry) {
  const record = { t: elapsed(), wall: Date.now(), ...entry };
  stats.errors.push(record);
  if (stats.errors.length > MAX_ERRORS) stats.errors.shift();
  if (record.fatal) {
    stats.fatalErrors.push(record);
    if (stats.fatalErrors.length > MAX_ERRORS) stats.fatalErrors.shift();
  }
  const where = record.url ? ` ${record.url}` : "";
  const status = record.status ? ` (HTTP ${record.status})` : "";
  const reason = record.reason || record.message || "";
  logEvent(
    `${record.fatal ? "FATAL " : ""}${record.type}/${record.details}${status}${where}${reason ? ": " + reason : ""}`,
    record.fatal ? "fatal" : "error",
  );
  render();
}

function hlsErrorRecord(data) {
  return {
    type: data.type,
    details: data.details,
    fatal: Boolean(data.fatal),
    reason: data.reason ?? null,
    message: data.error ? String(data.error.message || data.error) : null,
    url: data.url ?? data.part?.url ?? data.frag?.url ?? data.context?.url ?? null,
    status: data.response?.code ?? null,
    level: data.level ?? null,
    buffer: data.buffer ?? null,
  };
}

// ---------------------------------------------------------------- protocol per request

const protocolByUrl = new Map(); // last few hundred requests: url -> nextHopProtocol
let lastFragmentUrl = null;

function noteResource(entry) {
  if (entry.initiatorType !== "xmlhttprequest" && entry.initiatorType !== "fetch") return;
  const protocol = entry.nextHopProtocol || "unknown";
  stats.protocols[protocol] = (stats.protocols[protocol] || 0) + 1;
  protocolByUrl.set(entry.name, protocol);
  if (protocolByUrl.size > 500) protocolByUrl.delete(protocolByUrl.keys().next().value);
}

if ("PerformanceObserver" in window) {
  // An observer sees every entry even when the timeline buffer is full.
  new PerformanceObserver((list) => list.getEntries().forEach(noteResource)).observe({
    type: "resource",
    buffered: true,
  });
  performance.addEventListener?.("resourcetimingbufferfull", () =>
    performance.clearResourceTimings(),
  );
}

// ---------------------------------------------------------------- player

let hls = null;
let recoveries = 0;

function startHlsJs() {
  const Hls = window.Hls;
  const config = {
    lowLatencyMode: true,
    backBufferLength: 30,
    maxLiveSyncPlaybackRate: numberParam("rate") ?? 1.1,
    debug: params.has("debug"),
  };
  const target = numberParam("target");
  if (target !== undefined) config.liveSyncDuration = target;

  hls = new Hls(config);
  stats.engine = "hls.js";
  window.llhls = { hls, video, config };
  $("engine").textContent = `hls.js ${Hls.version} · lowLatencyMode · catch-up ≤ ${config.maxLiveSyncPlaybackRate}×`;

  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    const heights = data.levels.map((level) => level.height).filter(Boolean);
    logEvent(`manifest: ${data.levels.length} level(s) ${heights.join("/")}`, "info");
    play();
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
    const level = hls.levels[data.level];
    logEvent(`level ${data.level}${level?.height ? ` (${level.height}p)` : ""}`, "info");
  });
  hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
    if (data.details.live && stats.targetLatency === null) {
      const d = data.details;
      logEvent(
        `live playlist: part target ${d.partTarget ?? "–"} s, part hold back ${d.partHoldBack ?? "–"} s, can block ${Boolean(d.canBlockReload)}`,
        "info",
      );
    }
  });
  hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
    lastFragmentUrl = data.part?.url ?? data.frag?.url ?? lastFragmentUrl;
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    recordError(hlsErrorRecord(data));
    if (data.fatal) recover(data);
  });

  hls.attachMedia(video);
  hls.loadSource(src);
}

const MANIFEST_ERRORS = new Set(["manifestLoadError", "manifestLoadTimeOut", "manifestParsingError"]);

function recover(data) {
  const Hls = window.Hls;
  if (recoveries >= MAX_RECOVERIES) {
    showNotice(`Playback failed: ${data.details}. Reload the page to retry.`, { error: true });
    hls.destroy();
    return;
  }
  recoveries += 1;
  const delay = Math.min(1000 * 2 ** (recoveries - 1), 10000);
  const attempt = `${recoveries}/${MAX_RECOVERIES}`;
  if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
    const status = data.response?.code ? ` (HTTP ${data.response.code})` : "";
    showNotice(`Stream not available${status}: retrying in ${delay / 1000} s (${attempt})…`, {
      error: true,
    });
    logEvent(`recovering: retry in ${delay / 1000} s (${attempt})`, "info");
    setTimeout(() => {
      if (MANIFEST_ERRORS.has(data.details)) hls.loadSource(src);
      else hls.startLoad();
    }, delay);
  } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
    logEvent(`recovering: media error (${attempt})`, "info");
    hls.recoverMediaError();
  } else {
    showNotice(`Playback failed: ${data.details}.`, { error: true });
    hls.destroy();
  }
}

function startNative() {
  stats.engine = "native";
  $("engine").textContent = "native HLS (hls.js unavailable)";
  video.src = src;
  video.addEventListener("loadedmetadata", play, { once: true });
}

function play() {
  video.muted = true;
  video.play().catch((err) => {
    logEvent(`autoplay refused: ${err.message}`, "error");
    showNotice("Autoplay was blocked.", {
      action: {
        label: "Play",
        run: () => {
          hideNotice();
          video.play();
        },
      },
    });
  });
}

// ---------------------------------------------------------------- media element events

let stalledSince = null;

video.addEventListener("playing", () => {
  hideNotice();
  if (stats.firstFrameSeconds === null) {
    stats.firstFrameSeconds = elapsed();
    logEvent(`playing after ${stats.firstFrameSeconds.toFixed(2)} s`, "info");
  }
  recoveries = 0;
  if (stalledSince !== null) {
    const stall = elapsed() - stalledSince;
    stats.stallSeconds += stall;
    logEvent(`resumed after a ${stall.toFixed(2)} s stall`, "info");
    stalledSince = null;
  }
});
video.addEventListener("waiting", () => {
  if (stats.firstFrameSeconds !== null && stalledSince === null) {
    stalledSince = elapsed();
    stats.stalls += 1;
    logEvent("stall: waiting for data", "error");
  }
});
video.addEventListener("error", () => {
  const err = video.error;
  recordError({
    type: "mediaElementError",
    details: err ? `code ${err.code}` : "unknown",
    fatal: stats.engine === "native",
    reason: err?.message || null,
  });
});

// ---------------------------------------------------------------- sampling

function bufferAhead() {
  const t = video.currentTime;
  const ranges = video.buffered;
  for (let i = 0; i < ranges.length; i++) {
    if (ranges.start(i) <= t + 0.1 && t < ranges.end(i)) return ranges.end(i) - t;
  }
  return 0;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function tick() {
  const now = Date.now();
  if (video.readyState >= 2 && video.videoWidth > 0) {
    let ms = null;
    try {
      ms = decodeFrom(video, bandCanvas);
    } catch (err) {
      // A tainted canvas (cross-origin stream without CORS) cannot be read.
      if (stats.barcodeMisses === 0) logEvent(`barcode read-out impossible: ${err.message}`, "error");
    }
    if (ms === null) {
      stats.barcodeMisses += 1;
    } else {
      stats.barcodeReads += 1;
      stats.lastBarcodeMs = ms;
      stats.barcodeLatency = (now - ms) / 1000;
    }
  }
  const level = hls && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel] : null;
  const details = hls?.levels[Math.max(hls.currentLevel, 0)]?.details;
  if (details) stats.live = Boolean(details.live);
  const live = stats.live === true;
  stats.currentTime = video.currentTime;
  stats.playing = !video.paused && !video.ended && video.readyState > 2 && stalledSince === null;
  stats.hlsLatency = hls && live ? finite(hls.latency) : null;
  stats.targetLatency = hls && live ? finite(hls.targetLatency) : null;
  stats.buffer = bufferAhead();
  stats.playbackRate = video.playbackRate;
  stats.rendition = level?.height || video.videoHeight || null;
  stats.droppedFrames = video.getVideoPlaybackQuality?.().droppedVideoFrames ?? 0;
  if (lastFragmentUrl !== null && protocolByUrl.has(lastFragmentUrl)) {
    stats.protocol = protocolByUrl.get(lastFragmentUrl);
  }
  stats.samples.push({
    t: Number(elapsed().toFixed(3)),
    wall: now,
    playing: stats.playing,
    currentTime: stats.currentTime,
    hlsLatency: stats.hlsLatency,
    barcodeLatency: stats.barcodeLatency,
    targetLatency: stats.targetLatency,
    buffer: stats.buffer,
    rate: stats.playbackRate,
    rendition: stats.rendition,
  });
  if (stats.samples.length > MAX_SAMPLES) stats.samples.shift();
}

// ---------------------------------------------------------------- display

const PROTOCOL_NAMES = { h3: "HTTP/3", h2: "HTTP/2", "http/1.1": "HTTP/1.1", "h3-29": "HTTP/3" };

function seconds(value, digits = 2) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) >= 3600) return `${(value / 3600).toFixed(1)} h`; // a clock far off
  return `${value.toFixed(digits)} s`;
}

function setText(id, text, bad = false) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
  el.classList.toggle("bad", bad);
}

function render() {
  setText("barcodeLatency", seconds(stats.barcodeLatency));
  const vod = stats.live === false;
  setText("hlsLatency", vod ? "VOD" : seconds(stats.hlsLatency));
  setText("targetLatency", vod ? "VOD" : seconds(stats.targetLatency));
  setText("buffer", seconds(stats.buffer));
  setText("playbackRate", `${stats.playbackRate.toFixed(2)}×`, stats.playbackRate !== 1);
  setText("rendition", stats.rendition ? `${stats.rendition}p` : "–");
  setText("stalls", stats.stallSeconds > 0 ? `${stats.stalls} · ${stats.stallSeconds.toFixed(1)} s` : String(stats.stalls), stats.stalls > 0);
  setText("protocol", stats.protocol ? PROTOCOL_NAMES[stats.protocol] || stats.protocol : "–");
  const total = stats.barcodeReads + stats.barcodeMisses;
  setText("barcodeReads", total ? `${stats.barcodeReads} / ${total}` : "0");
  setText("errorCount", stats.fatalErrors.length ? `${stats.errors.length} (${stats.fatalErrors.length} fatal)` : String(stats.errors.length), stats.fatalErrors.length > 0);
  drawChart();
}

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * ratio);
  const height = Math.round(canvas.clientHeight * ratio);
  if (!width || !height) return;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);

  const tEnd = elapsed();
  const tStart = tEnd - CHART_SECONDS;
  const recent = [];
  for (let i = stats.samples.length - 1; i >= 0 && stats.samples[i].t >= tStart; i--) {
    recent.push(stats.samples[i]);
  }
  recent.reverse();
  let top = 1;
  for (const s of recent) {
    for (const v of [s.hlsLatency, s.barcodeLatency, s.targetLatency]) {
      if (v !== null && v < 60) top = Math.max(top, v);
    }
  }
  top = Math.ceil(top * 1.15 * 2) / 2;
  const pad = 28 * ratio;
  const x = (t) => pad + ((t - tStart) / CHART_SECONDS) * (width - pad - 4 * ratio);
  const y = (v) => height - 14 * ratio - (v / top) * (height - 22 * ratio);

  ctx.font = `${10 * ratio}px ui-monospace, monospace`;
  ctx.fillStyle = "#8a92a3";
  ctx.strokeStyle = "#2a2f3a";
  ctx.lineWidth = ratio;
  const step = top > 6 ? 2 : top > 3 ? 1 : 0.5;
  for (let v = 0; v <= top + 1e-9; v += step) {
    ctx.beginPath();
    ctx.moveTo(pad, y(v));
    ctx.lineTo(width, y(v));
    ctx.stroke();
    ctx.fillText(`${v}s`, 2 * ratio, y(v) + 3 * ratio);
  }

  const styles = getComputedStyle(document.documentElement);
  const series = [
    ["targetLatency", styles.getPropertyValue("--target"), [4 * ratio, 4 * ratio]],
    ["hlsLatency", styles.getPropertyValue("--hls"), []],
    ["barcodeLatency", styles.getPropertyValue("--barcode"), []],
  ];
  for (const [key, color, dash] of series) {
    ctx.strokeStyle = color.trim();
    ctx.lineWidth = 2 * ratio;
    ctx.setLineDash(dash);
    ctx.beginPath();
    let drawing = false;
    for (const s of recent) {
      const v = s[key];
      if (v === null || v > top) {
        drawing = false;
        continue;
      }
      if (drawing) ctx.lineTo(x(s.t), y(v));
      else ctx.moveTo(x(s.t), y(v));
      drawing = true;
    }
    ctx.stroke();
  }
  ctx.setLineDash([]);
}

// ---------------------------------------------------------------- start

function main() {
  const input = $("src");
  input.value = src;
  $("source").addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams(location.search);
    next.set("src", input.value.trim() || "/live/index.m3u8");
    location.search = next.toString();
  });

  if (window.Hls && window.Hls.isSupported()) {
    startHlsJs();
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    if (!window.Hls) logEvent("hls.js is not loaded (run `make web`): trying native HLS", "error");
    startNative();
  } else {
    const why = window.Hls
      ? "this browser has no Media Source Extensions."
      : "hls.js is not installed; run `make web` and reload.";
    showNotice(`Cannot play: ${why}`, { error: true });
    recordError({ type: "setupError", details: "noPlayer", fatal: true, reason: why });
  }

  setInterval(tick, TICK_MS);
  setInterval(render, 250);
  render();
}

main();

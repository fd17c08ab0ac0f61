// Small DOM and wording helpers shared by the page's modules. Text always goes in through
// textContent (el's string children), never innerHTML: prompts and server messages are data.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
}

export function formatSeconds(seconds) {
  const value = Number(seconds);
  if (!Number.isFinite(value)) return "";
  return `${Number(value.toFixed(value < 10 ? 1 : 0))} s`;
}

export function formatDuration(seconds) {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function formatEta(seconds, progress = 100) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  // A pace measured on the first steps says little about decoding and encoding still to come:
  // "almost done" only near the end.
  if (seconds < 1) return progress >= 90 ? "almost done" : "";
  if (seconds < 90) return `about ${Math.ceil(seconds)} s left`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

export function formatTime(unixSeconds) {
  if (!unixSeconds) return "";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(unixSeconds * 1000),
  );
}

// A card's modes are what it starts from (text, an image) and what it can do to a video.
const STARTS = { t2v: "text", i2v: "image" };
const MODES = {
  t2v: "text → video",
  i2v: "image → video",
  v2v: "video → video",
  remix: "remix",
  extend: "extend",
  extend_backward: "extend backwards",
  still: "stills",
};
export function modeLabel(mode) {
  return MODES[mode] || mode.replaceAll("_", " ");
}

// "text→video", "text/image→video": short enough for a closed <select>.
export function modesShort(modes) {
  const starts = startModes(modes).map((mode) => STARTS[mode]);
  return starts.length ? `${starts.join("/")}→video` : sortModes(modes).map(modeLabel).join(", ");
}

export function startModes(modes) {
  return sortModes(modes).filter((mode) => mode in STARTS);
}

export function otherModes(modes) {
  return sortModes(modes).filter((mode) => !(mode in STARTS));
}

// Text first: the server lists modes alphabetically, people read "text or image".
export function sortModes(modes) {
  const order = Object.keys(MODES);
  const rank = (mode) => (order.includes(mode) ? order.indexOf(mode) : order.length);
  return [...modes].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const STAGES = {
  queued: "Waiting",
  loading: "Loading the model",
  planning: "Planning",
  denoising: "Denoising",
  decoding: "Decoding frames",
  upscaling: "Upscaling",
  interpolating: "Interpolating frames",
  encoding: "Encoding",
  finishing: "Finishing (upscale, encode, sign)",
  signing: "Signing",
  done: "Done",
};
export function stageLabel(stage) {
  if (!stage) return "Starting";
  return STAGES[stage] || stage.charAt(0).toUpperCase() + stage.slice(1).replaceAll("_", " ");
}

// A nested object as a definition list: for credits and manifest claims, whose shape may grow.
export function definitionList(object) {
  const list = el("dl", { class: "tree" });
  for (const [key, value] of Object.entries(object || {})) {
    if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    list.append(el("dt", {}, humanKey(key)), el("dd", {}, describeValue(value)));
  }
  return list;
}

function describeValue(value) {
  if (Array.isArray(value)) {
    if (value.every((item) => typeof item !== "object")) return value.join(", ");
    return el("ul", {}, value.map((item) => el("li", {}, describeValue(item))));
  }
  if (value && typeof value === "object") return definitionList(value);
  const text = String(value);
  if (/^https?:\/\//.test(text)) return el("a", { href: text, target: "_blank", rel: "noopener" }, text);
  return text;
}

export function humanKey(key) {
  const text = key.replace(/^org\.contentauth\./, "").replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

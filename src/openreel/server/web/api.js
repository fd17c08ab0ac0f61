// Talking to the openreel server: the OpenAI Videos routes and the studio's /v1/openreel routes.
// Every failure becomes an ApiError carrying the server's envelope ({error: {message, param, code}}),
// so the page can say in plain words what went wrong and next to which field.

const KEY_STORAGE = "openreel.apiKey";

export class ApiError extends Error {
  constructor(status, { message, param = null, code = null } = {}) {
    super(message || `the server answered ${status}`);
    this.status = status;
    this.param = param;
    this.code = code;
  }
}

// The key lives in localStorage so a reload does not ask again; it never leaves this origin.
export const apiKey = {
  get() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  },
  set(value) {
    localStorage.setItem(KEY_STORAGE, value.trim());
    forgetMedia();
  },
  clear() {
    localStorage.removeItem(KEY_STORAGE);
    forgetMedia();
  },
};

let authNeeded = () => {};
// Called with the server's message whenever a request comes back 401.
export function onAuthNeeded(handler) {
  authNeeded = handler;
}

function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not our envelope (a proxy's error page, say): fall back to the status line.
  }
  const error = body && body.error ? body.error : { message: `${response.status} ${response.statusText}` };
  return new ApiError(response.status, error);
}

// fetch + envelope errors; resolves to {data, response}.
export async function request(path, { method = "GET", body, json, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body; // FormData: the browser writes the multipart boundary itself
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { message: "Cannot reach the openreel server. Is it still running?", code: "network" });
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) authNeeded(error.message);
    throw error;
  }
  return { data: await response.json(), response };
}

export const api = {
  styles: () => request("/v1/openreel/styles").then((r) => r.data),
  models: () => request("/v1/openreel/models").then((r) => r.data),
  loras: () => request("/v1/openreel/loras").then((r) => r.data),
  // The models view: a download is a job on the server; cancel and delete by the model's id.
  downloadModel: (id) => request(`/v1/openreel/models/${encodeURIComponent(id)}/download`, { method: "POST" }).then((r) => r.data),
  cancelModelDownload: (id) =>
    request(`/v1/openreel/models/${encodeURIComponent(id)}/download`, { method: "DELETE" }).then((r) => r.data),
  removeModel: (id) => request(`/v1/openreel/models/${encodeURIComponent(id)}`, { method: "DELETE" }).then((r) => r.data),
  health: () => request("/healthz").then((r) => r.data),
  list: (params) => request(`/v1/videos?${new URLSearchParams(params)}`).then((r) => r.data),
  // retrieve also returns the openai-poll-after-ms header: how long to wait before asking again.
  async retrieve(id) {
    const { data, response } = await request(`/v1/videos/${encodeURIComponent(id)}`);
    const after = Number(response.headers.get("openai-poll-after-ms"));
    return { video: data, pollAfterMs: Number.isFinite(after) && after > 0 ? after : null };
  },
  create: (form) => request("/v1/videos", { method: "POST", body: form }).then((r) => r.data),
  remove: (id) => request(`/v1/videos/${encodeURIComponent(id)}`, { method: "DELETE" }).then((r) => r.data),
  recipe: (id, variation = 1) =>
    request(`/v1/openreel/videos/${encodeURIComponent(id)}/recipe?variation=${variation}`).then((r) => r.data),
  provenance: (id, variation = 1) =>
    request(`/v1/openreel/videos/${encodeURIComponent(id)}/provenance?variation=${variation}`).then((r) => r.data),
  // The editing routes (issue 4): each answers with a new Video (a Still for stills).
  remix: (id, json) => request(`/v1/videos/${encodeURIComponent(id)}/remix`, { method: "POST", json }).then((r) => r.data),
  extend: (form) => request("/v1/videos/extensions", { method: "POST", body: form }).then((r) => r.data),
  recut: (json) => request("/v1/openreel/recut", { method: "POST", json }).then((r) => r.data),
  loop: (json) => request("/v1/openreel/loop", { method: "POST", json }).then((r) => r.data),
  blend: (json) => request("/v1/openreel/blend", { method: "POST", json }).then((r) => r.data),
  storyboard: (json) => request("/v1/openreel/storyboard", { method: "POST", json }).then((r) => r.data),
  still: (json) => request("/v1/openreel/stills", { method: "POST", json }).then((r) => r.data),
  stillStatus: (id) => request(`/v1/openreel/stills/${encodeURIComponent(id)}`).then((r) => r.data),
};

export function contentPath(id, variant = "video", variation = 1) {
  const query = new URLSearchParams({ variant, variation: String(variation) });
  return `/v1/videos/${encodeURIComponent(id)}/content?${query}`;
}

// Media URLs for <video>/<img>: elements cannot send an Authorization header, so with a key the
// file is fetched as a blob and shown through an object URL; without one the plain same-origin
// URL lets the browser stream and seek. Blob URLs are cached per file and revoked on forget.
const mediaCache = new Map();

export function forgetMedia(id = null) {
  for (const [path, entry] of mediaCache) {
    if (id === null || path.includes(`/v1/videos/${encodeURIComponent(id)}/`)) {
      entry.then((url) => url.startsWith("blob:") && URL.revokeObjectURL(url)).catch(() => {});
      mediaCache.delete(path);
    }
  }
}

export function mediaUrl(id, variant = "video", variation = 1) {
  return fileUrl(contentPath(id, variant, variation));
}

// A finished still's image, the same way as a video's files.
export function stillUrl(id) {
  return fileUrl(`/v1/openreel/stills/${encodeURIComponent(id)}/content`);
}

function fileUrl(path) {
  if (!apiKey.get()) return Promise.resolve(path);
  if (!mediaCache.has(path)) {
    const pending = (async () => {
      let response;
      try {
        response = await fetch(path, { headers: headers() });
      } catch {
        throw new ApiError(0, { message: "Cannot reach the openreel server.", code: "network" });
      }
      if (!response.ok) {
        const error = await errorFrom(response);
        if (response.status === 401) authNeeded(error.message);
        throw error;
      }
      return URL.createObjectURL(await response.blob());
    })();
    pending.catch(() => mediaCache.delete(path)); // a failure is not cached: the next try asks again
    mediaCache.set(path, pending);
  }
  return mediaCache.get(path);
}

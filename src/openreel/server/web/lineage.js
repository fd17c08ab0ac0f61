// Where a video came from: "Remix (subtle) of …", "Blend of … and …", with each parent a button
// that shows that video. The Video object carries remixed_from_video_id (remix, extend) and
// openreel.parents (recut, loop, blend, storyboard).

import { el } from "./dom.js";

const STRENGTHS = { 0.3: "subtle", 0.5: "mild", 0.75: "strong" };

export function parentsOf(video) {
  const ids = [...(video.openreel?.parents || [])];
  if (video.remixed_from_video_id && !ids.includes(video.remixed_from_video_id)) ids.unshift(video.remixed_from_video_id);
  return ids;
}

function strengthWords(value) {
  if (value === null || value === undefined) return "";
  return ` (${STRENGTHS[value] || `strength ${value}`})`;
}

// The words before the parents, by what made the video; null when it has no story to tell.
function opening(video) {
  const info = video.openreel || {};
  switch (info.operation) {
    case "remix":
      return `Remix${strengthWords(info.strength)} of`;
    case "extend":
      return info.backward ? "Extended backwards from" : "Extended from";
    case "recut":
      return "Re-cut of";
    case "loop":
      return "Loop of";
    case "blend":
      return "Blend of";
    case "storyboard":
      return parentsOf(video).length ? "Storyboard with" : "Storyboard";
    default:
      return parentsOf(video).length ? "Made from" : null;
  }
}

// A line of text and buttons, or null. describe(id) -> a short name for a parent (or null when
// it is not on the page: deleted, or older than the loaded part of the gallery); show(id)
// reveals it.
export function lineage(video, { describe, show }) {
  const words = opening(video);
  if (!words) return null;
  const ids = parentsOf(video);
  const parts = [words];
  ids.forEach((id, index) => {
    if (index > 0) parts.push(index === ids.length - 1 ? " and " : ", ");
    else parts.push(" ");
    const name = describe(id);
    parts.push(
      name
        ? el("button", { type: "button", class: "linklike parent-link", dataset: { parent: id }, title: id, onclick: () => show(id) }, name)
        : el("code", { title: `${id} is not in the gallery on this page` }, `${id.slice(0, 14)}…`),
    );
  });
  return parts;
}

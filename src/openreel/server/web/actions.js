// The per-video actions menu: one entry per thing a person can do to a video, in button order.
//
//   { id, label, available(video) -> bool, run(video, ctx, button) }
//
// ctx is what the gallery lends an action: { variation, details(), reuse(), download(), remove() }.
// Editing tools (remix, extend, re-cut, loop, blend, storyboard) are added here as entries once
// the server has their routes; an action the server cannot perform gets no button at all, so
// nothing here is a placeholder.

const finished = (video) => video.status === "completed";

export const VIDEO_ACTIONS = [
  {
    id: "details",
    label: "Details",
    available: () => true,
    run: (video, ctx) => ctx.details(),
  },
  {
    id: "download",
    label: "Download",
    available: finished,
    run: (video, ctx, button) => ctx.download(button),
  },
  {
    id: "reuse",
    label: "Use settings again",
    available: () => true,
    run: (video, ctx, button) => ctx.reuse(button),
  },
  {
    id: "delete",
    // Deleting also cancels a video still being made.
    label: (video) => (finished(video) || video.status === "failed" ? "Delete" : "Cancel and delete"),
    available: () => true,
    danger: true,
    run: (video, ctx, button) => ctx.remove(button),
  },
];

// The per-video actions menu: one entry per thing a person can do to a video, in button order.
//
//   { id, label, available(video) -> bool, run(video, ctx, button) }
//
// ctx is what the gallery lends an action:
//   { variation, details(), reuse(), download(), remove(), edit(tool), storyboard() }.
// The editing tools (remix, extend, re-cut, loop, blend, stills) share one "Edit" entry that opens
// the editing panel, which offers each tool only where a model can do it; "Add to storyboard"
// puts the video on the storyboard's timeline as a video card.

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
    id: "edit",
    label: "Edit",
    available: finished,
    run: (video, ctx) => ctx.edit(),
  },
  {
    id: "storyboard",
    label: "Add to storyboard",
    available: finished,
    run: (video, ctx) => ctx.storyboard(),
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

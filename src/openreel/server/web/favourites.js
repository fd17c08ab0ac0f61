// Favourites: the ★ on a video's tile. Kept in this browser's localStorage (a person's taste, not
// the server's data), so they survive a reload without any change to the API or its database.

const STORAGE = "openreel.favourites";

function load() {
  try {
    const ids = JSON.parse(localStorage.getItem(STORAGE) || "[]");
    return new Set(Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : []);
  } catch {
    return new Set(); // unreadable (or refused storage): start with none rather than fail
  }
}

const favourites = load();

function save() {
  try {
    localStorage.setItem(STORAGE, JSON.stringify([...favourites]));
  } catch {
    // Private windows may refuse storage; the stars still work until the page is closed.
  }
}

export function isFavourite(id) {
  return favourites.has(id);
}

export function setFavourite(id, on) {
  if (on) favourites.add(id);
  else favourites.delete(id);
  save();
}

// A deleted video's star goes with it.
export function forgetFavourite(id) {
  if (favourites.delete(id)) save();
}

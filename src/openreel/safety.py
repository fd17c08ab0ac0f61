"""The local prompt policy: the person who runs openreel decides what it refuses to make.

The policy is a TOML file, ``home()/"policy.toml"`` or the file named by ``OPENREEL_POLICY``.
It can switch checking off, list categories of blocked terms, and list allowed phrases that win
over a blocked term inside them. Nothing is sent anywhere and nothing waits for approval: a
blocked prompt is refused at once with the rule that blocked it.

On first use a default file is written with two small categories that nearly every owner wants
(sexual content involving minors; non-consensual intimate imagery). Everything else is the
owner's call: add categories, edit terms, or set ``enabled = false``.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from openreel import paths
from openreel.errors import OpenreelError

POLICY_ENV = "OPENREEL_POLICY"

DEFAULT_POLICY = """\
# openreel prompt policy. It is checked on this machine only; nothing is sent anywhere.
# A prompt containing a term of a category below is refused with that category's name.
# Terms match whole words, case-insensitively; a trailing * matches any ending ("nud*").
# Phrases in `allow` are removed before matching, so they win over a blocked term inside them.
# Set enabled = false to turn checking off.

enabled = true
allow = []

[categories.sexual_minors]
description = "Sexual content involving minors"
terms = ["child porn*", "child sexual*", "underage sex*", "underage nud*", "minor nud*", "loli porn*",
         "preteen sex*", "preteen nud*"]

[categories.non_consensual_intimate]
description = "Intimate imagery of real people without their consent"
terms = ["revenge porn*", "deepfake porn*", "deepfake nud*", "undress her", "undress him", "nudify"]
"""


class PolicyBlocked(OpenreelError):
    """The prompt matched a rule of the owner's local policy."""

    code = "moderation_blocked"
    status = 400

    def __init__(self, message: str, *, category: str, term: str):
        super().__init__(message, param="prompt")
        self.category = category
        self.term = term


class PolicyError(OpenreelError):
    """The policy file itself is broken: refuse everything rather than silently allow."""

    code = "policy_invalid"
    status = 500


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    terms: tuple[str, ...]
    pattern: re.Pattern[str] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Policy:
    path: Path | None
    enabled: bool
    categories: tuple[Category, ...]
    allow: tuple[str, ...] = ()

    def check(self, text: str) -> None:
        if not self.enabled:
            return
        cleaned = _normalise(text)
        for phrase in self.allow:
            cleaned = re.sub(_term_regex(phrase), " ", cleaned)
        for category in self.categories:
            match = category.pattern.search(cleaned)
            if match:
                where = f" in {self.path}" if self.path else ""
                raise PolicyBlocked(
                    f'prompt blocked by the local policy: category "{category.name}" '
                    f'({category.description}) matched "{match.group(0).strip()}"; '
                    f"the owner sets this policy{where}",
                    category=category.name,
                    term=match.group(0).strip(),
                )


def policy_path() -> Path:
    configured = os.environ.get(POLICY_ENV)
    return Path(configured).expanduser() if configured else paths.home() / "policy.toml"


def load_policy(path: Path | None = None) -> Policy:
    """Read the policy; the default location gets the default file on first use."""
    import tomllib

    explicit = path is not None or bool(os.environ.get(POLICY_ENV))
    path = path or policy_path()
    if not path.exists():
        if explicit:
            raise PolicyError(f"policy file {path} (from {POLICY_ENV}) does not exist")
        _write_default(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy file {path} cannot be read: {exc}") from None
    return parse_policy(data, path)


def parse_policy(data: dict, path: Path | None = None) -> Policy:
    def fail(why: str) -> PolicyError:
        return PolicyError(f"policy file {path}: {why}" if path else f"policy: {why}")

    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("`enabled` must be true or false")
    allow = data.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        raise fail("`allow` must be a list of strings")
    categories = []
    for name, body in (data.get("categories") or {}).items():
        if not isinstance(body, dict):
            raise fail(f"[categories.{name}] must be a table")
        terms = body.get("terms", [])
        if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
            raise fail(f"[categories.{name}] terms must be a list of non-empty strings")
        if not terms:
            continue
        pattern = re.compile("|".join(_term_regex(t) for t in terms))
        categories.append(Category(name, str(body.get("description", name)), tuple(terms), pattern))
    return Policy(path=path, enabled=enabled, categories=tuple(categories), allow=tuple(allow))


def check_prompt(text: str) -> None:
    """Raise ``PolicyBlocked`` if the owner's policy refuses ``text``."""
    # Read on every call: the file is tiny, and an owner's edit takes effect without a restart.
    load_policy().check(text)


def _normalise(text: str) -> str:
    # Lowercase, and punctuation/underscores to spaces, so "Child_Porn" or "child-porn" match.
    return " " + re.sub(r"[\W_]+", " ", text.lower()) + " "


def _term_regex(term: str) -> str:
    words = _normalise(term.rstrip("*")).split()
    body = r"\s+".join(re.escape(w) for w in words)
    tail = r"\w*" if term.endswith("*") else ""
    return rf"(?<!\w){body}{tail}(?!\w)"


def _write_default(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".policy.", suffix=".toml")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(DEFAULT_POLICY)
    try:
        os.link(tmp, path)  # never overwrite a policy another process (or the owner) just wrote
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)

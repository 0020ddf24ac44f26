""""Did you mean": the closest of the names a user could have meant (a verb, an
option, a worker), for refusals that say what to type instead."""
from __future__ import annotations

from typing import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` is most likely a typo of, or None when none is close."""
    import difflib  # only a refusal pays for it

    found = difflib.get_close_matches(word, [c for c in choices if c != word], n=1, cutoff=0.6)
    return found[0] if found else None


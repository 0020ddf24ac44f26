"""Cost and turns as agents report them and records keep them: untrusted numbers,
made safe to add up, print and write as JSON. A value of the wrong type, NaN or
infinite, negative, or absurdly large counts as unknown (None), never as an error."""
from __future__ import annotations

import math
TYPE_CHECKING = False  # typing is not loaded at run time: the finisher beside every agent imports this module
if TYPE_CHECKING:
    from typing import Any, Iterable

MAX_COST_USD = 1e9  # no run costs a billion dollars: such a number is garbage
MAX_TURNS = 10**9


def cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0 <= value <= MAX_COST_USD else None


def turns(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_TURNS else None


def total_cost(items: Iterable[Any]) -> float:
    """The summed `cost_usd` of records (or runs); items that are not records count 0."""
    return round(math.fsum(cost(item.get("cost_usd")) or 0.0 for item in items if isinstance(item, dict)), 6)


def total_turns(items: Iterable[Any]) -> int:
    return sum(turns(item.get("num_turns")) or 0 for item in items if isinstance(item, dict))

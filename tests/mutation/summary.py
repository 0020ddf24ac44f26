"""The score of a cosmic-ray session and its survivors, for tests/mutation/run.

    python3 tests/mutation/summary.py SESSION.sqlite MODULE

Score = killed / (killed + survived). Mutants that could not run at all (incompetent:
the mutated module does not import), timeouts (counted as killed, as cosmic-ray does)
and those left out of a sample are said, not scored."""
from __future__ import annotations

import sys
from collections import Counter

from cosmic_ray.work_db import use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome


def main(session: str, module: str) -> None:
    counts: Counter[str] = Counter()
    survivors = []
    with use_db(session) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                counts["not run (outside the sample)"] += 1
            elif result.worker_outcome == WorkerOutcome.ABNORMAL:
                counts["killed"] += 1  # a timeout: the mutant hung the tests
                counts["of which timeouts"] += 1
            elif result.test_outcome == TestOutcome.KILLED:
                counts["killed"] += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                counts["survived"] += 1
                survivors.append((item, result))
            else:
                counts["incompetent"] += 1
        pending = sum(1 for _ in db.pending_work_items)
    scored = counts["killed"] + counts["survived"]
    score = f"{100 * counts['killed'] / scored:.1f}%" if scored else "n/a"
    print(f"{module}: mutation score {score} ({counts['killed']} killed of {scored} run"
          + "".join(f", {n} {what}" for what, n in sorted(counts.items()) if what not in ("killed", "survived"))
          + (f", {pending} pending" if pending else "") + ")")
    for item, result in survivors:
        mutation = item.mutations[0]
        print(f"\nsurvived: line {mutation.start_pos[0]} {mutation.operator_name} #{mutation.occurrence}")
        print(result.diff or "")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Keep a random sample of a cosmic-ray session's pending mutants (the others are marked
skipped): for a module whose tests take minutes, a sample's score is what fits in time.

    python3 tests/mutation/sample.py SESSION.sqlite COUNT [SEED]
"""
from __future__ import annotations

import random
import sys

from cosmic_ray.work_db import use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult


def main(session: str, count: int, seed: int = 18) -> None:
    with use_db(session) as db:
        # job ids are random: order by what each mutant is, so a seed picks the same sample every run
        items = sorted(db.pending_work_items, key=lambda item: [
            (str(m.module_path), m.operator_name, m.occurrence, tuple(m.start_pos)) for m in item.mutations])
        keep = set(random.Random(seed).sample(range(len(items)), min(count, len(items))))
        for index, item in enumerate(items):
            if index not in keep:
                db.set_result(item.job_id, WorkResult(output="not in the sample", worker_outcome=WorkerOutcome.SKIPPED))
        print(f"sampled {len(keep)} of {len(items)} mutants (seed {seed})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *(int(a) for a in sys.argv[3:4]))

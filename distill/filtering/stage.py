"""Filter stage: runs the filters of filters/ over a run and sets keep / reject_reason.

    apply_filters(cfg, run)   data/all gains keep, reject_reason (the FIRST failing rule in RULES
                              order), dup_of, contaminated_by (+ method, score, shared spans:
                              distill/filtering/decontamination.py), language, language_share,
                              answer_language, repetition; stats.json gains "filter" and
                              "decontamination". Rejected rows stay in data/all.

Rules run in RULES order (filtering/config.py says why); `rules.py` computes every rule's column.
Rules whose inputs are missing (no verify columns, no benchmarks) are skipped and the report says so.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from distill.filtering.config import FilterConfig
from distill.filtering.report import FilterReport
from distill.run import writes_run

if TYPE_CHECKING:
    from distill.progress import Progress
    from distill.run import RunDir

log = logging.getLogger(__name__)
STAGE = "filter"


@writes_run("filter")
def apply_filters(cfg: FilterConfig, run: RunDir, *, progress: Progress | None = None) -> FilterReport:
    """Run every rule over data/all, write the verdict columns back and the report to stats.json."""
    from distill.filtering.rules import evaluate_rules

    started = time.monotonic()
    columns, report = evaluate_rules(cfg, run, progress=progress)
    run.update_rows(columns)
    report.seconds = time.monotonic() - started
    run.update_stats("filter", report.to_stats())
    run.update_stats("decontamination", report.decontamination)
    run.mark_done(STAGE, cfg.fingerprint(), rows_in=report.rows_in, rows_kept=report.rows_kept)
    log.debug("filter: %s", report.summary())
    return report

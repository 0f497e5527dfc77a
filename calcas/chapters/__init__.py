"""The book's chapters, one module each, all in the same three steps.

- ``compute(...) -> <Chapter>Facts``: every number, table, curve and verdict the chapter shows,
  in a frozen dataclass (:class:`calcas.chapters.common.Facts`) whose ``to_dict()`` is the
  chapter's ``results.json`` and whose ``from_dict()`` reads it back.
- Verdicts are typed fields of the facts (:class:`calcas.chapters.common.Verdict`), decided
  only from intervals whose coverage the estimator study measures.
- ``prose(facts) -> dict[str, str]`` phrases the facts: no arithmetic, no thresholds, and the
  paper's numbers only from ``calcas/data/paper_reference.json``.

Chapters sit above the library (records, calibration, metrics, cascade, chain, cleaning) and
above :mod:`calcas.render`, which draws figures, explorers and tables and knows no chapter.
What two chapters share lives in :mod:`calcas.chapters.common`. The runner and the command
line (:mod:`calcas.run`, :mod:`calcas.user_report`) sit on top.
"""

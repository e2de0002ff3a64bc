"""`edgetts bench`: how well the planner does on questions calibration never saw, against baselines.

The pieces, one job each: :mod:`.records` keeps every run in an append-only ``results.jsonl`` (so
an interrupted bench resumes), :mod:`.selection` decides what the baselines run, :mod:`.runner`
makes the runs, :mod:`.stats` and :mod:`.summary` turn records into per-target numbers and the
issue's pass/fail checks, and :mod:`.report` shows them (rich table, markdown, PNG).
"""

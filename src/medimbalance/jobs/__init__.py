"""Running workflow jobs: device, threads, seeds and provenance (:mod:`.runtime`), the local GPU
pool (:mod:`.gpus`), logging to the rule's log (:mod:`.logs`) and warm starts (:mod:`.warm`).

Nothing here imports torch at import time but :mod:`.runtime`; :mod:`.warm` and :mod:`.logs`
are standard library only (``common.smk`` and every rule script's first import use them).
"""

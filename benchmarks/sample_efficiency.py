"""Retired (issue 23): BC on K and 2K against K + practice is `practice_gain.py` now.

The old script (the blind Stage-1 recipe of 2026-11-21, docs/notebook/) is in git history:
`git show 95f52fe:benchmarks/sample_efficiency.py`. This name only re-exports `machine` for
practice_pays.py, which is being changed elsewhere; import `from benchmarks import machine`
and delete this module once `grep -rn benchmarks.sample_efficiency benchmarks test` finds
nothing else.
"""

from benchmarks import machine  # noqa: F401, re-exported

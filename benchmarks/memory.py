"""Peak resident memory of the current process, from getrusage."""

from __future__ import annotations

import resource
import sys


def max_rss_mib() -> float:
    """Return this process's maximum resident set size so far, in MiB.

    getrusage reports ru_maxrss in KiB on Linux and in bytes on macOS.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return peak / scale

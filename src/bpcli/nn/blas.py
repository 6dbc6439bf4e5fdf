"""How many threads the BLAS under numpy uses in the bpcli command: one, unless BPCLI_THREADS says otherwise."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# the variables the BLAS and OpenMP libraries numpy may be built on read once, when numpy is first imported
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
# one thread: bpcli's matrices are small (at most a few hundred units a layer, batches of tens to hundreds of
# rows), where a second BLAS thread costs more in hand-over than it saves (BENCHMARKS.md, "BLAS threads")
DEFAULT_THREADS = 1


class ThreadsError(ValueError):
    pass


def set_blas_threads(environ: MutableMapping[str, str] = os.environ) -> int | None:
    """Before numpy is imported: the BLAS thread count into THREAD_VARS. BPCLI_THREADS (a whole number >= 1)
    sets them all; without it, a variable the user set is kept and the others get DEFAULT_THREADS, unless
    the user set any of them (then their choice stands). Returns the count set, or None when left alone;
    ThreadsError when BPCLI_THREADS is not a whole number >= 1."""
    raw = environ.get("BPCLI_THREADS", "").strip() or None  # set but empty: as if unset
    if raw is None:
        if any(v in environ for v in THREAD_VARS):
            return None
        n = DEFAULT_THREADS
    else:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ThreadsError(f"BPCLI_THREADS is {raw!r}; expected a whole number of threads, 1 or more")
    for v in THREAD_VARS:
        environ[v] = str(n)
    return n

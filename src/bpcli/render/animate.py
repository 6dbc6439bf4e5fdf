"""Rich view of `bpcli animate` (AnimateResult)."""

from __future__ import annotations

from bpcli.render.wrap import Prose


def animate_view(res) -> Prose:
    """One line: the file written, its frames and the epochs they span."""
    size = f"{res.bytes / 1e6:.1f} MB" if res.bytes >= 1e6 else f"{max(1, round(res.bytes / 1e3))} KB"
    span = f"epoch {res.epochs[0]}" if len(res.epochs) == 1 else f"epochs {res.epochs[0]} to {res.epochs[-1]}"
    return Prose(f"wrote {res.out}: {res.frames} frame{'s' if res.frames != 1 else ''}, {span} (of {res.snapshots:,} "
                f"kept), {size}, {res.seconds:.1f} s")

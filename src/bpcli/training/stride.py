"""Which epochs measure the statistics that cost a pass over the data (update ratios, saturation)."""

STATS_STEPS = 64  # update ratios and saturation are measured at least once every this many steps (cost < 5%)


def stats_every(steps_per_epoch: int) -> int:
    """Every how many epochs update ratios and saturation are measured: the smallest power of two k with
    k * steps_per_epoch >= STATS_STEPS (a power of two, so history's thinned sample lands on measured epochs)."""
    k = 1
    while k * steps_per_epoch < STATS_STEPS:
        k *= 2
    return k


def measured(epoch: int, every: int) -> bool:
    """Whether update ratios and saturation are measured at `epoch`: the first and every `every`-th (a function
    of the epoch alone, so a resumed or branched run records exactly what an uninterrupted one does)."""
    return epoch == 1 or epoch % every == 0

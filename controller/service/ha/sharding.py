"""Which leases a replica should take or give up: a fair share each, expired leases first.

The pattern of the Kinesis Client Library, without its forced "steal": a replica above its share
gives leases up (lets them expire) and a replica below it takes leases nobody holds, so a lease
never changes hands while its holder may still be writing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


def fair_share(targets: int, replicas: int) -> int:
    """At most this many targets per replica: ceil(M/N), so the shares always cover every target."""
    if targets <= 0:
        return 0
    return math.ceil(targets / max(1, replicas))


@dataclass(frozen=True)
class Balance:
    share: int
    acquire: tuple[str, ...]  # candidates in the order to try them (stop once `wanted` are taken)
    wanted: int  # how many of them to take
    shed: tuple[str, ...]  # held leases to give up


def plan_balance(
    targets: Sequence[str],
    held: Collection[str],
    absent: Collection[str],
    expired: Collection[str],
    replicas: int,
    others: Mapping[str, int] | None = None,
    rng: random.Random | None = None,
) -> Balance:
    """One replica's next step, from what it holds and what it observed of everyone else.

    ``expired`` leases have not changed for a whole lease duration as this replica observed them
    (their holder died or gave them up); ``absent`` ones have no item (never held, or released).
    Expired ones come first, as in the KCL: their targets have gone unreconciled longest. Each
    group is shuffled so that replicas starting together rarely race for the same lease.

    ``others`` is how many live leases each other live replica holds. When nothing is free and
    one of them holds fewer than floor(M/N) while this replica holds more, this replica gives one
    lease up, so that [3, 3, 1] becomes [3, 2, 2] rather than staying lopsided.
    """
    rng = rng or random.Random()
    share = fair_share(len(targets), replicas)
    mine = sorted(t for t in targets if t in held)
    if len(mine) > share:
        return Balance(share, (), 0, tuple(mine[share:]))
    free = [t for t in targets if t in absent and t not in held]
    stale = [t for t in targets if t in expired and t not in held and t not in absent]
    wanted = max(0, share - len(mine))
    if wanted and (free or stale):
        rng.shuffle(free)
        rng.shuffle(stale)
        return Balance(share, tuple(stale + free), wanted, ())
    floor = len(targets) // max(1, replicas)
    starved = others is not None and any(count < floor for count in others.values())
    if not free and not stale and starved and len(mine) > floor:
        return Balance(share, (), 0, (mine[-1],))
    return Balance(share, (), 0, ())

"""Split weights that always add up to 100.

meshkit keeps Istio's pre-1.15 rule that a split's weights add up to 100
(docs/config.md, "Weights"), so the split widget must never offer a state that
the lab would refuse. When the learner moves one slider, the others make room
in proportion to what they had: 50/30/20 with the first moved to 80 becomes
80/12/8, so the relative order of the untouched subsets is kept, which is what
a learner expects from "give more to this one".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

TOTAL = 100


def rebalance(weights: Mapping[str, int], moved: str, value: int) -> dict[str, int]:
    """The weights after `moved` is set to `value`, the others rescaled to fill the rest.

    Others keep their proportions; when they had nothing between them, the
    rest is shared equally. Rounding is by largest remainder so the total is
    exactly 100 (ties go to the earlier subset, so the result is stable).
    """
    if moved not in weights:
        raise KeyError(f"no subset {moved!r} in the split (subsets: {', '.join(weights)})")
    if len(weights) == 1:
        return {moved: TOTAL}
    value = max(0, min(TOTAL, int(value)))
    others = [name for name in weights if name != moved]
    rest = TOTAL - value
    had = [max(0, int(weights[name])) for name in others]
    shares = [float(w) for w in had] if sum(had) > 0 else [1.0] * len(others)
    allotted = distribute(rest, shares)
    result = {name: allotted[i] for i, name in enumerate(others)}
    result[moved] = value
    return {name: result[name] for name in weights}


def distribute(total: int, shares: Sequence[float]) -> list[int]:
    """Whole numbers proportional to `shares` that add up to `total` (largest remainder)."""
    if not shares:
        return []
    whole = sum(shares)
    if whole <= 0:
        shares = [1.0] * len(shares)
        whole = float(len(shares))
    exact = [total * share / whole for share in shares]
    floors = [int(x) for x in exact]
    left = total - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def normalized(weights: Mapping[str, int | float], subsets: Sequence[str]) -> dict[str, int]:
    """Weights for exactly `subsets`, adding up to 100.

    Used when a VirtualService's weights are read back into sliders: a subset
    the route does not name gets 0, one the DestinationRule no longer has is
    dropped, and what remains is scaled to 100 (all to the first subset if
    nothing is left).
    """
    if not subsets:
        return {}
    kept = [max(0.0, float(weights.get(name, 0))) for name in subsets]
    if sum(kept) <= 0:
        return {name: (TOTAL if i == 0 else 0) for i, name in enumerate(subsets)}
    return dict(zip(subsets, distribute(TOTAL, kept), strict=True))

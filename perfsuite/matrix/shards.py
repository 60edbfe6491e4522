"""Splitting a tier over several runners: `--perfsuite-shard i/n`, deterministic, with the
variants of a relative bound kept in one shard (joined afterwards by `perfsuite merge`).
"""

from __future__ import annotations

from perfsuite.matrix.settings import MatrixError
from perfsuite.matrix.tier import Matrix


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` (1-based) -> (i, n); MatrixError naming the value otherwise."""
    head, _, tail = text.partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        raise MatrixError(f"--perfsuite-shard {text!r}: expected i/n, e.g. 2/4") from None
    if not 1 <= index <= count:
        raise MatrixError(f"--perfsuite-shard {text!r}: i must be within 1..n")
    return index, count


def shard_assignment(matrix: Matrix, count: int) -> dict[str, int]:
    """Variant id -> shard (1-based), deterministic, for splitting a tier over `count` runners.

    Variants tied by a relative bound form one group and land in one shard (the pair's
    interleaved case and both variants' own cases run on the same machine); groups go,
    largest first, to the shard with the fewest variants so far (ties to the lowest index).
    """
    parent = {v.id: v.id for v in matrix.variants}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for bound in matrix.relative:
        a, b = find(bound.variant.id), find(bound.reference.id)
        if a != b:
            parent[max(a, b)] = min(a, b)
    order = {v.id: i for i, v in enumerate(matrix.variants)}
    groups: dict[str, list[str]] = {}
    for v in matrix.variants:
        groups.setdefault(find(v.id), []).append(v.id)
    loads = [0] * count
    out: dict[str, int] = {}
    for members in sorted(groups.values(), key=lambda g: (-len(g), order[g[0]])):
        shard = loads.index(min(loads))
        loads[shard] += len(members)
        out.update({m: shard + 1 for m in members})
    return out

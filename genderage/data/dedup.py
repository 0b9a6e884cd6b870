"""Exact and near-duplicate grouping, and the keep/drop decision for each group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sources import Record


@dataclass
class Fingerprint:
    """What de-duplication needs to know about one decoded image."""

    sha256: str
    dhash: bytes


class _UnionFind:
    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def near_pairs(hashes: list[bytes], max_distance: int, block: int = 2048) -> list[tuple[int, int, int]]:
    """All pairs (i, j, distance) with i < j whose hashes differ in at most `max_distance` bits.

    Exact all-pairs Hamming distances as a blocked matrix product of the bit matrices
    (distance = |a| + |b| - 2 a·b): seconds for tens of thousands of images, and no missed pairs.
    """
    if len(hashes) < 2 or max_distance < 0:
        return []
    bits = np.unpackbits(np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), -1), axis=1)
    bits = bits.astype(np.float32)
    ones = bits.sum(axis=1)
    pairs = []
    for start in range(0, len(bits), block):
        rows = bits[start : start + block]
        distances = ones[start : start + block, None] + ones[None, :] - 2.0 * (rows @ bits.T)
        for i, j in zip(*np.nonzero(distances <= max_distance + 0.5)):
            if start + i < j:
                pairs.append((int(start + i), int(j), int(round(distances[i, j]))))
    return pairs


@dataclass
class DedupDecision:
    """Indices to keep, and (index, reason) for each dropped duplicate."""

    keep: list[int]
    dropped: list[tuple[int, str]]
    groups: int  # duplicate groups found (size > 1)
    conflicting_groups: int


def _completeness(record: Record) -> int:
    return sum(value is not None for value in (record.gender, record.age, record.age_group, record.race))


def deduplicate(records: list[Record], prints: list[Fingerprint], max_distance: int) -> DedupDecision:
    """Group exact (same bytes) and near (dHash distance <= max_distance) duplicates.

    A group whose gender or age-group labels disagree is dropped whole (we cannot tell which label
    is right); a group that agrees keeps its most completely labelled image. Missing labels never conflict.
    """
    union = _UnionFind(len(records))
    first_by_sha: dict[str, int] = {}
    for index, fingerprint in enumerate(prints):
        union.union(first_by_sha.setdefault(fingerprint.sha256, index), index)
    for i, j, _ in near_pairs([p.dhash for p in prints], max_distance):
        union.union(i, j)
    members: dict[int, list[int]] = {}
    for index in range(len(records)):
        members.setdefault(union.find(index), []).append(index)

    keep, dropped, groups, conflicting = [], [], 0, 0
    for group in members.values():
        if len(group) == 1:
            keep.append(group[0])
            continue
        groups += 1
        genders = {records[i].gender for i in group} - {None}
        age_groups = {records[i].age_group for i in group} - {None}
        if len(genders) > 1 or len(age_groups) > 1:
            conflicting += 1
            labels = ", ".join(f"{records[i].gender}/{records[i].age_group}" for i in group)
            others = [records[i].source_path for i in group]
            for i in group:
                peers = "; ".join(p for p in others if p != records[i].source_path)
                dropped.append((i, f"duplicate group with conflicting labels ({labels}): {peers}"))
            continue
        kept = max(group, key=lambda i: (_completeness(records[i]), -i))
        keep.append(kept)
        for i in group:
            if i != kept:
                kind = "exact" if prints[i].sha256 == prints[kept].sha256 else "near"
                dropped.append((i, f"{kind} duplicate of {records[kept].source_path}"))
    return DedupDecision(sorted(keep), dropped, groups, conflicting)

"""Node choice by weight: smooth round robin, consistent hashing, least connections."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from fd2_inference.balancer import (
    ConsistentHash,
    LeastConnections,
    SmoothRoundRobin,
    make_picker,
)


def test_smooth_round_robin_spreads_heavy_nodes_out() -> None:
    picker = SmoothRoundRobin([5, 1, 1])
    assert [picker.pick("", ()) for _ in range(7)] == [0, 0, 1, 0, 2, 0, 0]


@given(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=6))
def test_smooth_round_robin_honours_weights_exactly_over_a_cycle(weights: list[int]) -> None:
    picker = SmoothRoundRobin(weights)
    counts = Counter(picker.pick("", ()) for _ in range(sum(weights) * 3))
    assert [counts[index] for index in range(len(weights))] == [w * 3 for w in weights]


def test_round_robin_skips_nodes_already_tried() -> None:
    picker = SmoothRoundRobin([1, 1, 1])
    assert picker.pick("", [0, 1]) == 2
    assert picker.pick("", [0, 1, 2]) == 0  # all tried: any node


def test_consistent_hash_keeps_a_key_on_its_node() -> None:
    picker = ConsistentHash([1, 1, 1])
    first = {key: picker.pick(key, ()) for key in map(str, range(200))}
    assert all(picker.pick(key, ()) == node for key, node in first.items())
    assert len(set(first.values())) == 3


def test_consistent_hash_follows_weights_roughly() -> None:
    picker = ConsistentHash([3, 1])
    counts = Counter(picker.pick(f"client-{n}", ()) for n in range(4000))
    assert 0.6 < counts[0] / 4000 < 0.9


def test_consistent_hash_moves_on_when_a_node_failed() -> None:
    picker = ConsistentHash([1, 1])
    node = picker.pick("k", ())
    assert picker.pick("k", [node]) == 1 - node


def test_least_connections_prefers_the_idlest_node_for_its_weight() -> None:
    picker = LeastConnections([2, 1])
    picks = [picker.pick("", ()) for _ in range(3)]  # nothing released: all in flight
    assert Counter(picks) == {0: 2, 1: 1}
    picker.release(0)
    picker.release(0)
    assert picker.pick("", ()) == 0


def test_least_connections_skips_failed_nodes() -> None:
    picker = LeastConnections([1, 1])
    assert picker.pick("", [0]) == 1


def test_make_picker() -> None:
    assert isinstance(make_picker("roundrobin", [1]), SmoothRoundRobin)
    assert isinstance(make_picker("chash", [1]), ConsistentHash)
    assert isinstance(make_picker("least_conn", [1]), LeastConnections)

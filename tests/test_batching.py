"""Dynamic padding and batch orders."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cls_app.text.batching import length_grouped_batches, length_sorted_batches, pad_batch, shuffled_batches


def test_pad_batch_pads_to_longest_in_batch() -> None:
    ids, mask = pad_batch([[2, 5, 3], [2, 3]], pad_id=0)
    assert ids.tolist() == [[2, 5, 3], [2, 3, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    ids, mask = pad_batch([[2, 5, 3], [2, 3]], pad_id=0, pad_to=4)  # static padding
    assert ids.tolist() == [[2, 5, 3, 0], [2, 3, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]


@given(st.lists(st.integers(1, 50), min_size=1, max_size=200), st.integers(1, 17))
def test_length_sorted_batches_cover_each_index_once(lengths: list[int], batch_size: int) -> None:
    batches = length_sorted_batches(lengths, batch_size)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(len(b) <= batch_size for b in batches)
    ordered = [lengths[i] for i in flat]
    assert ordered == sorted(lengths, reverse=True)


@given(st.lists(st.integers(0, 600), min_size=1, max_size=200), st.integers(1, 300), st.integers(1, 2000))
def test_position_budget_bounds_each_batch_and_wastes_none(lengths: list[int], batch_size: int, budget: int) -> None:
    batches = length_sorted_batches(lengths, batch_size, max_positions=budget)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b, after in zip(batches, [*batches[1:], None], strict=True):
        longest = max(1, lengths[b[0]])
        assert len(b) <= batch_size and (len(b) == 1 or len(b) * longest <= budget)
        if after is not None and len(b) < batch_size:  # a batch ends early only when one more would not fit
            assert (len(b) + 1) * longest > budget


@given(st.integers(0, 300), st.integers(1, 33), st.integers(0, 10))
def test_shuffled_batches_cover_each_index_once(n: int, batch_size: int, seed: int) -> None:
    batches = shuffled_batches(n, batch_size, np.random.default_rng(seed))
    flat = np.concatenate(batches) if batches else np.array([], dtype=int)
    assert sorted(flat.tolist()) == list(range(n))


@given(st.lists(st.integers(1, 128), min_size=0, max_size=400), st.integers(1, 33), st.integers(0, 5))
def test_length_grouped_batches_cover_each_index_once(lengths: list[int], batch_size: int, seed: int) -> None:
    batches = length_grouped_batches(lengths, batch_size, np.random.default_rng(seed), group=4)
    flat = np.concatenate(batches) if batches else np.array([], dtype=int)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_length_grouping_reduces_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 128, size=3200).tolist()

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = length_grouped_batches(lengths, 32, np.random.default_rng(1))
    plain = shuffled_batches(len(lengths), 32, np.random.default_rng(1))
    assert padded(grouped) < 0.7 * padded(plain)

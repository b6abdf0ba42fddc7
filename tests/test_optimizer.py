"""RowSparseAdamW and clip_grad_norm: row-sparse embedding gradients, the update of AdamW on dense ones."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.modeling.bert import BertClassifier, embedding_tables, scratch_config
from cls_app.runtime.device import RowSparseAdamW, clip_grad_norm


def _pair(rows: int = 12, dim: int = 5) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    dense = torch.nn.Sequential(torch.nn.Embedding(rows, dim), torch.nn.Linear(dim, 3))
    sparse = torch.nn.Sequential(torch.nn.Embedding(rows, dim, sparse=True), torch.nn.Linear(dim, 3))
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, ids: torch.Tensor, max_norm: float | None) -> None:
    loss = model(ids).sum(dim=1).pow(2).mean()
    loss.backward()
    if max_norm is not None:
        clip_grad_norm(model.parameters(), max_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("fused", [True, False])
def test_every_row_used_equals_dense_adamw(fused: bool) -> None:
    dense, sparse = _pair()
    opt_d = torch.optim.AdamW(dense.parameters(), lr=0.05, weight_decay=0.1)
    opt_s = RowSparseAdamW(sparse.parameters(), lr=0.05, weight_decay=0.1, fused=fused)
    for step in range(5):
        ids = torch.arange(12).roll(step).reshape(3, 4)  # every row, in a different order each step
        _step(dense, opt_d, ids, None)
        _step(sparse, opt_s, ids, None)
    for a, b in zip(dense.parameters(), sparse.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the state has AdamW's keys, so a checkpoint of one loads into the other
    opt_d.load_state_dict(opt_s.state_dict())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=6), min_size=1, max_size=5),
       st.floats(0.01, 10.0), st.booleans())
def test_any_rows_equal_dense_adamw_with_clipping(batches: list[list[int]], max_norm: float, fused: bool) -> None:
    """Rows a batch does not use still move (their moments decay), exactly as with AdamW on dense gradients."""
    dense, sparse = _pair()
    opt_d = torch.optim.AdamW(dense.parameters(), lr=0.05, weight_decay=0.1)
    opt_s = RowSparseAdamW(sparse.parameters(), lr=0.05, weight_decay=0.1, fused=fused)
    for ids in batches:
        x = torch.tensor([ids])
        for model in (dense, sparse):
            model(x).sum(dim=1).pow(2).mean().backward()
        want = torch.nn.utils.clip_grad_norm_(dense.parameters(), max_norm)
        got = clip_grad_norm(sparse.parameters(), max_norm)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert sparse[0].weight.grad.is_sparse
        torch.testing.assert_close(sparse[0].weight.grad.to_dense(), dense[0].weight.grad, rtol=1e-5, atol=1e-6)
        for opt in (opt_d, opt_s):
            opt.step()
            opt.zero_grad(set_to_none=True)
    for a, b in zip(dense.parameters(), sparse.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not opt_s.dense_grads[sparse[0].weight].any()  # the buffer is clean for the next step


def test_embedding_tables_are_the_characters_and_bigrams() -> None:
    model = BertClassifier(scratch_config(30, ["a", "b"], layers=1, hidden=8, heads=2))
    assert embedding_tables(model) == [model.bert.embeddings.word_embeddings]
    model.add_bigrams([5 * 30 + 6])
    assert model.bigram is not None
    assert embedding_tables(model) == [model.bert.embeddings.word_embeddings, model.bigram.table]
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    assert embedding_tables(model) == [model.bigram.table]

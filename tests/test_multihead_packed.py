"""`MultiHeadAttention` keeps `w_q`, `w_k`, `w_v` side by side in memory (one packed matrix).

Inference (self-attention under `no_grad`) computes q, k and v with one product of that
packed matrix. These tests hold that path to the plain one (three layers, each on its
own) in every situation that could leave the packed matrix stale: training steps,
`load_state_dict` (copy and assign), `.double()`, `param.data = ...`, pickling,
`deepcopy`, `functional_call`, hooks. A stale matrix would be a silent wrong answer.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from attn_core import MultiHeadAttention, causal_mask


def plain(m: MultiHeadAttention, x, **kwargs):
    """The output with each projection run on its own: autograd on forces the plain path."""
    with torch.enable_grad():
        out = m(x.detach(), **kwargs)
    return tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in out)


def fast(m: MultiHeadAttention, x, **kwargs):
    with torch.no_grad():
        return m(x, **kwargs)


def assert_paths_agree(m, x, atol=1e-6, **kwargs):
    (a, wa), (b, wb) = plain(m, x, **kwargs)[:2], fast(m, x, **kwargs)[:2]
    assert torch.allclose(a, b, atol=atol) and torch.allclose(wa, wb, atol=atol), (a - b).abs().max()


def uses_packed(m) -> bool:
    return m._packed_qkv() is not None


@pytest.mark.parametrize("n_heads, n_kv_heads, bias, rope", [(4, 4, True, False), (4, 2, False, False), (4, 1, True, True),
                                                            (2, 2, False, True)])
def test_packed_path_equals_the_three_layers(n_heads, n_kv_heads, bias, rope):
    torch.manual_seed(0)
    m = MultiHeadAttention(16, n_heads, bias=bias, rope=rope, n_kv_heads=n_kv_heads).eval()
    assert uses_packed(m)
    x = torch.randn(3, 7, 16)
    assert_paths_agree(m, x)
    assert_paths_agree(m, x, mask=causal_mask(7))
    # and against the layers computed by hand
    with torch.no_grad():
        q = m.w_q(x)
        packed = torch.nn.functional.linear(x, *m._packed_qkv())
    assert torch.allclose(packed[..., :16], q, atol=1e-6)


def test_the_weights_are_views_of_the_packed_matrix_and_keep_their_names():
    m = MultiHeadAttention(8, 2, n_kv_heads=1)
    weight, bias = m._packed_qkv()
    assert weight.shape == (8 + 4 + 4, 8) and bias.shape == (16,)
    assert m.w_k.weight.data_ptr() == weight[8:12].data_ptr()
    assert list(m.state_dict()) == ["w_q.weight", "w_q.bias", "w_k.weight", "w_k.bias", "w_v.weight", "w_v.bias",
                                    "w_o.weight", "w_o.bias"]
    assert all(isinstance(p, nn.Parameter) for p in m.parameters()) and len(list(m.parameters())) == 8


def test_a_training_step_updates_what_inference_uses():
    torch.manual_seed(1)
    m = MultiHeadAttention(16, 4)
    x = torch.randn(2, 5, 16)
    before = fast(m, x)[0]
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m(x)[0].square().mean().backward()
    opt.step()
    after = fast(m, x)[0]
    assert not torch.allclose(before, after, atol=1e-4)  # the step changed the packed weights too
    assert uses_packed(m)
    assert_paths_agree(m, x)


def test_gradients_reach_each_named_weight():
    torch.manual_seed(2)
    m = MultiHeadAttention(8, 2)
    x = torch.randn(1, 4, 8)
    m(x)[0].sum().backward()
    for lin in (m.w_q, m.w_k, m.w_v, m.w_o):
        assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("assign", [False, True])
def test_load_state_dict_copy_and_assign(assign):
    torch.manual_seed(3)
    m, other = MultiHeadAttention(8, 2), MultiHeadAttention(8, 2)
    state = {k: v.clone() for k, v in other.state_dict().items()}
    m.load_state_dict(state, assign=assign)
    x = torch.randn(2, 3, 8)
    assert torch.allclose(fast(m, x)[0], fast(other, x)[0], atol=1e-6)
    assert uses_packed(m)  # assign=True gives new memory: the post-load hook packs it again
    assert_paths_agree(m, x)


def test_double_and_to_repack():
    torch.manual_seed(4)
    m = MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    expected = fast(m, x)[0].double()
    m = m.double()
    assert uses_packed(m) and m._packed_qkv()[0].dtype == torch.float64
    assert torch.allclose(fast(m, x.double())[0], expected, atol=1e-6)
    m.to(torch.float64)  # a no-op conversion keeps the packing
    assert uses_packed(m)


def test_replacing_a_weight_falls_back_to_the_plain_path():
    torch.manual_seed(5)
    m = MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    m.w_k.weight.data = torch.randn(8, 8)  # new memory: the packed matrix no longer holds w_k
    assert not uses_packed(m)
    assert_paths_agree(m, x)
    m.w_v = nn.Linear(8, 8)  # a new layer altogether
    assert not uses_packed(m)
    assert_paths_agree(m, x)


def test_pickle_and_deepcopy_keep_the_weights_and_the_packing():
    torch.manual_seed(6)
    m = MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert uses_packed(clone)
        assert torch.allclose(fast(clone, x)[0], fast(m, x)[0], atol=1e-6)
        with torch.no_grad():
            clone.w_q.weight.add_(1.0)  # the copy is independent of the original
        assert not torch.allclose(fast(clone, x)[0], fast(m, x)[0], atol=1e-3)


def test_functional_call_uses_the_given_weights():
    torch.manual_seed(7)
    m, other = MultiHeadAttention(8, 2), MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        out = torch.func.functional_call(m, dict(other.named_parameters()), (x,))[0]
    assert torch.allclose(out, fast(other, x)[0], atol=1e-6)
    assert not torch.allclose(out, fast(m, x)[0], atol=1e-3)


def test_hooks_on_the_projections_still_run():
    m = MultiHeadAttention(8, 2)
    seen = []
    handle = m.w_q.register_forward_hook(lambda module, inputs, out: seen.append(out.shape))
    fast(m, torch.randn(1, 3, 8))
    handle.remove()
    assert seen == [torch.Size([1, 3, 8])]
    assert uses_packed(m)
    global_seen = []
    handle = nn.modules.module.register_module_forward_hook(lambda module, i, o: global_seen.append(type(module)))
    try:
        fast(m, torch.randn(1, 3, 8))
    finally:
        handle.remove()
    assert global_seen.count(nn.Linear) == 4


def test_the_output_projection_is_w_o_whatever_it_has_become():
    """Inference calls `F.linear` with `w_o`'s weights directly only where that is the same
    as calling `w_o`: a hook that changes the output, a subclass with its own forward and a
    parametrized weight must each still decide the output."""
    torch.manual_seed(11)
    m = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 3, 8)
    base = fast(m, x)[0]
    handle = m.w_o.register_forward_hook(lambda module, inputs, out: out * 2)
    assert torch.allclose(fast(m, x)[0], 2 * base)
    handle.remove()
    assert torch.allclose(fast(m, x)[0], base)

    class Halved(nn.Linear):
        def forward(self, input):
            return super().forward(input) / 2

    halved = Halved(8, 8)
    halved.load_state_dict(m.w_o.state_dict())
    m.w_o = halved
    assert torch.allclose(fast(m, x)[0], base / 2, atol=1e-6)
    m.w_o = nn.Linear(8, 8)
    m.w_o.load_state_dict(halved.state_dict())
    torch.nn.utils.parametrize.register_parametrization(m.w_o, "weight", _Doubled())
    expected = plain(m, x)[0]  # the plain path, with autograd, calls the parametrized layer
    assert torch.allclose(fast(m, x)[0], expected, atol=1e-6)
    assert not torch.allclose(expected, base, atol=1e-3)


class _Doubled(nn.Module):
    def forward(self, weight):
        return 2 * weight


def test_cached_decoding_and_cross_attention_agree():
    torch.manual_seed(8)
    m = MultiHeadAttention(16, 4, rope=True, n_kv_heads=2).eval()
    x = torch.randn(2, 6, 16)
    full = fast(m, x, mask=causal_mask(6))[0]
    cache = m.empty_cache(2)
    steps = []
    for t in range(6):
        out, _, cache = fast(m, x[:, t : t + 1], cache=cache)
        steps.append(out)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    memory = torch.randn(2, 9, 16)
    with torch.no_grad():
        cross = m(x, memory, memory)[0]
    with torch.enable_grad():
        cross_plain = m(x, memory, memory)[0].detach()
    assert torch.allclose(cross, cross_plain, atol=1e-6)


def test_matches_torch_multihead_attention_in_inference():
    torch.manual_seed(9)
    ref = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(ref).eval()
    assert uses_packed(ours)
    x = torch.randn(1, 16, 64)
    with torch.no_grad():
        a, wa = ours(x)
        b, wb = ref(x, x, x, need_weights=True, average_attn_weights=False)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(wa, wb, atol=1e-6)


def test_a_bias_added_later_is_not_ignored():
    torch.manual_seed(10)
    m = MultiHeadAttention(8, 2, bias=False)
    assert uses_packed(m)
    m.w_k.bias = nn.Parameter(torch.randn(8))
    assert not uses_packed(m)
    assert_paths_agree(m, torch.randn(2, 3, 8))

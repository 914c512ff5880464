"""Explorers for lesson 05, positional encoding.

- `sinusoidal_explorer`: the sinusoidal encoding for a chosen `d_model`, `base` and
  number of positions, as the table itself, as the similarity between positions (which
  depends only on their offset), or as a few columns drawn as waves.
- `rope_explorer`: a query and a key rotated by RoPE; one pair of dimensions drawn as
  arrows in its plane, and the score as a function of the offset `n - m`.

`render_sinusoidal` and `render_rope` draw the pictures (one figure per call, no pyplot);
they are not explorers, so they stay out of `__all__`.
"""

from __future__ import annotations

import math
import numbers

import ipywidgets as W
import torch
from matplotlib.ticker import MaxNLocator

from ..positional.rope import apply_rope
from ..positional.sinusoidal import sinusoidal_encoding
from ..viz import DIVERGING, new_figure
from ._base import Explorer

__all__ = ["sinusoidal_explorer", "rope_explorer"]

_BASES = (10, 100, 1000, 10000, 100000)
_STYLE = {"description_width": "initial"}


def _check_choice(value, name: str, options) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")


def _check_range(value, name: str, lo: int, hi: int, step: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer from {lo} to {hi}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if not lo <= value <= hi or (value - lo) % step:
        raise ValueError(f"{name} must be an integer from {lo} to {hi} in steps of {step}, got {value}")
    return value


# --------------------------------------------------------------------------- sinusoidal

_SIN_VIEWS = ("table", "similarity", "waves")
_OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")  # colour-blind-safe line colours


def render_sinusoidal(d_model: int = 64, base: float = 10000, n_positions: int = 100, view: str = "table"):
    """The figure of `sinusoidal_explorer`, one of three views of `PE = sinusoidal_encoding(...)`.

    - `"table"`: `PE (n_positions, d_model)`, position down, dimension across.
    - `"similarity"`: `PE[p] . PE[q] / (d_model/2)` for every pair of positions (the
      squared norm of a row is `d_model/2` for even `d_model`, so the diagonal is 1).
      Since `PE[p] . PE[q] = sum_i cos(omega_i (p - q))`, it is constant along diagonals.
    - `"waves"`: four sine columns `0, d/4, d/2, 3d/4` (rounded to even) against the
      position: the first turns once every 6.28 positions, later ones ever more slowly.
    """
    _check_choice(view, "view", _SIN_VIEWS)
    pe = sinusoidal_encoding(n_positions, d_model, base, dtype=torch.float64).numpy()  # (P, d_model)
    fig = new_figure(figsize=(5.2, 3.2))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    ax = fig.subplots()
    header = f"d_model={d_model}, base={base:g}"
    if view == "table":
        ax.imshow(pe, cmap=DIVERGING, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xlabel("dimension")
        ax.set_ylabel("position")
        ax.set_title(f"PE, {header}", fontsize=10)
    elif view == "similarity":
        gram = pe @ pe.T / (d_model / 2)  # (P, d_model) x (d_model, P) -> (P, P)
        ax.imshow(gram, cmap=DIVERGING, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xlabel("position q")
        ax.set_ylabel("position p")
        ax.set_title(f"PE[p].PE[q] / (d_model/2), {header}", fontsize=10)
    else:
        columns = sorted({2 * ((c * d_model // 4) // 2) for c in range(4)})
        for row, c in enumerate(columns):
            period = 2 * math.pi * float(base) ** (c / d_model)
            line, = ax.plot(pe[:, c], lw=1.2, color=_OKABE_ITO[row])
            ax.text(1.02, 0.95 - 0.22 * row, f"dim {c}\nperiod {period:,.{1 if period < 100 else 0}f}",
                    color=line.get_color(),
                    transform=ax.transAxes, fontsize=8, va="top")  # colour-matched labels: cheaper than a legend
        fig.subplots_adjust(right=0.78)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("position")
        ax.set_ylabel("PE value")
        ax.set_title(f"sine columns, {header}", fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    return fig


def sinusoidal_explorer(d_model: int = 64, base: float = 10000, n_positions: int = 100,
                        view: str = "table") -> Explorer:
    """Explore the sinusoidal encoding: `d_model`, `base`, the number of positions, and a view.

    Views: the table itself, the similarity between positions (it depends only on their
    offset: constant diagonals), and a few columns as waves of different wavelengths.
    Small `d_model` or small `base` make the slowest wave short, so distant positions
    start to look alike.

    Args:
        d_model: 4..128 in steps of 4.
        base: one of 10, 100, 1000, 10000, 100000.
        n_positions: 10..200 in steps of 10.
        view: "table", "similarity" or "waves".
    """
    d_model = _check_range(d_model, "d_model", 4, 128, 4)
    _check_choice(base, "base", _BASES)
    n_positions = _check_range(n_positions, "n_positions", 10, 200, 10)
    _check_choice(view, "view", _SIN_VIEWS)
    controls = {
        "d_model": W.IntSlider(value=d_model, min=4, max=128, step=4, description="d_model", style=_STYLE,
                               continuous_update=False),
        "base": W.Dropdown(options=[(f"{b:,}", b) for b in _BASES], value=base, description="base", style=_STYLE),
        "n_positions": W.IntSlider(value=n_positions, min=10, max=200, step=10, description="positions",
                                   style=_STYLE, continuous_update=False),
        "view": W.ToggleButtons(options=_SIN_VIEWS, value=view, description="view", style=_STYLE),
    }
    return Explorer(controls, render_sinusoidal,
                    caption="Sinusoidal positional encoding: change the width, the base and the length")


# --------------------------------------------------------------------------- RoPE

_ROPE_D_HEAD = 16  # 8 pairs of dimensions
_ROPE_MAX_POS = 31


def _rope_query_key():
    """The fixed query and key the RoPE explorer rotates (seeded, unit-free)."""
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, _ROPE_D_HEAD, generator=g, dtype=torch.float64)  # 2 x (d_head,)
    return q, k


def rope_scores(q, k, m: int, n: int, base: float = 10000.0):
    """`<rope(q, m), rope(k, n)>`, and the same score for every offset `-31..31` with the query at 0.

    Returns `(score, offsets, curve)`: the score at positions `(m, n)`, the offsets `n - m`
    and the score `<rope(q, 0), rope(k, offset)>` for each (keys at negative positions are
    fine: RoPE's angle is defined for any real position).
    """
    q_m = apply_rope(q[None, :], torch.tensor([m]), base=base)[0]  # (1, D) -> (D,)
    k_n = apply_rope(k[None, :], torch.tensor([n]), base=base)[0]  # (1, D) -> (D,)
    offsets = torch.arange(-_ROPE_MAX_POS, _ROPE_MAX_POS + 1)  # (2*31+1,)
    keys = apply_rope(k.expand(len(offsets), -1), offsets, base=base)  # (O, D) rotated to positions = offsets
    curve = keys @ q  # (O, D) x (D,) -> (O,), query at position 0
    return float(q_m @ k_n), offsets.numpy(), curve.numpy()


def render_rope(m: int = 3, n: int = 7, pair: int = 0, base: float = 10000):
    """The figure of `rope_explorer`.

    Left: pair `pair` of a fixed query and key (dimensions `2*pair, 2*pair+1`), before
    (faint) and after rotating the query to position `m` and the key to position `n`; the
    dots trace the query's tip at positions 0..31. Right: the score as a function of the
    offset `n - m`, with the score at the chosen `(m, n)` marked on it.
    """
    q, k = _rope_query_key()
    theta = float(base) ** (-2.0 * pair / _ROPE_D_HEAD)
    a, b = 2 * pair, 2 * pair + 1
    q_m = apply_rope(q[None, :], torch.tensor([m]), base=base)[0]
    k_n = apply_rope(k[None, :], torch.tensor([n]), base=base)[0]
    trail = apply_rope(q.expand(_ROPE_MAX_POS + 1, -1), torch.arange(_ROPE_MAX_POS + 1), base=base)  # (32, D)
    score, offsets, curve = rope_scores(q, k, m, n, base)

    fig = new_figure(figsize=(6.4, 3.0))
    ax_plane = fig.add_axes((0.01, 0.03, 0.33, 0.8))
    ax_curve = fig.add_axes((0.45, 0.16, 0.53, 0.7))
    r = 1.12 * max(float(q[a:b + 1].norm()), float(k[a:b + 1].norm()))
    ax_plane.plot(trail[:, a].numpy(), trail[:, b].numpy(), ".", color="#999999", markersize=3)
    ax_plane.plot([-r, r], [0, 0], color="#dddddd", lw=0.6)
    ax_plane.plot([0, 0], [-r, r], color="#dddddd", lw=0.6)
    for vec, color, alpha, lw in ((q, "#1b6ca8", 0.3, 1.5), (k, "#d95f02", 0.3, 1.5),
                                  (q_m, "#1b6ca8", 1.0, 2.5), (k_n, "#d95f02", 1.0, 2.5)):
        ax_plane.annotate("", xy=(float(vec[a]), float(vec[b])), xytext=(0, 0),
                          arrowprops={"arrowstyle": "->", "color": color, "alpha": alpha, "lw": lw})
    ax_plane.set_xlim(-r, r)
    ax_plane.set_ylim(-r, r)
    ax_plane.set_aspect("equal")
    ax_plane.set_xticks([])  # no ticks at all: cheaper to draw than hidden ones
    ax_plane.set_yticks([])
    for spine in ax_plane.spines.values():
        spine.set_visible(False)
    ax_plane.set_title(f"dims {a},{b}: {math.degrees(theta):.3g}°/position", fontsize=9)

    ax_curve.plot(offsets, curve, color="#555555", lw=1.2)
    ax_curve.axvline(n - m, color="#1b6ca8", lw=0.8, ls="--")
    ax_curve.plot([n - m], [score], "o", color="#d95f02", markersize=7)
    ax_curve.set_xlabel("offset n - m")
    ax_curve.set_ylabel("score")
    ax_curve.set_title(f"m={m}, n={n}: score {score:.3f}", fontsize=10)
    ax_curve.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax_curve.yaxis.set_major_locator(MaxNLocator(4))
    return fig


def rope_explorer(m: int = 3, n: int = 7, pair: int = 0, base: float = 10000) -> Explorer:
    """Explore rotary position embedding with a fixed query and key (`d_head = 16`).

    Move the query position `m` and the key position `n` together: the arrows turn, but
    their angle, and with it the score (the marker on the right), stays the same.

    Args:
        m, n: positions 0..31 of the query and the key.
        pair: which pair of dimensions to draw, 0..7 (pair 0 turns fastest).
        base: one of 10, 100, 1000, 10000, 100000.
    """
    m = _check_range(m, "m", 0, _ROPE_MAX_POS)
    n = _check_range(n, "n", 0, _ROPE_MAX_POS)
    pair = _check_range(pair, "pair", 0, _ROPE_D_HEAD // 2 - 1)
    _check_choice(base, "base", _BASES)
    controls = {
        "m": W.IntSlider(value=m, min=0, max=_ROPE_MAX_POS, description="query position m", style=_STYLE),
        "n": W.IntSlider(value=n, min=0, max=_ROPE_MAX_POS, description="key position n", style=_STYLE),
        "pair": W.IntSlider(value=pair, min=0, max=_ROPE_D_HEAD // 2 - 1, description="pair of dimensions",
                            style=_STYLE),
        "base": W.Dropdown(options=[(f"{b:,}", b) for b in _BASES], value=base, description="base", style=_STYLE),
    }
    return Explorer(controls, render_rope, caption="RoPE: rotate a query and a key by their positions")

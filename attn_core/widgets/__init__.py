"""Interactive explorers for the lessons.

Each explorer is a function returning an `Explorer` (an `ipywidgets.HBox`: controls
beside the picture) with `controls` (name -> control widget), `view` (an
`ipywidgets.Image` holding the current picture as PNG bytes, rendered for a device pixel
ratio of 2 and shown at its natural size), `alt` (the picture's text alternative) and
`snapshot()` (a still copy for the notebook). Setting a control's value re-renders
synchronously. No control ever offers a combination that raises.
"""

from ._base import Explorer
from .attention import *  # noqa: F401,F403  lessons 01-03
from .multihead import *  # noqa: F401,F403  lesson 04
from .positional import *  # noqa: F401,F403  lesson 05
from .masks import *  # noqa: F401,F403  lesson 06
from .inference import *  # noqa: F401,F403  lesson 10

from . import attention as _attention, inference as _inference, masks as _masks, multihead as _multihead, positional as _positional

EXPLORERS = {name: getattr(mod, name) for mod in (_attention, _multihead, _positional, _masks, _inference) for name in mod.__all__}
"""Every explorer function by name; the widget tests sweep all of them."""

__all__ = ["Explorer", "EXPLORERS", *EXPLORERS]

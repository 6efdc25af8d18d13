"""The PyTorch checks of problem set 5 under the name its notebooks import (they live in
:mod:`softgrad.testing.pytorch`). Importing this module imports PyTorch."""

from softgrad.testing.pytorch import *  # noqa: F403
from softgrad.testing.pytorch import __all__  # noqa: F401

"""`with evaluating(model):` — dropout off and no gradients, then the model as it was.

Evaluation, generation and every widget run a model in eval mode without gradients,
and must hand it back in the mode they found it: a notebook that evaluates in the
middle of training would otherwise go on training without dropout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode with gradients off for the block; restore its mode after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)

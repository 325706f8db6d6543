"""Edits a researcher makes to a Q-network, as functions of it: tests check that acting and learning follow them."""

import torch.nn as nn


def weight_norm(q: nn.Module) -> nn.Module:
    """Each Linear layer's weight through a parametrization, recomputed at every forward pass."""
    for module in list(q.modules()):
        if isinstance(module, nn.Linear):
            nn.utils.parametrizations.weight_norm(module)
    return q


def layer_norm(q: nn.Module) -> nn.Module:
    """A LayerNorm after the first layer, by a forward hook: whatever the network's layout."""
    first = next(m for m in q.modules() if isinstance(m, nn.Linear))
    q.norm = nn.LayerNorm(first.out_features)
    first.register_forward_hook(lambda module, inputs, output: q.norm(output))
    return q


class Dueling(nn.Module):
    """A head of the researcher's own on the network's outputs A: V(s) + A(s, a) - mean_a A(s, a), V a new layer."""

    def __init__(self, q: nn.Module):
        super().__init__()
        last = [m for m in q.modules() if isinstance(m, nn.Linear)][-1]
        self.q, self.value = q, nn.Linear(last.out_features, 1)

    def forward(self, x):
        advantages = self.q(x)
        return self.value(advantages) + advantages - advantages.mean(dim=1, keepdim=True)


EDITS = {"weight_norm": weight_norm, "layer_norm": layer_norm, "dueling": Dueling}

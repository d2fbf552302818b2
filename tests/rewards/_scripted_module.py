"""A module for torch.jit.script in test_weights (scripting needs the class source in a file)."""

import torch


class Scripted(torch.nn.Module):
    ints: list[int]

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 3)
        self.ints = [1, 2, 3]
        self.floats = [0.5]
        self.table = {"a": 1}
        self.register_buffer("input_resolution", torch.tensor(224))
        self.half_param = torch.nn.Parameter(torch.ones(4, dtype=torch.float16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.ints[0]

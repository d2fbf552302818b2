"""Placeholder until the reward_nodes land; replaced by the real module."""

NODES: list = []

"""Placeholder until the demo_nodes land; replaced by the real module."""

NODES: list = []

"""Shipped model checkpoints (safetensors + JSON model cards)."""

"""Checks for notebook 07's exercises."""

from __future__ import annotations

__all__: list[str] = []

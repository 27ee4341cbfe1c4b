"""Checks for notebook 06's exercises."""

from __future__ import annotations

__all__: list[str] = []

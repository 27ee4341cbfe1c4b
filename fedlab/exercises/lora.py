"""Checks for notebook 09's exercises."""

from __future__ import annotations

__all__: list[str] = []

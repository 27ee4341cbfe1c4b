"""Checks for notebook 13's exercises."""

from __future__ import annotations

__all__: list[str] = []

"""Checks for notebook 12's exercises."""

from __future__ import annotations

__all__: list[str] = []

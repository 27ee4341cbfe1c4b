"""Checks for notebook 04's exercises."""

from __future__ import annotations

__all__: list[str] = []

"""Checks for notebook 14's exercises."""

from __future__ import annotations

__all__: list[str] = []

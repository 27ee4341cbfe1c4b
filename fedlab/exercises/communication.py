"""Checks for notebook 08's exercises."""

from __future__ import annotations

__all__: list[str] = []

"""Checks for notebook 10's exercises."""

from __future__ import annotations

__all__: list[str] = []

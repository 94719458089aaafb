"""Figures for the MAE concept page (docs/concepts/mae.md)."""

from __future__ import annotations

FIGURES: dict = {}

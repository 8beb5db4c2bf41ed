"""Dialogs and overlays of the console, one per module."""

"""Sparsity patterns shared by selection (making masks) and export (checking what a runtime will see)."""

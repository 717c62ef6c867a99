"""Structured pruning: removable units, physical shrinking, greedy forward selection and its controls.

Settings (`compress.structured.settings`) import no torch; the methods load on first use.
"""

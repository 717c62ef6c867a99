"""Stages chained with gates, resume and reports; and the `lottery` command line."""

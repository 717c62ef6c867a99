"""Reports: aggregation of run directories, plots."""

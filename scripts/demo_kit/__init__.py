"""Parts of the many-sites demo (scripts/demo.py): the HTTP client that drives the sites,
the load and its tally by message id, and the live line."""

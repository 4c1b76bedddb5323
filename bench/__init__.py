"""Fieldsync's benchmark suite and long-running simulations (``python -m bench``)."""

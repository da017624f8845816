"""``python -m ecsjobs``: the command line."""

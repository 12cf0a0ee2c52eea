"""Notebook functions the model may call: their schemas, running the calls, the tool loop of a turn."""

"""The elk-jupyter command: inspect, export and re-run saved notebooks; list, show and diff experiments."""

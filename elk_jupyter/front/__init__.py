"""The IPython front-end: the magics, the %elk commands, the views, what a cell takes from the notebook."""

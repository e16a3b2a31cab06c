"""NumPy networks, optimizers, training and data sets for the bundled objectives.

Standalone: nothing here imports ``hpo``.
"""

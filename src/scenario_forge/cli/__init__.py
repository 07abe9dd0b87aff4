"""The ``scenario-forge`` command line."""

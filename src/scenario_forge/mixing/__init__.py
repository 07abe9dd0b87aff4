"""Training mixtures and held-out splits built the way the paper built them."""

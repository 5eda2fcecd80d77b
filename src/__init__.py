"""srsuite: single-image super-resolution experiments with PyTorch Lightning and Hydra."""

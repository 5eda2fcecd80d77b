"""Image-level conversions shared by data, methods and metrics (colour spaces)."""

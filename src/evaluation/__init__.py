"""Scoring SR outputs with the paper protocol, result tables and comparison images."""

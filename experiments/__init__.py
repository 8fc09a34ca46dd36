"""Experiment assets: task definitions, preprocessing scripts, sample data."""

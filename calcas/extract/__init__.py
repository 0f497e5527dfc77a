"""Extraction of record sets from real models."""

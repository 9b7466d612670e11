"""Helpers shared by technique packages."""

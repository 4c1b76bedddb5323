"""Bundled fonts (a package so the .ttc and its licence ship in wheels and APKs)."""

"""Pixel data: reading frames for inspection and recognising burned-in text."""

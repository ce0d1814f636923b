"""Synthetic Russian demo data, loaded through the server's own transaction path."""

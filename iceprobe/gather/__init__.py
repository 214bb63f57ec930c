"""Gathering: the only package that touches sockets and aioice."""

from .run import GatherOptions, gather

__all__ = ["GatherOptions", "gather"]

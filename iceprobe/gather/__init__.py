"""Gathering: the only package that touches sockets and aioice."""

from .options import GatherOptions
from .run import gather

__all__ = ["GatherOptions", "gather"]

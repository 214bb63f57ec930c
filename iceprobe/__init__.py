"""iceprobe: tells you why WebRTC connectivity fails."""

__version__ = "0.5.0"

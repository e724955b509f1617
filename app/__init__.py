"""Relay: telestroke image exchange.

The core (this package minus ``app.ui``) never imports Qt; ``app.render`` may import VTK.
"""

__version__ = "0.1.0"

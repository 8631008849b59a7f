"""remediate: guided and scripted fixes for Exchange Send connector events 2016 and 2002."""

__version__ = "0.1.0"

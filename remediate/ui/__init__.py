"""The front ends: the command line, its commands and the wizard."""

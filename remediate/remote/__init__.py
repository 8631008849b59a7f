"""Talking to Exchange: profiles, credentials, logins and the PSRP session."""

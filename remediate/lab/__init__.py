"""The lab: a simulated Exchange organisation served over real WSMan + PSRP.

The lab never imports the tool's front ends (cli, wizard) nor its pre-flight rules: it plays
Exchange independently so that tests comparing the two prove something.
"""

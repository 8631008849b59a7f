"""Plans rendered to a reviewable PowerShell script."""

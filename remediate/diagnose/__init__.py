"""Reading evidence: events, the probe, reachability, checks and escalation."""

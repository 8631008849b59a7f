# remediate dry run: Send connector cannot initialise its smart-host credential
# Playbook:  smarthost-auth-credential (event 2016)
# Connector: 'Outbound to Relay'
# Generated: 2026-01-15 09:30:00 UTC
# Mode:      changes run without prompting (-Confirm:$false)
#
# Paste into the Exchange Management Shell; each step is one cmdlet.
#
# Documented actions this plan serves:
#   common-mechanism: Make the connector and the smart host agree on one authentication method:
#       the mechanism Exchange uses must be one the smart host offers, with the certificates and
#       TLS settings that method needs.
#   check-reachability: From the server that logged the event, check that the smart host answers
#       on its port (the ping / pathping style test, done here as a connection test).
#
# Notes:
#   - no change: the connector already has these settings
#   - the connector already holds a credential, and Exchange never returns its user name, so it
#     cannot be compared: it was left as it is (re-enter it with --reenter-credential)
#
# No change steps: there is nothing to change.

# ===== Read =====

# Step 1 (read): Record the connector's current settings before changing them.
# Documented action: common-mechanism
Get-SendConnector -Identity 'Outbound to Relay'

# Step 2 (read): Show the connector's queue and its last error before the change.
# Documented action: check-reachability
Get-Queue -Server 'EX01' -Include 'SmartHostConnectorDelivery' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001'''

# Step 3 (read): Show the connector's queue and its last error before the change.
# Documented action: check-reachability
Get-Queue -Server 'EX02' -Include 'SmartHostConnectorDelivery' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001'''

# remediate dry run: Undo: Send connector cannot initialise its smart-host credential
# Playbook:  smarthost-auth-credential (event 2016)
# Connector: 'Outbound to Relay'
# Generated: 2026-01-15 09:30:00 UTC
# Mode:      changes run without prompting (-Confirm:$false)
#
# Paste into the Exchange Management Shell; each step is one cmdlet.
#
# Documented actions this plan serves:
#   reenter-credential: Type the relay account's user name and password again, both on the Send
#       connector and, if it changed there, on the smart host.
#   check-reachability: From the server that logged the event, check that the smart host answers
#       on its port (the ping / pathping style test, done here as a connection test).
#
# Notes:
#   - switching back to DNS routing makes Exchange drop the smart hosts, as the connector had
#     none before
#   - the connector had no credential before; undo leaves the one for 'relay@contoso.com' in
#     place

# ===== Changes =====

# Step 1 (change): Undo: restore the values before 'Set the mechanism the smart host offers and enter the relay credential again.'
# Documented action: reenter-credential
# Replaces: SmartHostAuthMechanism='BasicAuth'
Set-SendConnector -Identity 'Outbound to Relay' -SmartHostAuthMechanism 'None' -Confirm:$false

# Step 2 (change): Undo: restore the values before 'Route through the smart host on the port it listens on.'
# Documented action: check-reachability
# Replaces: DNSRoutingEnabled=$false, Port=587, SmartHostAuthMechanism='None'
Set-SendConnector -Identity 'Outbound to Relay' -DNSRoutingEnabled $true -Port 25 -SmartHostAuthMechanism 'None' -Confirm:$false

# ===== Read back and retry =====

# Step 3 (read): Read the connector back after the undo.
Get-SendConnector -Identity 'Outbound to Relay'

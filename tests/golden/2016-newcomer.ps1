# remediate dry run: Send connector cannot initialise its smart-host credential
# Playbook:  smarthost-auth-credential (event 2016)
# Connector: 'Outbound to Relay'
# Generated: 2026-01-15 09:30:00 UTC
# Mode:      changes run without prompting (-Confirm:$false)
#
# Paste into the Exchange Management Shell; each step is one cmdlet.
# No password is stored here: Get-Credential asks for it.
#
# Documented actions this plan serves:
#   common-mechanism: Make the connector and the smart host agree on one authentication method:
#       the mechanism Exchange uses must be one the smart host offers, with the certificates and
#       TLS settings that method needs.
#   reenter-credential: Type the relay account's user name and password again, both on the Send
#       connector and, if it changed there, on the smart host.
#   check-reachability: From the server that logged the event, check that the smart host answers
#       on its port (the ping / pathping style test, done here as a connection test).
#
# Notes:
#   - Get-Queue before the change left out: the connector was not read, so its current queue
#     cannot be named (apply reads the connector first)
#   - the connector's source transport servers are not known (it was not read): Get-Queue and
#     Retry-Queue without -Server answer only for the server this session runs on
#   - planned without reading the connector: every given setting is sent, and Exchange checks
#     what could not be checked here

# ===== Read current state =====

# Step 1 (read): Record the connector's current settings before changing them.
# Documented action: common-mechanism
Get-SendConnector -Identity 'Outbound to Relay'

# ===== Changes =====

# Step 2 (change): Route through the smart host on the port it listens on.
# Documented action: check-reachability
Set-SendConnector -Identity 'Outbound to Relay' -SmartHosts 'smtp.relay.example' -DNSRoutingEnabled $false -Port 587 -Confirm:$false

# Step 3 (change): Set the mechanism the smart host offers and enter the relay credential again.
# Documented action: reenter-credential
$cred = Get-Credential -UserName 'relay@contoso.com' -Message 'Password for the smart-host relay account'
Set-SendConnector -Identity 'Outbound to Relay' -SmartHostAuthMechanism 'BasicAuthRequireTLS' -AuthenticationCredential $cred -Confirm:$false

# ===== Read back and retry =====

# Step 4 (read): Read the connector back to confirm the new settings.
# Documented action: common-mechanism
Get-SendConnector -Identity 'Outbound to Relay'

# Step 5 (change): Retry the connector's queue now instead of waiting for the next retry interval.
# Documented action: check-reachability
Retry-Queue -Filter 'NextHopDomain -eq ''smtp.relay.example''' -Confirm:$false

# Step 6 (read): Show whether the queue drains or what its last error is now.
# Documented action: check-reachability
Get-Queue -Include 'SmartHostConnectorDelivery' -Filter 'NextHopDomain -eq ''smtp.relay.example'''

# remediate dry run: Send connector cannot initialise its smart-host credential
# Playbook:  smarthost-auth-credential (event 2016)
# Connector: 'Outbound to Relay'
# Generated: 2026-01-15 09:30:00 UTC
# Mode:      -WhatIf: Exchange only reports what each change would do
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
#   - the connector is invalid as stored, and Exchange checks the whole connector on every
#     change: the settings are sent in one Set-SendConnector

# ===== Read current state =====

# Step 1 (read): Record the connector's current settings before changing them.
# Documented action: common-mechanism
Get-SendConnector -Identity 'Outbound to Relay'

# Step 2 (read): Show the connector's queue and its last error before the change.
# Documented action: check-reachability
Get-Queue -Server 'EX01' -Include 'SmartHostConnectorDelivery' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001'''

# Step 3 (read): Show the connector's queue and its last error before the change.
# Documented action: check-reachability
Get-Queue -Server 'EX02' -Include 'SmartHostConnectorDelivery' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001'''

# ===== Changes =====

# Step 4 (change): Route through the smart host on the port it listens on. Set the mechanism the smart host offers and enter the relay credential again.
# Documented action: reenter-credential
# Replaces: Port=25, AuthenticationCredential=(not set)
$cred = Get-Credential -UserName 'relay@contoso.lab' -Message 'Password for the smart-host relay account'
Set-SendConnector -Identity 'Outbound to Relay' -Port 2525 -AuthenticationCredential $cred -Confirm:$false -WhatIf

# ===== Read back and retry =====

# Step 5 (read): Read the connector back to confirm the new settings.
# Documented action: common-mechanism
Get-SendConnector -Identity 'Outbound to Relay'

# Step 6 (change): Retry the connector's queue now instead of waiting for the next retry interval.
# Documented action: check-reachability
Retry-Queue -Server 'EX01' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001''' -Confirm:$false -WhatIf

# Step 7 (change): Retry the connector's queue now instead of waiting for the next retry interval.
# Documented action: check-reachability
Retry-Queue -Server 'EX02' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001''' -Confirm:$false -WhatIf

# Step 8 (read): Show whether the queue drains or what its last error is now.
# Documented action: check-reachability
Get-Queue -Server 'EX01' -Include 'SmartHostConnectorDelivery' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001'''

# Step 9 (read): Show whether the queue drains or what its last error is now.
# Documented action: check-reachability
Get-Queue -Server 'EX02' -Include 'SmartHostConnectorDelivery' -Filter 'NextHopConnector -eq ''6f1c0c1e-0000-4000-8000-000000000001'''

# remediate dry run: Send connector cannot connect to its next hop
# Playbook:  send-connection-error (event 2002)
# Connector: 'Outbound to Partner'
# Generated: 2026-01-15 09:30:00 UTC
# Mode:      changes run without prompting (-Confirm:$false)
#
# Paste into the Exchange Management Shell; each step is one cmdlet.
#
# Documented actions this plan serves:
#   check-reachability: From the server that logged the event, check that the remote host named
#       in the event accepts connections on that port (the ping / pathping style test, done here
#       as a connection test); correct the smart host or port when they are wrong.
#   review-application-log: Read the Application log around the event, just before and just
#       after it; turning on verbose send protocol logging shows each connection attempt.
#   escalate: If mail flow is still interrupted after these checks, escalate to Microsoft
#       support with the events and protocol log.
#
# Notes:
#   - Get-Queue before the change left out: the connector was not read, so its current queue
#     cannot be named (apply reads the connector first)
#   - the connector's source transport servers are not known (it was not read): Get-Queue and
#     Retry-Queue without -Server answer only for the server this session runs on
#   - verbose protocol logging stays on: Exchange applies a change only after AD replication and
#     a configuration reload, so turning it off now would log nothing; once the retry is in the
#     send protocol log, set ProtocolLoggingLevel None again (remediate apply 2002 --connector
#     NAME --protocol-logging None)
#   - planned without reading the connector: every given setting is sent, and Exchange checks
#     what could not be checked here

# ===== Read current state =====

# Step 1 (read): Record the connector's current settings before changing them.
# Documented action: check-reachability
Get-SendConnector -Identity 'Outbound to Partner'

# ===== Changes =====

# Step 2 (change): Point the connector at a smart host and port that accept connections.
# Documented action: check-reachability
Set-SendConnector -Identity 'Outbound to Partner' -SmartHosts 'mx.partner.example' -DNSRoutingEnabled $false -Port 25 -Confirm:$false

# Step 3 (change): Enable the connector and set its protocol logging level.
# Documented action: review-application-log
Set-SendConnector -Identity 'Outbound to Partner' -Enabled $true -ProtocolLoggingLevel 'Verbose' -Confirm:$false

# ===== Read back and retry =====

# Step 4 (read): Read the connector back to confirm the new settings.
# Documented action: check-reachability
Get-SendConnector -Identity 'Outbound to Partner'

# Step 5 (change): Retry the connector's queue now instead of waiting for the next retry interval.
# Documented action: check-reachability
Retry-Queue -Filter 'NextHopDomain -eq ''mx.partner.example''' -Confirm:$false

# Step 6 (read): Show whether the queue drains; if it keeps failing, escalate with its last error.
# Documented action: escalate
Get-Queue -Include 'SmartHostConnectorDelivery' -Filter 'NextHopDomain -eq ''mx.partner.example'''

"""cronwrap-agent: keeps cron job state and serves it over AgentX and SNMP."""

"""Sources of events beyond the wrappers' own: each follows one place where cron jobs are seen.

The core (core.AgentCore) is the single writer of the job table. Three sources feed it:
- the wrappers' socket (sources/wrapper_socket.py) and their spool (sources/wrapper_spool.py), with `AgentCore.submit`;
- cron's own log in the journal (sources/cronlog.py, reading with sources/journal.py), with
  `AgentCore.update`: it applies cron's lines to a batch and puts its place in the journal in
  `Batch.source_states`, so that place is committed in the same transaction as the rows.

Another source (systemd timers, say) is one more module here: read, change rows in a batch,
keep its place with `Batch.source_states[NAME]` and `AgentCore.source_state(NAME)`, and be
started beside the others in main.serve.
"""

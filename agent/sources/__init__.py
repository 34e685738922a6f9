"""Sources: each follows one place where cron jobs are seen and tells the core what happened.

The core (core.AgentCore) decides a job's life; a source only tells it what happened, as events
of agent/lifeevents.py, and the core's transition function (agent/transitions/) changes the row
and raises the notifications.  The five sources:
- the wrappers' socket (wrapper_socket.py) and their spool (wrapper_spool.py): each wrapper's
  event through `AgentCore.submit`, which checks it and submits it as RunReported;
- cron's own log in the journal (cronlog.py, reading with journal.py, its lines parsed by
  cronlines.py): runs of lines that are not wrapped (RunReported, StartLogged, RunCut) and
  wrapped lines whose cronwrap never started (WrapperNotStarted), submitted in
  `AgentCore.update` through a `Txn`, whose `keep_place` commits the journal cursor in the
  same transaction as the rows those events changed;
- crontab discovery (crontabs.py): the jobs crontab lines run, adopted with
  `AgentCore.set_discovered` as LineSeen and LineGone;
- the cron daemon itself (crondaemon.py): whether it runs, looked at by the watcher before each
  pass and submitted with `Txn.see_daemon` as CronDaemonSeen (about no job).

Another source (systemd timers, say) is one more module here: read, submit events with
`Txn.submit`, keep its place with `Txn.keep_place(NAME, ...)` and `AgentCore.source_state(NAME)`,
and be started beside the others in main.serve.  A source never writes a row itself.
"""

"""The `cronwrap` command line: option parsing, subcommand dispatch, and starting a run."""

from __future__ import annotations

import os
import sys

from cronwrap.wrapper.config import (
    Settings,
    apply_option,
    config_paths,
    load_config,
    resolve_mail,
)
from cronwrap.wrapper.errors import EX_USAGE, UsageError, WrapperError
from cronwrap.wrapper.events import is_valid_job_name

HELP = """\
usage: cronwrap [OPTIONS] -- COMMAND [ARG...]
       cronwrap status [ARGS...]          what the agent knows about your jobs
       cronwrap logs JOB [--run N | --list] [--log-dir DIR]
       cronwrap pause JOB --for DURATION  no notifications or misses for a while
       cronwrap resume JOB                end a pause now
       cronwrap forget JOB                drop a job's row and counts from the agent

Run COMMAND as a cron job: never two runs of one job at once, a timeout, a log
file per run, silence on success, and start/finish events for cronwrap-agent.
In a crontab:  0 3 * * *  cronwrap -n backup --timeout 2h -- /usr/local/bin/backup

job:
  -n, --name NAME         job name [A-Za-z0-9][A-Za-z0-9._-]{0,63}
                          (default: the command's file name; other characters
                          dropped and a digest added: "Default job names" in
                          /usr/share/doc/cronwrap/docs/wrapper.md)
  --timeout DURATION      SIGTERM the job's process group after DURATION (exit 124)
  --kill-after DURATION   then SIGKILL it after DURATION more (default 10s)
  --env-file FILE         load KEY=VALUE lines into the job's environment (repeatable);
                          FILE: a regular file owned by you or root, not writable by others
  --cron-env              a trial run in the environment Debian's cron gives a job
                          (SHELL=/bin/sh, HOME, PATH=/usr/bin:/bin, LOGNAME, PAM's
                          /etc/environment and /etc/default/locale; in HOME, stdin empty),
                          to reproduce "works in my shell, fails in cron": shows the
                          output and says what it did; no lock, log, report or mail
  -v, --verbose           also copy the job's output to stdout as it runs
overlap guard:
  --lock-wait DURATION    wait this long for a running previous run (default 0)
  --lock-dir DIR          default /run/lock/cronwrap (root), else
                          $XDG_RUNTIME_DIR/cronwrap or /tmp/cronwrap-UID;
                          if it is unsafe (someone else's): LOGDIR/USER/.locks
  --overlap-exit N        exit status when the job is still running (default 75),
                          said in one line on stderr; 0: nothing printed, so cron
                          mails nothing (the agent and the journal still have it)
logs:
  --log-dir DIR           default /var/log/cronwrap (root), else
                          $XDG_STATE_HOME/cronwrap or ~/.local/state/cronwrap,
                          or /var/log/cronwrap/users without a home of your own
  --keep N                keep the N newest run logs per job (default 30, 0: all)
  --keep-days DAYS        also delete run logs older than DAYS
  --max-log-size SIZE     cap each run log (default 10M): head, marker, tail (0: no cap)
  --log-group GROUP       let GROUP read this job's logs (its directory 2750, logs 0640);
                          you must belong to GROUP (root may use any)
monitoring (carried in every event to the agent):
  --schedule 'CRON EXPR'  the crontab schedule, e.g. '0 3 * * *', in cron's own zone;
                          'CRON_TZ=ZONE EXPR' for a schedule in another zone
  --tz ZONE               the zone the schedule is in (e.g. Asia/Kolkata), as
                          cronie's CRON_TZ: a slot in a skipped hour does not
                          happen, one in a repeated hour happens twice
  --every DURATION        expected time between starts
  --grace DURATION        lateness tolerated before a start counts as missed
  --max-runtime DURATION  running longer than this counts as overrunning
  --min-duration DURATION
                          a successful run that ends sooner is a duration anomaly
                          (a backup that "succeeds" in 2 minutes instead of 50)
  --max-duration DURATION
                          a successful run that takes longer is a duration anomaly
  --no-duration-baseline  do not judge runs against the durations this job's own
                          recent successful runs had (the agent learns them: median
                          and spread of the last 20, judged from 5 on; agent.md)
  --last-message          send the output's last line (255 characters at most) to the
                          agent: cronJobLastMessage, and in the failed/timed-out
                          notifications. Off by default: output can hold secrets
  --socket PATH           agent socket ($CRONWRAP_SOCKET, default /run/cronwrap/agent.sock)
  --spool-dir DIR         where events wait when the agent is down
                          ($CRONWRAP_SPOOL_DIR, default /var/spool/cronwrap)
mail (cronwrap's own, besides cron's; see /usr/share/doc/cronwrap/docs/operations.md):
  --mail-to ADDR[,ADDR]   mail each run's outcome to these recipients (repeatable)
  --mail-on WHEN          failure (default): failed runs; always: every run;
                          change: only when the job starts failing or recovers
  --mail-smtp HOST[:PORT]
                          SMTP server (port 25 by default, [::1]:25 for IPv6);
                          without it the message goes to sendmail -t -oi
  --mail-starttls         STARTTLS before sending (the certificate is checked)
  --mail-from ADDR        sender (default cronwrap@<fqdn>)
                          SMTP login, private CA: config keys mail_username,
                          mail_password, mail_ca_file (never put passwords in a crontab)
journal:
  --no-journal            do not write the run's record to the systemd journal
                          (default: one record per run when journald runs)
other:
  --config FILE           read defaults from FILE instead of /etc/cronwrap/cronwrap.toml
                          (skipped if you may not read it) and ~/.config/cronwrap/cronwrap.toml;
                          config files must be owned by you or root, not writable by others
  -h, --help              show this help
  --version               show the version

DURATION: 90 (seconds), 250ms, 90s, 15m, 2h, 1d, 1h30m.  SIZE: 65536, 512K, 10M, 1G.

exit status: the job's own; 128+N if it died from signal N (or the wrapper was
sent signal N and passed it on); 124 timed out; 126 not executable; 127 not
found; 75 (--overlap-exit) previous run still running; 64 usage error;
73 no safe place for the lock (reported as a failed run); 78 bad or untrusted config file (the job
does not run) or env file (the run is reported as failed).
On failure cronwrap prints a header and the last lines of output (cron mails
them); on success it prints nothing.  Mail or journal trouble never stops a job
or changes its exit status: a bad mail setting or a mail server problem is one
warning line, journal problems show only with -v.  Every line cronwrap may
print under cron, and when: "What cronwrap prints" in
/usr/share/doc/cronwrap/docs/wrapper.md.
"""

# option -> (settings key, takes a value)
OPTIONS: dict[str, tuple[str, bool]] = {
    "-n": ("name", True), "--name": ("name", True),
    "--timeout": ("timeout", True), "--kill-after": ("kill_after", True),
    "--env-file": ("env_file", True), "--cron-env": ("cron_env", False),
    "-v": ("verbose", False), "--verbose": ("verbose", False),
    "--lock-wait": ("lock_wait", True), "--lock-dir": ("lock_dir", True),
    "--overlap-exit": ("overlap_exit", True),
    "--log-dir": ("log_dir", True), "--keep": ("keep", True), "--keep-days": ("keep_days", True),
    "--max-log-size": ("max_log_size", True), "--log-group": ("log_group", True),
    "--schedule": ("schedule", True), "--every": ("every", True), "--grace": ("grace", True),
    "--max-runtime": ("max_runtime", True), "--tz": ("tz", True),
    "--min-duration": ("min_duration", True), "--max-duration": ("max_duration", True),
    "--no-duration-baseline": ("no_duration_baseline", False),
    "--last-message": ("last_message", False),
    "--socket": ("socket", True), "--spool-dir": ("spool_dir", True),
    "--mail-to": ("mail_to", True), "--mail-on": ("mail_on", True),
    "--mail-smtp": ("mail_smtp", True), "--mail-starttls": ("mail_starttls", False),
    "--mail-from": ("mail_from", True),
    "--no-journal": ("no_journal", False),
    "--config": ("config", True),
}


def parse_options(argv: list[str]) -> tuple[list[tuple[str, str, str | bool]], list[str]]:
    """Split argv into ([(option, key, value)...], command); UsageError for anything malformed."""
    given: list[tuple[str, str, str | bool]] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if word == "--":
            return given, argv[index:]
        if not word.startswith("-"):
            raise _missing_separator(argv, index - 1)
        option, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if option.startswith("-n") and len(option) > 2:
            option, eq, inline = "-n", "=", option[2:]
        if option not in OPTIONS:
            raise UsageError(f"unknown option {word!r} (see cronwrap --help)")
        key, takes_value = OPTIONS[option]
        if not takes_value:
            if eq:
                raise UsageError(f"option {option} takes no value")
            given.append((option, key, True))
        elif eq:
            given.append((option, key, inline))
        elif index < len(argv):
            given.append((option, key, argv[index]))
            index += 1
        else:
            raise UsageError(f"option {option} needs a value")
    raise UsageError("no command given: put it after '--', e.g. cronwrap -n job -- /path/to/job")


def _missing_separator(argv: list[str], at: int) -> UsageError:
    """The error for a command given without `--` before it (argv[at] is its first word)."""
    from shlex import join

    return UsageError(f"{argv[at]!r} is not an option: the command goes after --, as in "
                      f"cronwrap {join([*argv[:at], '--', *argv[at:]])}")


def build_settings(argv: list[str], environ: dict[str, str]) -> Settings:
    """Defaults, then config files, then $CRONWRAP_SOCKET / $CRONWRAP_SPOOL_DIR, then the flags."""
    given, command = parse_options(argv)
    if not command:
        raise UsageError("no command given after '--'")
    settings = Settings(command=command)
    configs = [str(value) for _, key, value in given if key == "config"]
    explicit = configs[-1] if configs else None
    load_config(settings, config_paths(explicit, environ), explicit is not None)
    settings.socket = environ.get("CRONWRAP_SOCKET") or settings.socket
    settings.spool_dir = environ.get("CRONWRAP_SPOOL_DIR") or settings.spool_dir
    if any(key == "mail_to" for _, key, _ in given):
        settings.mail_to.clear()  # --mail-to replaces the config's recipients
    for option, key, value in given:
        if key != "config":
            apply_option(settings, key, value, option)
    settings.name = job_name(settings.name, command[0])
    resolve_mail(settings)
    return settings


def job_name(given: str | None, command: str) -> str:
    """The validated job name: as given, or derived from the command's file name (names.py)."""
    if given is not None:
        if not is_valid_job_name(given):
            raise UsageError(
                f"invalid job name {given!r}: use 1-64 of A-Z a-z 0-9 . _ -"
                " starting with a letter or digit"
            )
        return given
    from cronwrap.wrapper.names import derive_job_name  # only for jobs without -n

    name = derive_job_name(command)
    if name is None:
        raise UsageError(f"cannot derive a job name from {command!r}: give one with -n NAME")
    return name


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args and not args[0].startswith("-"):
            return _subcommand(args[0], args[1:])
        head = args[: args.index("--")] if "--" in args else args
        if "-h" in head or "--help" in head:
            sys.stdout.write(HELP)
            return 0
        if args and args[0] == "--version":
            from cronwrap.wrapper import __version__

            sys.stdout.write(f"cronwrap {__version__}\n")
            return 0
        settings = build_settings(args, dict(os.environ))
        if settings.cron_env:
            from cronwrap.wrapper.crontrial import run_trial

            return run_trial(settings)
        if settings.mail_problem:
            sys.stderr.write(f"cronwrap: warning: {settings.mail_problem}; not mailing this run\n")
        from cronwrap.wrapper.job import run_job

        return run_job(settings)
    except WrapperError as exc:
        sys.stderr.write(f"cronwrap: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _subcommand(name: str, args: list[str]) -> int:
    if name == "status":
        from cronwrap.wrapper.status import main as status_main

        return status_main(args)
    if name == "logs":
        from cronwrap.wrapper.logview import main as logs_main

        return logs_main(args)
    if name in ("forget", "pause", "resume"):
        from cronwrap.wrapper.life import main as life_main

        return life_main(name, args)
    raise UsageError(
        f"unknown subcommand {name!r}: to run a command write cronwrap [OPTIONS] -- {name} ...",
        EX_USAGE,
    )


if __name__ == "__main__":
    sys.exit(main())

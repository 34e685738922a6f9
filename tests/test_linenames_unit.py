"""The readable names of crontab lines without cronwrap -n (agent/linenames.py, agent/commands.py),
on Debian's stock /etc/crontab and /etc/cron.d files (tests/data/debian-crontabs)."""

from __future__ import annotations

from binascii import crc32
from pathlib import Path

import pytest
from cronwrap.agent.commands import first_real_program
from cronwrap.agent.linenames import legacy_name, line_name, logged_command, readable_name

STOCK = Path(__file__).parent / "data" / "debian-crontabs"


def stock_lines() -> list[tuple[str, str]]:
    """(crontab file as installed, command as cron logs it) of every job line, in file order."""
    lines = []
    for path in [STOCK / "etc/crontab", *sorted((STOCK / "etc/cron.d").iterdir())]:
        for text in path.read_text().splitlines():
            if text[:1].isdigit() or text.startswith("@"):
                command = text.split(None, 6)[6]  # five time fields and the user
                lines.append(("/" + str(path.relative_to(STOCK)), logged_command(command)))
    return lines


def crc(logged: str) -> str:
    return f"{crc32(logged.encode()):08x}"


def name_all(lines: list[tuple[str, str]], rows: dict[str, str]) -> list[str]:
    """Name `lines` in order as the agent does, `rows` (name -> the line its row holds, ""
    when unknown) standing for the job table."""
    names = []
    for crontab, logged in lines:
        name = line_name(logged, crontab, rows.get)
        rows[name] = logged
        names.append(name)
    return names


def test_debians_stock_lines_get_readable_names() -> None:
    lines = stock_lines()
    sysstat_second = lines[-1][1]
    assert name_all(lines, {}) == [
        "cron-hourly", "cron-daily", "cron-weekly", "cron-monthly",  # /etc/crontab's run-parts
        "anacron", "certbot", "e2scrub_all_cron", "e2scrub_all", "checkarray", "sessionclean",
        "debian-sa1", f"debian-sa1-{crc(sysstat_second)}"]  # two lines kept apart by the CRC


def test_rows_named_before_readable_names_keep_their_names() -> None:
    """The rows an older agent made (`cd-6c39522d`, line not known) keep their names; a line
    new to the table gets its readable name."""
    lines = stock_lines()
    old = {legacy_name(logged): "" for _, logged in lines[:2]}
    assert sorted(old) == sorted([f"cd-{crc(lines[0][1])}", f"test-{crc(lines[1][1])}"])
    names = name_all(lines, dict(old))
    assert names[:2] == [f"cd-{crc(lines[0][1])}", f"test-{crc(lines[1][1])}"]
    assert names[2:4] == ["cron-weekly", "cron-monthly"]


def test_a_name_another_job_has_gets_the_crc() -> None:
    logged = logged_command("/usr/local/bin/backup --full")
    assert line_name(logged, None, {}.get) == "backup"
    assert line_name(logged, None, {"backup": logged}.get) == "backup"  # its own row
    assert line_name(logged, None, {"backup": "/usr/local/bin/backup"}.get) == (
        f"backup-{crc(logged)}")
    wrapped = {"backup": ""}  # a wrapped job's row (cronwrap -n backup): its line is not this one
    assert line_name(logged, None, wrapped.get) == f"backup-{crc(logged)}"


@pytest.mark.parametrize(("command", "name"), [
    ("/usr/local/bin/backup", "backup"),
    ("cd /srv/app && ./bin/sync.sh >/dev/null 2>&1", "sync.sh"),
    ("[ -x /usr/bin/foo ] && /usr/bin/foo --quiet", "foo"),
    ("test -x /usr/bin/foo || exit 0; LANG=C foo", "foo"),
    ("if [ $(date +\\%d) -le 7 ]; then /usr/bin/monthly; fi", "monthly"),
    ("/usr/bin/report | logger -t report", "report"),
    ("sleep $((RANDOM \\% 60)); /usr/bin/jitter", "jitter"),
    ("php /var/www/nextcloud/cron.php", "cron.php"),
    ("python3 -m borgmatic --verbosity -1", "borgmatic"),
    ("sh -c 'exit 3'", "sh"),
    ("exec nice /usr/bin/nightly", "nice"),  # only shell prefixes are skipped
    ("systemctl start --no-block backup.service", "backup.service"),
    ("run-parts /etc/cron.d/../periodic/", "periodic"),
    ("{ ( ; }", "cron"),
    ("echo 'unbalanced", "echo"),
])
def test_readable_names(command: str, name: str) -> None:
    assert readable_name(logged_command(command)) == name


def test_only_guards_fall_back_to_the_cron_d_files_name_else_the_first_program() -> None:
    logged = logged_command("test -x /usr/sbin/thing && cd /var/lib/thing")
    assert first_real_program(logged) is None
    assert readable_name(logged, "/etc/cron.d/thing") == "thing"
    assert readable_name(logged, "/etc/crontab") == "test"
    assert readable_name(logged, "/var/spool/cron/crontabs/alice") == "test"
    assert readable_name(logged_command("/bin/true")) == "true"
    assert readable_name(logged_command("sleep 100")) == "sleep"

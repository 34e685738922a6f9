"""Which program a crontab line's shell command really runs, so that the line can be named after it.

Read as the shell reads it (shlex, with its operators): the command is cut into simple commands
at `&&`, `||`, `;`, `|` and `&`; in each, shell keywords (`if`, `then`, `{`, `!` ...), `exec`,
`nohup`, `VAR=value` assignments, redirections (`> /dev/null`, `2>&1`) and command
substitutions (`$(date +%d)`) are dropped. The first simple command that is not a guard is the
real one:

- guards: `test`, `[`, `[[`, `cd`, `command -v`, `type`, `which`, `true`, `:`, `exit`, and delays
  (`sleep N`, an interpreter's inline `-e 'sleep ...'`, as in Debian's certbot line);
- `run-parts [OPTIONS] DIR` is named after DIR, dots made dashes: `/etc/cron.daily` is
  `cron-daily`;
- an interpreter (`sh`, `bash`, `python3`, `perl`, `php` ...) running a script is named after
  the script (`php /var/www/cron.php` is `cron.php`); with inline code, after the interpreter;
- a service started through `invoke-rc.d`, `service` or `systemctl` is named after the service
  (Debian's anacron line: `anacron`).
"""

from __future__ import annotations

import os
import re
import shlex

GUARDS = frozenset({"test", "[", "[[", "cd", "type", "which", "true", ":", "sleep", "exit"})
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{",
                      "}", "(", ")", "!", "exec", "nohup", "time"})
SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "|&", ";;", ";&"})
INTERPRETERS = frozenset({"sh", "bash", "dash", "zsh", "python", "python3", "perl", "php",
                          "ruby", "node"})
LAUNCHERS = {"invoke-rc.d": 0, "service": 0, "systemctl": 1}  # the service's argument
INLINE_CODE = frozenset({"-c", "-e", "-E", "-r"})
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
OPERATORS = re.compile(r"[();<>|&]+")
OPERATOR = re.compile(r"&&|\|\||;;|;&|\|&|>>|<<|>&|<&|&>|[();<>|&]")
REDIRECTION = re.compile(r"[<>]+&?|&>>?")


def first_program(command: str) -> str | None:
    """The program of the first simple command of `command` (None: it has none)."""
    for words in simple_commands(command):
        words = _without_prefixes(words)
        if words:
            return words[0]
    return None


def first_real_program(command: str) -> str | None:
    """The word to name `command` after (see the module's rule), None when it runs nothing
    but guards."""
    for words in simple_commands(command):
        words = _without_prefixes(words)
        if not words or _is_guard(words):
            continue
        program = os.path.basename(words[0])
        if program == "run-parts":
            return _run_parts_directory(words[1:])
        if program in INTERPRETERS:
            return _script(words[1:]) or program
        if program in LAUNCHERS:
            return _service(words[1:], LAUNCHERS[program]) or program
        return words[0]
    return None


def simple_commands(command: str) -> list[list[str]]:
    """The words of each simple command in `command`, redirections and `$(...)` dropped."""
    commands: list[list[str]] = [[]]
    tokens = _tokens(command)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in SEPARATORS:
            commands.append([])
        elif token.endswith("$") and index < len(tokens) and tokens[index] == "(":
            index = _after_group(tokens, index)  # $(...): what it runs is not the job
        elif REDIRECTION.fullmatch(token):
            if commands[-1] and commands[-1][-1].isdigit():  # the 2 of 2>&1
                commands[-1].pop()
            index += 1  # the redirection's target
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def _tokens(command: str) -> list[str]:
    """Words and operators; shlex returns a run of operator characters (`));`) as one token,
    which is cut into the shell's operators here."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell would fail too; words are good enough
        return command.split()
    return [part for token in tokens
            for part in (OPERATOR.findall(token) if OPERATORS.fullmatch(token) else [token])]


def _after_group(tokens: list[str], index: int) -> int:
    """The index after the `)` that closes the `(` at `index`."""
    depth = 0
    while index < len(tokens):
        depth += {"(": 1, ")": -1}.get(tokens[index], 0)
        index += 1
        if depth == 0:
            break
    return index


def _without_prefixes(words: list[str]) -> list[str]:
    """`words` from the program on: keywords, assignments and `command [-p]` dropped."""
    index = 0
    while index < len(words):
        word = words[index]
        if word == "command" and words[index + 1:index + 2] not in (["-v"], ["-V"]):
            index += 2 if words[index + 1:index + 2] == ["-p"] else 1
        elif word in KEYWORDS or ASSIGNMENT.match(word):
            index += 1
        else:
            break
    return words[index:]


def _is_guard(words: list[str]) -> bool:
    program = os.path.basename(words[0])
    if program in GUARDS or program == "command":  # `command -v X`: is X there?
        return True
    inline = _inline_code(words[1:]) if program in INTERPRETERS else None
    return inline is not None and inline.lstrip().startswith("sleep")


def _inline_code(args: list[str]) -> str | None:
    for option, code in zip(args, args[1:], strict=False):
        if option in INLINE_CODE:
            return code
        if not option.startswith("-"):
            break
    return None


def _script(args: list[str]) -> str | None:
    """The script an interpreter runs: its first argument that is not an option, unless the
    code is given inline (`sh -c '...'`)."""
    for arg in args:
        if arg in INLINE_CODE:
            return None
        if not arg.startswith("-"):
            return arg
    return None


def _service(args: list[str], position: int) -> str | None:
    """The service a launcher starts: its non-option argument at `position`."""
    plain = [arg for arg in args if not arg.startswith("-")]
    return plain[position] if len(plain) > position else None


def _run_parts_directory(args: list[str]) -> str | None:
    directories = [arg for arg in args if not arg.startswith("-")]
    if not directories:
        return None
    return os.path.basename(directories[-1].rstrip("/")).replace(".", "-")

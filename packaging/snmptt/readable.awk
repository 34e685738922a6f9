# Makes snmpttconvertmib's EVENTs print readable values (run by generate.sh):
# - after each FORMAT, the REGEX lines of the file `regex` (dates, "-" for empty strings);
# - an EVENT whose FORMAT ends with "last line: $N" (cronNotifyMessage, the last varbind, which
#   the agent leaves out when the job does not send it) is written twice: once for
#   notifications with N varbinds or more (MATCH $#: > N-1), once for those without it, saying
#   "last line: -" (SNMPTT would print $1 and "5" for a missing $15).
function flush(    i, n, m) {
    if (count == 0) return
    n = 0
    for (i = 1; i <= count; i++)
        if (block[i] ~ /^FORMAT .*, last line: \$[0-9]+$/) { m = block[i]; sub(/.*\$/, "", m); n = m }
    emit(n ? "MATCH $#: > " (n - 1) : "", "")
    if (n) emit("MATCH $#: < " n, n)
    count = 0
}
function emit(match_line, unsent,    i, line) {
    for (i = 1; i <= count; i++) {
        line = block[i]
        if (unsent && line ~ /^FORMAT /) sub(/, last line: \$[0-9]+$/, ", last line: -", line)
        print line
        if (line ~ /^FORMAT /) {
            while ((getline extra < regex) > 0) print extra
            close(regex)
            if (match_line) print match_line
        }
    }
}
/^EVENT / { flush() }
{ block[++count] = $0 }
END { flush() }

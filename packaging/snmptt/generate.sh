#!/bin/sh
# Regenerate cronwrap.conf (SNMPTT's EVENT/FORMAT/severity for every CRON-JOBS-MIB
# notification) from the MIB's --#SUMMARY, --#ARGUMENTS and --#SEVERITY hints with Debian's
# snmpttconvertmib.  Usage: generate.sh [OUTPUT]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mibs=$(cd "$here/../../mibs" && pwd)
output=$(realpath "${1:-$here/cronwrap.conf}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MIBDIRS="+$mibs" MIBS=CRON-JOBS-MIB \
    snmpttconvertmib --in="$mibs/CRON-JOBS-MIB.txt" --out="$work/converted.conf" >"$work/log" 2>&1
grep -q "^Failed translations: *0$" "$work/log" || { cat "$work/log" >&2; exit 1; }
{
    cat "$here/header.txt"
    # The converter's own header names this checkout and the date: left out, so the output
    # depends on the MIB only. readable.awk adds regex.txt's REGEX lines, which print
    # DateAndTime as "2026-12-07 01:50:01 UTC" (needs allow_unsafe_regex = 1, as snmptt.ini
    # here sets) and "-" for an empty string (SNMPTT prints "(null)"), and an EVENT for
    # notifications without cronNotifyMessage.
    grep -v '^MIB: CRON-JOBS-MIB (file:' "$work/converted.conf" |
        awk -v regex="$here/regex.txt" -f "$here/readable.awk"
} >"$output"

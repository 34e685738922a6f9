#!/bin/sh
# Regenerate snmp.yml from generator.yml with prometheus-snmp-generator (snmp_exporter 0.21),
# then give the series Prometheus-style names (rename.sed).  Usage: generate.sh [OUTPUT]
# MIBDIRS: the repository's mibs/ first, then Net-SNMP's (NET-SNMP-MIB defines the root arc).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
output=$(realpath "${1:-$here/snmp.yml}")
cd "$here"
MIBDIRS="$here/../../mibs:/usr/share/snmp/mibs" \
    prometheus-snmp-generator --log.level=warn generate --output-path="$output"
sed -i -f "$here/rename.sed" "$output"

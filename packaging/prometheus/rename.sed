# Prometheus-style names for the generated snmp.yml (snmp_exporter 0.21's generator cannot
# rename): every MIB name in a `name:` or `labelname:` line goes to snake_case with
# "cron_job" written "cronjob" (cronJobRuns -> cronjob_runs, cronEventsAccepted ->
# cron_events_accepted), and the two index labels become `owner` and `name`.
/^ *\(- \)\?\(label\)\?name: cron[A-Za-z]*$/ {
  s/\([a-z]\)\([A-Z]\)/\1_\L\2/g
  s/cron_job/cronjob/
  s/labelname: cronjob_owner$/labelname: owner/
  s/labelname: cronjob_name$/labelname: name/
}

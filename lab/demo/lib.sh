# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers shared by lab/demo/demo.sh: the lab's hosts, the agent on the
# server, the names the client resolves.

# shellcheck disable=SC2034 # used by the scripts that source this file
LAB_NETWORK=${LAB_NETWORK:-pdnssoc-lab}
LAB_SERVER=pdnssoc-lab-server
LAB_SENSOR=pdnssoc-lab-sensor
LAB_CLIENT=pdnssoc-lab-client
LAB_MAIL=pdnssoc-lab-mail
DATA_DIR=/var/dnscollector
AGENT_USER=pdnssoc
AGENT_CMD="runuser -u $AGENT_USER -- /opt/pdnssoc-agent/bin/pdnssoc-agent"

# shellcheck disable=SC2034 # used by the scripts that source this file
# Names of lab/dns/: what an institution's users resolve on an ordinary day...
BENIGN_NAMES=(www.univ-a.test library.univ-a.test portal.univ-a.test news.research.test www.example)
# ...and what MISP knows as bad: an exact domain, a subdomain of an indicator,
# a benign-looking name whose address is an indicator, a name in an indicator
# network, and a CNAME into an indicator domain.
# shellcheck disable=SC2034
MALICIOUS_NAMES=(evil.example beacon-7f3a.c2.badcorp.test updates.campus-cdn.test files.sharehost.test
  mail.partner-univ.test)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

lab_exec() {
  local host=$1
  shift
  podman exec "$host" "$@"
}

# Run a pdnssoc-agent subcommand on the server as its service user.
agent() {
  # shellcheck disable=SC2086 # AGENT_CMD is a command line
  podman exec "$LAB_SERVER" $AGENT_CMD "$@"
}

# Run a playbook and show that it is alive: each play as it starts, each role
# as it starts (with the task count so far and the seconds since the start),
# and the recap; the full log is kept (and its tail printed on failure).
run_playbook() {
  local log
  log="$PDNSSOC_LAB_STATE/$(basename "$1" .yml).log"
  mkdir -p "$PDNSSOC_LAB_STATE"
  if PYTHONUNBUFFERED=1 ansible-playbook -i inventories/lab "$@" 2>&1 | tee "$log" | playbook_progress; then
    sed -n '/^PLAY RECAP/,$p' "$log"
    echo "(full log: $log)"
  else
    tail -n 60 "$log" >&2
    echo "FAILED: ansible-playbook $* (full log: $log)" >&2
    return 1
  fi
}

# Reads ansible-playbook's default output; prints a line per play and per role,
# and the running task when nothing was printed for 30 s.
playbook_progress() {
  awk -v start="$(date +%s)" '
    function elapsed(  now) { "date +%s" | getline now; close("date +%s"); return now - start }
    /^PLAY \[/ {
      name = $0; sub(/^PLAY \[/, "", name); sub(/\] \**$/, "", name)
      if (name != "PLAY RECAP") { printf "  play: %s\n", name; role = ""; fflush() }
      next
    }
    /^TASK \[/ {
      tasks++
      name = $0; sub(/^TASK \[/, "", name); sub(/\] \**$/, "", name)
      r = (index(name, " : ") > 0) ? substr(name, 1, index(name, " : ") - 1) : ""
      t = elapsed()
      if (r != "" && r != role) {
        printf "    role %-16s (task %d, %d s)\n", r, tasks, t; shown = t; fflush()
      } else if (t - shown >= 30) {
        printf "      task %d, %d s: %s\n", tasks, t, name; shown = t; fflush()
      }
      role = r
    }
  '
}

resolve() {
  local name=$1 kind=$2 answer
  answer=$(lab_exec "$LAB_CLIENT" dig +short +time=5 +tries=2 "@$LAB_SENSOR" "$name" | paste -sd' ' -)
  printf '  %-9s %-32s -> %s\n' "$kind" "$name" "${answer:-(no answer)}"
}

alert_lines() {
  lab_exec "$LAB_SERVER" sh -c "cat $DATA_DIR/alerts/matches.json 2>/dev/null | wc -l"
}

mail_count() {
  lab_exec "$LAB_MAIL" sh -c 'ls /var/lib/mailsink/*.eml 2>/dev/null | wc -l'
}

# One line per name: which alert (kind, match) it produced, if any.
alert_summary() {
  lab_exec "$LAB_SERVER" sh -c "cat $DATA_DIR/alerts/matches.json 2>/dev/null || true" \
    | python3 lab/demo/show_alerts.py --summary "$@"
}

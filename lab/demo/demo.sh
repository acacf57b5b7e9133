#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: the pDNSSOC lab end to end, in minutes, on this machine.
#  1. host set-up, lab image, a check of every capability the lab needs, and
#     go-dnscollector (cached after the first run)
#  2. lab hosts as podman containers: four institutions' resolvers with their
#     sensors (univ-a and univ-b on BIND, univ-c on Unbound, univ-d sniffed),
#     server (the CSIRT's pDNSSOC), MISP stand-in, authoritative DNS, mail and
#     webhook sinks, a client workstation
#  3. the world around pDNSSOC (lab/demo/services.yml), then pDNSSOC itself,
#     deployed as an operator does: ansible-playbook -i inventories/lab playbooks/site.yml
#  4. fetch-iocs, then benign and malicious names resolved by the client
#     through univ-a's resolver, the alerts printed as they arrive, and who
#     resolved them, from the passive-DNS history (hunt)
# The lab keeps running for exploration; make demo-down removes it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$root/ansible.cfg"
export PDNSSOC_LAB_STATE="$root/.cache/lab"
export PDNSSOC_SHARED=${PDNSSOC_SHARED:-$(cd "$root/.." && pwd)/shared}
# shellcheck source=lab/demo/lib.sh
. "$root/lab/demo/lib.sh"

WAIT=${DEMO_WAIT:-180} # seconds to wait for the alerts

start=$(date +%s)
step "Host set-up (podman, runc, netavark), lab image, a check of what the lab needs, go-dnscollector"
lab/host-setup.sh
lab/build-collector.sh

step "Lab hosts (podman network $LAB_NETWORK)"
lab/demo/lab.sh up

step "The world around pDNSSOC: authoritative DNS, MISP stand-in, sinks, client, sensor's resolver"
run_playbook lab/demo/services.yml

step "Deploy pDNSSOC as an operator does: ansible-playbook -i inventories/lab playbooks/site.yml"
run_playbook playbooks/site.yml
deployed=$(date +%s)

step "fetch-iocs: indicators from the MISP stand-in"
agent fetch-iocs
lab_exec "$LAB_SERVER" sh -c "wc -l $DATA_DIR/misp/misp_domains.txt $DATA_DIR/misp/misp_ips.txt"

step "The client resolves names through the institution's resolver (the sensor)"
alerts_before=$(alert_lines)
mail_before=$(mail_count)
for name in "${BENIGN_NAMES[@]}"; do resolve "$name" benign; done
for name in "${MALICIOUS_NAMES[@]}"; do resolve "$name" malicious; done

step "Alerts as they arrive on the server ($DATA_DIR/alerts/matches.json; up to ${WAIT} s)"
expected=${#MALICIOUS_NAMES[@]}
deadline=$(($(date +%s) + WAIT))
seen=$alerts_before
mails=$mail_before
last_change=$(date +%s)
while [ "$(date +%s)" -lt "$deadline" ]; do
  now_lines=$(alert_lines)
  if [ "$now_lines" -gt "$seen" ]; then
    lab_exec "$LAB_SERVER" tail -n "+$((seen + 1))" "$DATA_DIR/alerts/matches.json" | python3 lab/demo/show_alerts.py
    seen=$now_lines
    last_change=$(date +%s)
  fi
  now_mail=$(mail_count)
  if [ "$now_mail" -gt "$mails" ]; then
    lab_exec "$LAB_MAIL" python3 /opt/pdnssoc-lab/sinks/mailsink.py list --dir /var/lib/mailsink \
      | tail -n "+$((mails + 1))" | sed 's/^/  mail: /'
    mails=$now_mail
    last_change=$(date +%s)
  fi
  distinct=$(lab_exec "$LAB_SERVER" sh -c "cat $DATA_DIR/alerts/matches.json 2>/dev/null || true" \
    | python3 lab/demo/show_alerts.py --count-queries)
  # Done when every malicious name alerted and mail went out, or when alerts
  # came and nothing new arrived for longer than the agent's cycle (on a rerun
  # known alerts only get their count updated, and no mail within a day).
  if { [ "$distinct" -ge "$expected" ] && [ "$mails" -gt "$mail_before" ]; } \
    || { [ "$seen" -gt "$alerts_before" ] && [ $(($(date +%s) - last_change)) -gt 75 ]; }; then
    break
  fi
  sleep 3
done

step "What each name produced"
alert_summary "${MALICIOUS_NAMES[@]}" "${BENIGN_NAMES[@]}"

step "Who resolved them: the passive-DNS history (pdnssoc-agent hunt on the server)"
# correlate filled the history store as it read the replies: an analyst asks it
# who resolved a domain (its subdomains and CNAMEs into it too) or an address
agent hunt --since 1d evil.example badcorp.test || true

step "Status of the agent (pdnssoc-agent status on the server)"
agent status || true

end=$(date +%s)
cat <<TXT

The lab is up and stays up ($(( deployed - start )) s to deploy, $(( end - start )) s in all). Look next at:
  alerts on the server     podman exec $LAB_SERVER tail -f $DATA_DIR/alerts/matches.json
  every DNS reply logged   podman exec $LAB_SERVER tail -f $DATA_DIR/queries.json
  webhook posts            podman exec $LAB_MAIL python3 /opt/pdnssoc-lab/sinks/webhooksink.py list --dir /var/lib/webhooksink
  the agent's health       podman exec $LAB_SERVER $AGENT_CMD status
  who resolved a name      podman exec $LAB_SERVER $AGENT_CMD hunt --since 7d univ-a.test
  the agent's log          podman exec $LAB_SERVER supervisorctl tail -f pdnssoc-agent
  e-mail sent              podman exec $LAB_MAIL python3 /opt/pdnssoc-lab/sinks/mailsink.py list --dir /var/lib/mailsink
                           (messages as files in $LAB_MAIL:/var/lib/mailsink/)
  resolve more names       podman exec $LAB_CLIENT dig @$LAB_SENSOR www.evil.example
  a shell on a host        podman exec -it $LAB_SERVER bash
  lab hosts                lab/demo/lab.sh status
Remove everything with: make demo-down
TXT

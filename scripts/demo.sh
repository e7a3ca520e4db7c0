#!/usr/bin/env bash
# `make demo`: boot a three-host lab fleet on Debian 13 (a shared web host, a mail host and a mixed one) with a
# customer's site on the web hosts, install hostguard-watch with its containment named (mail hold, login lock, file
# quarantine), then let the seeds' four incidents happen to it: a backdoor planted in a site (001), a customer's
# script pumping mail abroad (002), a mailbox used from abroad with its leaked password (003), the mail host's
# address on the blocklists (004). The watch notices and contains; the audit reads back what is contained; the
# runbooks' next steps (harden, a new password with the sessions ended, the queue purged with its evidence) follow,
# and a last audit's fleet report says what is open and how fast each incident was contained.
# The fleet stays up for you to look at; `lab.py down --name $HOSTGUARD_DEMO_LAB` stops it.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.build/collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections}"
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.json ANSIBLE_LOAD_CALLBACK_PLUGINS=1

# The lab's name: another checkout's demo on the same machine takes another name.
LAB=${HOSTGUARD_DEMO_LAB:-demo}
REPORTS=.build/demo
INVENTORY=$REPORTS/inventory.yml
FLEET=$REPORTS/hostguard-report
mkdir -p "$REPORTS"

echo "demo: booting the fleet '$LAB' (a fresh machine first builds the hosts' root file system, about a minute)"
python tests/lab/lab.py down --name "$LAB" >/dev/null 2>&1 || true
python tests/lab/lab.py up --name "$LAB" --host web1:web@postfix-trixie --host mail1:mail@postfix-trixie \
  --host mixed1:web,mail@postfix-trixie \
  --inventory "$INVENTORY" --json "$REPORTS/lab.json"
# The example inventory's settings (inventories/example/group_vars) applied to the lab fleet.
rm -rf "$REPORTS/group_vars" "$REPORTS/host_vars" "$REPORTS/files" "$REPORTS/hostguard-passwords"
cp -r inventories/example/group_vars inventories/example/files "$REPORTS/"
# The lab's hosts have private addresses: the audit and the watch look up the public addresses they stand for
# (tests/lab/dns_zones.yml lists the mail host's as a spam source and the mixed host's as a dynamic range), on the
# lab's DNS server. The watch contains what it notices: mail held, logins locked, planted files quarantined.
cat > "$REPORTS/group_vars/all/lab.yml" <<EOT
---
demo_public_address: {web1: 198.19.0.200, mail1: 198.19.0.2, mixed1: 198.19.0.11}
audit_dnsbl_addresses: ["{{ demo_public_address[inventory_hostname] }}"]
audit_dnsbl_nameservers: ["{{ hostguard_lab_dns_ipv4 }}"]
demo_imap_login: $ROOT/scripts/demo/imap_login.py
demo_leaked_password: Mailbox-pass-2201
watch_contain_mail: hold
watch_contain_logins: lock
watch_contain_files: quarantine
watch_country_cidrs: "{{ hostguard_lab_country_table }}"
watch_dnsbl_addresses: "{{ audit_dnsbl_addresses }}"
watch_dnsbl_nameservers: "{{ audit_dnsbl_nameservers }}"
EOT
mkdir -p "$REPORTS/group_vars/web"
cat > "$REPORTS/group_vars/web/sites.yml" <<'EOT'
---
hostguard_integrity_sites:
  - {name: site1, paths: [/var/www/site1]}
EOT
# The runbook's answer to accounts nobody uses: lock them (reversible), on the web hosts.
cat > "$REPORTS/group_vars/web/accounts.yml" <<'EOT'
---
account_cleanup_enabled: true
account_cleanup_mode: lock
EOT

run() {  # name playbook [args]: run a playbook, keep its JSON report
  local name=$1 playbook=$2
  shift 2
  echo "demo: ansible-playbook $playbook $* ($name)"
  if ! ansible-playbook -i "$INVENTORY" "$playbook" "$@" > "$REPORTS/$name.json"; then
    python - "$REPORTS/$name.json" <<'EOT' >&2 || true
import json, sys
report = json.load(open(sys.argv[1]))
for play in report["plays"]:
    for task in play["tasks"]:
        for host, result in task["hosts"].items():
            if result.get("failed") or result.get("unreachable"):
                print(f"{host}: {task['task']['name']}: {result.get('msg')}")
EOT
    echo "demo: $playbook failed; its report is $REPORTS/$name.json" >&2
    exit 1
  fi
}

summary() {  # the fleet report's terminal summary, as the audit printed it, read back from its report.json
  PYTHONPATH="$ROOT/.build/collections" python -m ansible_collections.hostguard.hosting.plugins.module_utils.fleet_report "$1"
}

run site scripts/demo/site.yml
run baseline hostguard.hosting.integrity_baseline
run before-watch scripts/demo/before_watch.yml
run watch hostguard.hosting.watch
run incident scripts/demo/incident.yml
# The audit writes the fleet report beside the inventory ($FLEET); a fresh demo starts without one, and keeps the
# first audit's report for you to compare with the last one's.
rm -rf "$FLEET" "$FLEET-before"
run audit-before hostguard.hosting.audit
cp -r "$FLEET" "$FLEET-before"
echo; echo "== the first audit, after the watch contained the incidents"; summary "$FLEET/report.json"
python scripts/demo/reach.py "$REPORTS/lab.json" "before hardening" > "$REPORTS/reach-before.txt"
run harden hostguard.hosting.harden
python scripts/demo/reach.py "$REPORTS/lab.json" "after hardening" > "$REPORTS/reach-after.txt"
# The leaked-password runbook: a new password, the sessions ended, the mailbox unlocked with it.
run change-password hostguard.hosting.change_password -e change_password_hosts=mail1 -e change_password_account=mbox1 \
  -e change_password_domain=site1.example
MAIL1=$(python -c 'import json, sys; print(next(h["ipv4"] for h in json.load(open(sys.argv[1]))["hosts"] if h["name"] == "mail1"))' \
  "$REPORTS/lab.json")
# From Japan on 993 (the hardened firewall lets JP reach IMAPS only).
echo "demo: the mailbox from Japan with the leaked password, then with the new one:"
python tests/lab/lab.py client --name "$LAB" jp -- python3 scripts/demo/imap_login.py "$MAIL1" mbox1 Mailbox-pass-2201 993 \
  && { echo "demo: the leaked password still works" >&2; exit 1; }
python tests/lab/lab.py client --name "$LAB" jp -- python3 scripts/demo/imap_login.py "$MAIL1" mbox1 \
  "$(cat "$REPORTS/hostguard-passwords/mail1-mbox1.txt")" 993
# The spam-outbreak runbook: see what would go, then purge with the evidence kept (the held spam included). PHP's
# mail() hands it to sendmail as the customer, so its envelope sender is the account's address, not its From: header.
run purge-report hostguard.hosting.purge_mail_queue -e purge_hosts=mail1 -e mail_queue_purge_sender=customer1@mail1.lab.example
run purge hostguard.hosting.purge_mail_queue -e purge_hosts=mail1 -e mail_queue_purge_sender=customer1@mail1.lab.example \
  -e mail_queue_purge_export_dir=/var/lib/hostguard/evidence -e mail_queue_purge_confirm=true
run audit-after hostguard.hosting.audit

cat "$REPORTS/reach-before.txt" "$REPORTS/reach-after.txt"
echo; echo "== the fleet report, after the response"; summary "$FLEET/report.json"
echo; echo "== the seeds' incidents: from the first alert (or audit) to containment, from $FLEET/report.json"
python - "$FLEET/report.json" <<'EOT'
import json, sys
report = json.load(open(sys.argv[1]))
findings = {entry["host"]: (entry["result"] or {}).get("findings") or [] for entry in report["hosts"]}
def watch(host, kind):
    return next((f for f in findings[host] if f["facet"] == "watch" and f["evidence"].get("kind") == kind), None)
rows = [("001 backdoor planted in a site", watch("web1", "file_planted")),
        ("002 a customer's script pumping mail abroad", watch("mail1", "mail_rate")),
        ("003 a mailbox used from abroad, leaked password", watch("mail1", "login_new_country")),
        ("004 the address on the blocklists", watch("mail1", "dnsbl_listed"))]
print("%-48s %-8s %-26s %-26s %s" % ("incident", "status", "noticed", "contained", "seconds"))
for name, finding in rows:
    response = (finding or {}).get("response") or {}
    if name.startswith("004"):  # nothing contains a listing: the held spam source stops the cause
        held = (watch("mail1", "mail_rate") or {}).get("response") or {}
        noticed = (finding or {}).get("evidence", {}).get("time") or report["changes"]["previous"] or report["generated"]
        print("%-48s %-8s %-26s %-26s %s" % (name, finding["status"] if finding else "audit", noticed,
              held.get("contained_at") or "-", "the spam that listed it held; delisting: docs/runbooks/blocklisted-ip.md"))
        continue
    print("%-48s %-8s %-26s %-26s %s" % (name, finding["status"] if finding else "missing", response.get("noticed_at") or "-",
          response.get("contained_at") or "-", response.get("seconds") if response.get("seconds") is not None else "-"))
EOT
echo
python tests/lab/lab.py status
cat <<EOT

The fleet report (open it in a browser): $ROOT/$FLEET/index.html, and its data: $FLEET/report.json
The first audit's report, before the response: $ROOT/$FLEET-before/index.html

The fleet is still running. Look around:
  ssh -i /var/lib/hostguard-lab/ssh/id_ed25519 root@HOST          (addresses above)
  .venv/bin/python tests/lab/lab.py client --name $LAB abroad -- python3 tests/lab/netprobe.py tcp HOST 22
  .venv/bin/ansible-playbook -i $INVENTORY hostguard.hosting.audit
  .venv/bin/ansible-playbook -i $INVENTORY hostguard.hosting.restore -e restore_hosts=web1 \\
      -e '{"quarantine_docroots": ["/var/www/site1"], "quarantine_restore_paths": ["/var/www/site1/wp-content/uploads/2024/cache.php"]}'
Stop it with: .venv/bin/python tests/lab/lab.py down --name $LAB
EOT

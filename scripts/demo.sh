#!/usr/bin/env bash
# `make demo`: boot a three-host lab fleet on Debian 13 (a shared web host, a mail host and
# a mixed one) with a customer's site on the web hosts, let the seeds' incidents
# happen to it (a backdoor planted through a leaked password, the mail host's
# address on the blocklists), then audit, harden, quarantine what looks
# planted, and audit again, printing what was found and changed at each step.
# The fleet stays up for you to look at; `make lab-down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.build/collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections}"
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.json ANSIBLE_LOAD_CALLBACK_PLUGINS=1

LAB=demo
REPORTS=.build/demo
INVENTORY=$REPORTS/inventory.yml
FLEET=$REPORTS/hostguard-report
mkdir -p "$REPORTS"

echo "demo: booting the fleet (a fresh machine first builds the hosts' root file system, about a minute)"
python tests/lab/lab.py down --name "$LAB" >/dev/null 2>&1 || true
python tests/lab/lab.py up --name "$LAB" --host web1:web@postfix-trixie --host mail1:mail@postfix-trixie \
  --host mixed1:web,mail@postfix-trixie \
  --inventory "$INVENTORY" --json "$REPORTS/lab.json"
# The example inventory's settings (inventories/example/group_vars) applied to the lab fleet.
rm -rf "$REPORTS/group_vars" "$REPORTS/host_vars" "$REPORTS/files"
cp -r inventories/example/group_vars inventories/example/files "$REPORTS/"
# The lab's hosts have private addresses: the audit looks up the public
# addresses they stand for (tests/lab/dns_zones.yml lists the mail host's as
# a spam source and the mixed host's as a dynamic range), on the lab's DNS server.
cat > "$REPORTS/group_vars/all/lab.yml" <<'EOT'
---
demo_public_address: {web1: 198.19.0.200, mail1: 198.19.0.2, mixed1: 198.19.0.11}
audit_dnsbl_addresses: ["{{ demo_public_address[inventory_hostname] }}"]
audit_dnsbl_nameservers: ["{{ hostguard_lab_dns_ipv4 }}"]
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
account_cleanup_mode: lock
EOT

run() {  # name playbook [args]: run a playbook, keep its JSON report
  local name=$1 playbook=$2
  shift 2
  echo "demo: ansible-playbook $playbook $* ($name)"
  if ! ansible-playbook -i "$INVENTORY" "$playbook" "$@" > "$REPORTS/$name.json"; then
    python scripts/demo/report.py "$REPORTS/$name.json" || true
    echo "demo: $playbook failed; its report is $REPORTS/$name.json" >&2
    exit 1
  fi
}

run site scripts/demo/site.yml
run baseline hostguard.hosting.integrity_baseline
run incident scripts/demo/incident.yml
# The audit writes the fleet report beside the inventory ($FLEET); a fresh demo starts without one, and keeps the
# first audit's report for you to compare with the last one's.
rm -rf "$FLEET" "$FLEET-before"
run audit-before hostguard.hosting.audit
cp -r "$FLEET" "$FLEET-before"
python scripts/demo/reach.py "$REPORTS/lab.json" "before hardening" > "$REPORTS/reach-before.txt"
run harden hostguard.hosting.harden
python scripts/demo/reach.py "$REPORTS/lab.json" "after hardening" > "$REPORTS/reach-after.txt"
# The runbook's next step: quarantine what the audit found planted, on the hosts where it found it.
python scripts/demo/report.py --quarantine-vars "$REPORTS/host_vars" "$FLEET/report.json"
run quarantine hostguard.hosting.quarantine -e '{"quarantine_docroots": ["/var/www/site1"]}' \
  -e quarantine_hosts=web1
# The spam-outbreak runbook: see what would go, then purge with the evidence kept.
run purge-report hostguard.hosting.purge_mail_queue -e purge_hosts=mail1 -e mail_queue_purge_sender=wordpress@site1.example
run purge hostguard.hosting.purge_mail_queue -e purge_hosts=mail1 -e mail_queue_purge_sender=wordpress@site1.example \
  -e mail_queue_purge_export_dir=/var/lib/hostguard/evidence -e mail_queue_purge_confirm=true
run audit-after hostguard.hosting.audit

python scripts/demo/report.py "$REPORTS/audit-before.json" "$REPORTS/harden.json" "$REPORTS/quarantine.json" \
  "$REPORTS/purge-report.json" "$REPORTS/purge.json" "$REPORTS/audit-after.json"
cat "$REPORTS/reach-before.txt" "$REPORTS/reach-after.txt"
echo
python tests/lab/lab.py status
cat <<EOT

The fleet report (open it in a browser): $ROOT/$FLEET/index.html, and its data: $FLEET/report.json
The first audit's report, before the response: $ROOT/$FLEET-before/index.html

The fleet is still running. Look around:
  ssh -i /var/lib/hostguard-lab/ssh/id_ed25519 root@HOST          (addresses above)
  .venv/bin/python tests/lab/lab.py client --name $LAB abroad -- python3 tests/lab/netprobe.py tcp HOST 22
  .venv/bin/ansible-playbook -i $INVENTORY hostguard.hosting.audit
  .venv/bin/ansible-playbook -i $INVENTORY hostguard.hosting.restore -e quarantine_hosts=web1 \
      -e '{"quarantine_docroots": ["/var/www/site1"], "quarantine_restore_paths": ["/var/www/site1/wp-content/uploads/2024/cache.php"]}'
Stop it with: make lab-down
EOT

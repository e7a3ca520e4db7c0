#!/usr/bin/env bash
# Install what `make test` and `make demo` need, on a fresh Debian machine:
# Debian packages for the lab, and the project's virtualenv (.venv) with the
# pinned versions of requirements-dev.txt. Quick when everything is present.
# Refuses in one line, within seconds, where it cannot work.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 2

die() { echo "setup: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root: the lab creates network namespaces, mounts and containers; run it as root (e.g. sudo make test)"

# command -> Debian package that provides it
declare -A PROVIDES=(
  [systemd-nspawn]=systemd-container
  [debootstrap]=debootstrap
  [ip]=iproute2
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [rsync]=rsync
  [git]=git
  [dig]=bind9-dnsutils
  [shellcheck]=shellcheck
  [nft]=nftables
  [db_load]=db-util     # unit tests build and read vsftpd virtual-user databases for real
  [pwscore]=libpwquality-tools  # and read password rules through the real libpwquality (libpwquality1)
)

missing_packages=()
for command in "${!PROVIDES[@]}"; do
  package=${PROVIDES[$command]}
  if ! command -v "$command" >/dev/null 2>&1; then
    if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      # Installed but not on PATH: installing again would not help.
      die "$command not found on PATH although package $package is installed: check PATH, or reinstall with 'apt-get install --reinstall $package'"
    fi
    missing_packages+=("$package")
  fi
done
python3 -c 'import ensurepip, venv' 2>/dev/null || missing_packages+=(python3-venv)

if [ ${#missing_packages[@]} -gt 0 ]; then
  mapfile -t missing_packages < <(printf '%s\n' "${missing_packages[@]}" | sort -u)
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing_packages[*]} and no apt-get to install them: install them by hand"
  echo "setup: installing ${missing_packages[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing_packages[@]}"; } >/tmp/hostguard-setup-apt.log 2>&1 \
    || die "could not install ${missing_packages[*]} (see /tmp/hostguard-setup-apt.log): apt-get install ${missing_packages[*]}"
  for command in "${!PROVIDES[@]}"; do
    command -v "$command" >/dev/null 2>&1 || die "$command still missing after installing ${PROVIDES[$command]}"
  done
fi

# Headless Chromium renders the audit's fleet report in the unit tests (tests/unit/test_fleet_report_browser.py).
# Only those tests need it: where it cannot be installed they are skipped, saying so, and the rest still runs.
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium (the fleet report's browser tests)" >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
      >/tmp/hostguard-setup-chromium.log 2>&1; then
    echo "setup: could not install chromium (see /tmp/hostguard-setup-chromium.log): the fleet report's browser tests will be skipped" >&2
  fi
fi

grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "the kernel has no overlay file system: load it with 'modprobe overlay'"

# The virtualenv, rebuilt when the requirements change.
stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: creating .venv from requirements-dev.txt" >&2
  rm -rf .venv
  python3 -m venv .venv || die "python3 -m venv failed: apt-get install python3-venv"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt >/tmp/hostguard-setup-pip.log 2>&1 \
    || die "pip install failed (see /tmp/hostguard-setup-pip.log)"
  echo "$wanted" > "$stamp"
fi

# Debian's wordpress package unpacked: the unit tests scan it and must find nothing in it.
clean_wordpress=.build/clean-debian/wordpress
if [ ! -d "$clean_wordpress/usr/share/wordpress" ]; then
  echo "setup: unpacking Debian's wordpress package into $clean_wordpress" >&2
  debs=$(mktemp -d)
  chmod 755 "$debs"  # apt-get download fetches as _apt where it can
  { (cd "$debs" && apt-get download wordpress) || { apt-get update -qq && (cd "$debs" && apt-get download wordpress); }; } \
    >/tmp/hostguard-setup-apt.log 2>&1 || die "could not fetch Debian's wordpress package (see /tmp/hostguard-setup-apt.log): apt-get download wordpress"
  rm -rf "$clean_wordpress" && mkdir -p "$clean_wordpress"
  dpkg-deb -x "$debs"/wordpress_*.deb "$clean_wordpress" || die "dpkg-deb -x of $(echo "$debs"/wordpress_*.deb) failed"
  rm -rf "$debs"
fi

# The collection under its namespace path, for ansible-playbook in this tree.
mkdir -p .build/collections/ansible_collections/hostguard
ln -sfn ../../../.. .build/collections/ansible_collections/hostguard/hosting

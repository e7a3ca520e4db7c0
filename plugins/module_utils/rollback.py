# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rollback the host runs by itself: a transient systemd timer, armed before a
risky change and stopped once the controller has proven it still gets in."""

from __future__ import annotations

ROLLBACK_UNIT = "hostguard-firewall-rollback"


class RollbackError(RuntimeError):
    pass


def armed(run):
    rc, out, _err = run(["systemctl", "is-active", f"{ROLLBACK_UNIT}.timer"])
    return rc == 0 and out.strip() == "active"


def arm(run, command, seconds):
    """Run `command` (argv) after `seconds` unless disarmed first."""
    disarm(run)
    rc, out, err = run(["systemd-run", f"--unit={ROLLBACK_UNIT}", f"--on-active={int(seconds)}s",
                        "--timer-property=AccuracySec=1s", "--description=hostguard firewall rollback", *command])
    if rc != 0:
        raise RollbackError(f"arming the rollback timer failed: {(err or out).strip()}")


def disarm(run):
    """Stop a pending rollback. True when one was pending."""
    was_armed = armed(run)
    run(["systemctl", "stop", f"{ROLLBACK_UNIT}.timer"])
    run(["systemctl", "reset-failed", f"{ROLLBACK_UNIT}.service", f"{ROLLBACK_UNIT}.timer"])
    return was_armed

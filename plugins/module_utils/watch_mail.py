# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's outbound mail facet: which account, script or mailbox is sending, and holding it.

Postfix says who handed each message in: pickup logs the submitting uid of
mail given to sendmail; cleanup logs the ``X-PHP-Originating-Script`` header
(``mail.add_x_header``) through the INFO rule of the watch's header_checks map;
smtpd logs the SASL user of authenticated mail; the delivery agents log each
recipient. The facet counts messages per source over the last hour and says
when a source passes ``per_hour`` or ``rate_factor`` times its usual hourly rate.

Holding (``contain: hold``): the source's queued messages are put on hold
(``postsuper -h``) and a HOLD rule for its uid goes into the header_checks map,
matching the ``Received: by HOST (Postfix, from userid UID)`` header that
Postfix's cleanup adds to every locally submitted message, so the account's new
mail is accepted and held, not lost, while other accounts' mail flows.
``release()`` lets it go again. The map is the truth of what is held: the
service and a release read it, so they cannot disagree.
"""

from __future__ import annotations

import os
import pwd
import re

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import write_atomically

QUEUE_ID = r"(?P<qid>[0-9A-Za-z]{6,})"
PICKUP_RE = re.compile(QUEUE_ID + r": uid=(?P<uid>\d+) from=<(?P<sender>[^>]*)>")
SASL_RE = re.compile(QUEUE_ID + r": client=(?P<client>\S+?), .*?sasl_username=(?P<user>[^,\s]+)")
HEADER_RE = re.compile(QUEUE_ID + r": (?P<action>info|hold): header (?P<header>[A-Za-z-]+): (?P<value>.*?) from \S+;")
RECIPIENT_RE = re.compile(QUEUE_ID + r": to=<(?P<to>[^>]*)>")
REMOVED_RE = re.compile(QUEUE_ID + r": removed$")
HELD_UID_RE = re.compile(r"\(Postfix, from userid (?P<uid>\d+)\)")
MAP_RULE_RE = re.compile(r"^/\^Received: by \[\^ \]\+ \\\(Postfix, from userid (?P<uid>\d+)\\\)/ HOLD ")

DELIVERY_AGENTS = ("smtp", "lmtp", "local", "virtual", "error", "discard", "pipe")
RUNBOOK = "spam-outbreak.md"
MAX_QUEUE_IDS = 50000
MAP_HEADER = ("# Written by hostguard-watch. HOLD: mail submitted by these uids is held until released\n"
              "# (playbooks/release_mail.yml). INFO: PHP's X-PHP-Originating-Script header is logged.\n")
INFO_RULE = "/^X-PHP-Originating-Script: / INFO\n"


def hold_rule(uid):
    return f"/^Received: by [^ ]+ \\(Postfix, from userid {int(uid)}\\)/ HOLD hostguard-watch: mail from uid {int(uid)} held\n"


def read_held_uids(map_path):
    """The uids the header_checks map holds (the map is the truth of what is held)."""
    try:
        with open(map_path, encoding="utf-8") as stream:
            return sorted({int(m.group("uid")) for m in map(MAP_RULE_RE.match, stream) if m})
    except FileNotFoundError:
        return []


def write_hold_map(map_path, uids):
    text = MAP_HEADER + "".join(hold_rule(uid) for uid in sorted(set(uids))) + INFO_RULE
    write_atomically(map_path, text.encode(), mode=0o644)


def account_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


class Postfix(object):
    """Holding and releasing through Postfix's own commands."""

    def __init__(self, run, map_path):
        self.run, self.map_path = run, map_path

    def hold_uid(self, uid, queue_ids):
        uids = read_held_uids(self.map_path)
        if uid not in uids:
            write_hold_map(self.map_path, uids + [uid])
        self._reload()  # also when the rule is there already: an earlier reload may have failed
        return self.hold_queued(queue_ids)

    def hold_queued(self, queue_ids):
        """postsuper -h: the number of messages put on hold (ids no longer queued are skipped)."""
        if not queue_ids:
            return 0
        rc, out, err = self.run(["postsuper", "-h", "-"], stdin="".join(f"{q}\n" for q in queue_ids))
        if rc != 0:
            raise RuntimeError(f"postsuper -h failed: {(err or out).strip()}")
        match = re.search(r"Placed on hold: (\d+) message", err + out)
        return int(match.group(1)) if match else 0

    def release_uid(self, uid, queue_ids):
        uids = read_held_uids(self.map_path)
        if uid in uids:
            write_hold_map(self.map_path, [u for u in uids if u != uid])
            self._reload()
        released = 0
        if queue_ids:
            rc, out, err = self.run(["postsuper", "-H", "-"], stdin="".join(f"{q}\n" for q in queue_ids))
            if rc != 0:
                raise RuntimeError(f"postsuper -H failed: {(err or out).strip()}")
            match = re.search(r"Released from hold: (\d+) message", err + out)
            released = int(match.group(1)) if match else 0
        return released

    def _reload(self):
        rc, out, err = self.run(["postfix", "reload"])
        if rc != 0:
            raise RuntimeError(f"postfix reload failed: {(err or out).strip()}")


def held_ids_path(state_dir, uid):
    return os.path.join(state_dir, f"held-uid-{int(uid)}.ids")


def held_queue_ids(state_dir, uid):
    """The ids of the messages the watch held for `uid` (some may be gone from the queue since)."""
    try:
        with open(held_ids_path(state_dir, uid), encoding="ascii") as stream:
            return sorted({line.strip() for line in stream if line.strip()})
    except FileNotFoundError:
        return []


def release(state_dir, map_path, uid, run):
    """Let a held uid's mail go: the HOLD rule out of the map, its held messages back in the queue."""
    path = held_ids_path(state_dir, uid)
    queue_ids = held_queue_ids(state_dir, uid)
    was_held = uid in read_held_uids(map_path)
    released = Postfix(run, map_path).release_uid(uid, queue_ids)
    if os.path.exists(path):
        os.unlink(path)
    return {"uid": uid, "was_held": was_held, "released": released, "queue_ids": len(queue_ids)}


class MailFacet(object):
    NAME = "mail"
    LOOKBACK = 3600
    INTERVAL = 60
    DEFAULTS = {
        "mta": "postfix",
        "per_hour": 200,
        "rate_factor": 5,
        "rate_floor": 50,
        "contain": "none",
        "hold_map": "/etc/postfix/hostguard-watch-hold.regexp",
    }

    @staticmethod
    def validate(settings, where):
        watch_config.check_choice(settings["mta"], f"{where}.mta", ("postfix",))
        watch_config.check_integer(settings["per_hour"], f"{where}.per_hour", 1)
        watch_config.check_integer(settings["rate_factor"], f"{where}.rate_factor", 2)
        watch_config.check_integer(settings["rate_floor"], f"{where}.rate_floor", 1)
        watch_config.check_choice(settings["contain"], f"{where}.contain", ("none", "hold"))
        watch_config.check_absolute_path(settings["hold_map"], f"{where}.hold_map")

    @staticmethod
    def check_host(settings, where):
        directory = os.path.dirname(settings["hold_map"])
        if settings["contain"] == "hold" and not os.path.isdir(directory):
            raise watch_config.ConfigError(f"{where}.hold_map: its directory {directory} does not exist")

    def __init__(self, context):
        self.context = context
        self.settings = context.settings
        self.mta = Postfix(context.run, self.settings["hold_map"])
        state = context.state
        state.setdefault("sources", {})

    @property
    def queue_ids(self):
        """queue id -> source, oldest first (dicts keep insertion order), kept in the state across restarts.

        Looked up each time: the service loads the saved state after the facets are made.
        """
        return self.context.state.setdefault("queue_ids", {})

    def identifiers(self):
        names = ["pickup", "cleanup", "smtpd", "qmgr"] + list(DELIVERY_AGENTS)
        return [f"postfix/{name}" for name in names] + [f"postfix/submission/{name}" for name in ("smtpd", "cleanup")]

    def start(self):
        pass

    def stop(self):
        pass

    def fds(self):
        return []

    # -- lines -------------------------------------------------------------------------------------------------
    def on_line(self, line):
        program = line.identifier.rsplit("/", 1)[-1]
        message = line.message
        if program == "pickup":
            match = PICKUP_RE.match(message)
            if match:
                uid = int(match.group("uid"))
                self._count(f"uid:{uid}", line, match.group("qid"), uid=uid)
        elif program == "smtpd":
            match = SASL_RE.match(message)
            if match:
                self._count(f"sasl:{match.group('user')}", line, match.group("qid"), sasl_user=match.group("user"))
        elif program == "cleanup":
            match = HEADER_RE.match(message)
            if match:
                self._header(line, match)
        elif program == "qmgr":
            match = REMOVED_RE.match(message)
            if match:
                self.queue_ids.pop(match.group("qid"), None)
        elif program in DELIVERY_AGENTS:
            match = RECIPIENT_RE.match(message)
            if match:
                self._recipient(match.group("qid"), match.group("to"))

    def _source(self, key, **identity):
        sources = self.context.state["sources"]
        source = sources.get(key)
        if source is None:
            source = sources[key] = {"minutes": {}, "scripts": {}, "domains": {}, "usual": 0.0, "hour": None}
            source.update(identity)
            if "uid" in identity:
                source["account"] = account_name(identity["uid"])
        return source

    def _count(self, key, line, queue_id, **identity):
        source = self._source(key, **identity)
        minute = str(int(line.time // 60 * 60))
        source["minutes"][minute] = source["minutes"].get(minute, 0) + 1
        source["last"] = line.time
        self.queue_ids[queue_id] = key
        if source.get("held"):
            source.setdefault("unheld", []).append(queue_id)  # held at submission, unless cleanup says otherwise
        while len(self.queue_ids) > MAX_QUEUE_IDS:
            del self.queue_ids[next(iter(self.queue_ids))]
        self.context.changed()
        self._judge(key, source, line.time)

    def _header(self, line, match):
        queue_id, value = match.group("qid"), match.group("value")
        header = match.group("header").lower()
        if header == "x-php-originating-script":
            key = self.queue_ids.get(queue_id)
            script = value.split(":", 1)[-1].strip()
            if key and script:
                scripts = self.context.state["sources"][key]["scripts"]
                scripts[script] = scripts.get(script, 0) + 1
        elif header == "received" and match.group("action") == "hold":
            held = HELD_UID_RE.search(value)
            if held:
                self._remember_held(int(held.group("uid")), [queue_id])
                seen = self.context.state.setdefault("held_at_submission", [])
                seen.append(queue_id)
                del seen[:-MAX_QUEUE_IDS]

    def _recipient(self, queue_id, address):
        key = self.queue_ids.get(queue_id)
        if key is None or "@" not in address:
            return
        domains = self.context.state["sources"][key]["domains"]
        domain = address.rsplit("@", 1)[1].lower()
        domains[domain] = domains.get(domain, 0) + 1
        if len(domains) > 200:  # keep the busiest: a spam run's recipients are many domains
            for name in sorted(domains, key=domains.get)[:100]:
                del domains[name]

    # -- judging -----------------------------------------------------------------------------------------------
    @staticmethod
    def hourly_count(source, now):
        horizon = now - 3600
        return sum(count for minute, count in source["minutes"].items() if int(minute) > horizon - 60)

    def _judge(self, key, source, now):
        count = self.hourly_count(source, now)
        per_hour, usual = self.settings["per_hour"], source["usual"]
        unusual = max(self.settings["rate_floor"], self.settings["rate_factor"] * usual) if usual >= 1 else None
        if count <= per_hour and (unusual is None or count <= unusual):
            return
        who = self._who(source)
        reason = f"limit {per_hour}" if count > per_hour else f"about {usual:.0f} an hour is usual"
        top_domains = dict(sorted(source["domains"].items(), key=lambda item: -item[1])[:5])
        top_scripts = sorted(source["scripts"], key=lambda name: -source["scripts"][name])[:3]
        evidence = {"count": count, "limit": per_hour, "usual": round(usual, 1), "top_recipient_domains": top_domains,
                    "source": key}
        for field in ("uid", "account", "sasl_user"):
            if source.get(field) is not None:
                evidence[field] = source[field]
        if top_scripts:
            evidence["script"] = top_scripts[0]
            evidence["scripts"] = top_scripts
        summary = f"{who} sent {count} messages in the last hour ({reason})"
        action = None
        if self.settings["contain"] == "hold" and "uid" in source and not source.get("held") \
                and now - source.get("hold_failed", 0) >= self.context.service.config["alerts"]["interval"]:
            action = self._hold(key, source, now)
        self.context.emit("mail_rate", key, summary, severity="critical", runbook=RUNBOOK, evidence=evidence,
                          action=action, when=now)

    @staticmethod
    def _who(source):
        if "uid" in source:
            name = source.get("account") or "an account with no passwd entry"
            script = max(source["scripts"], key=source["scripts"].get) if source["scripts"] else None
            return f"account {name} (uid {source['uid']})" + (f", script {script}," if script else "")
        return f"mailbox {source['sasl_user']} (SMTP AUTH)"

    def _hold(self, key, source, now):
        if self.context.service.learning_until is not None:
            return None  # reading the past at first start: nothing is contained for what already went out
        uid = source["uid"]
        queue_ids = [qid for qid, owner in self.queue_ids.items() if owner == key]
        try:
            held = self.mta.hold_uid(uid, queue_ids)
        except (OSError, RuntimeError) as exc:
            # said once, with the alert; tried again after the alert interval, not on every message
            self.context.log(f"mail: could not hold uid {uid}: {exc}")
            source["hold_failed"] = now
            return {"done": f"nothing: holding uid {uid} failed ({exc})", "undo": "nothing to undo",
                    "kind": "hold", "failed": True, "uid": uid}
        source["held"] = True
        self._remember_held(uid, queue_ids)
        name = source.get("account") or uid
        return {"done": f"mail from uid {uid} ({name}) is held: {held} queued message(s) put on hold, "
                        f"new mail from it held at submission",
                "undo": f"ansible-playbook hostguard.hosting.release_mail -e release_mail_hosts={self.context.host} "
                        f"-e release_mail_uid={uid}",
                "kind": "hold", "uid": uid, "held": held}

    def _hold_stragglers(self, source):
        """Hold what the account submitted between the decision and Postfix's reload of the map."""
        seen = set(self.context.state.get("held_at_submission", ()))
        stragglers = [qid for qid in source.pop("unheld") if qid not in seen]
        if stragglers:
            try:
                self.mta.hold_queued(stragglers)
            except (OSError, RuntimeError) as exc:
                self.context.log(f"mail: could not hold uid {source['uid']}'s latest messages: {exc}")
            self._remember_held(source["uid"], stragglers)

    def _remember_held(self, uid, queue_ids):
        path = held_ids_path(self.context.service.config["state_dir"], uid)
        with open(path, "a", encoding="ascii") as stream:
            stream.write("".join(f"{qid}\n" for qid in queue_ids))

    # -- every minute ----------------------------------------------------------------------------------------
    def tick(self, now):
        held_uids = set(read_held_uids(self.settings["hold_map"]))
        sources = self.context.state["sources"]
        hour = int(now // 3600)
        for key in list(sources):
            source = sources[key]
            if source.get("held") and source.get("uid") not in held_uids:
                # released: counting starts again, and a new flood holds it again
                source.update(held=False, minutes={}, unheld=[])
            elif source.get("held") and source.get("unheld"):
                self._hold_stragglers(source)
            for minute in [m for m in source["minutes"] if int(m) <= now - 3660]:
                del source["minutes"][minute]
            if source["hour"] != hour:
                # once an hour: the usual rate follows the hours that were not alerts
                if source["hour"] is not None:
                    count = self.hourly_count(source, now)
                    if count <= self.settings["per_hour"]:
                        source["usual"] = 0.8 * source["usual"] + 0.2 * count
                source["hour"] = hour
            if not source["minutes"] and source["usual"] < 0.5 and not source.get("held"):
                del sources[key]
        self.context.changed()

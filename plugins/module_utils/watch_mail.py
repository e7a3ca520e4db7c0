# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's outbound mail facet: which account, script or mailbox is sending, and holding it.

The MTA says who handed each message in, one class per kind with the same
methods (``identifiers``, ``log_files``, ``on_line``, ``held_uids``,
``hold_uid``, ``hold_queued``, ``release_uid``):

- Postfix (the journal): pickup logs the submitting uid of mail given to
  sendmail; cleanup logs the ``X-PHP-Originating-Script`` header
  (``mail.add_x_header``) through the INFO rule of the watch's header_checks
  map; smtpd logs the SASL user of authenticated mail; the delivery agents log
  each recipient. Holding: the queued messages go on hold (``postsuper -h``) and
  a HOLD rule for the uid goes into the map, matching the ``Received: by HOST
  (Postfix, from userid UID)`` header cleanup adds to locally submitted mail.
- Exim (``/var/log/exim4/mainlog``, with the role's log selector ``+pid
  +arguments``): ``<=`` lines carry ``U=user P=local`` for sendmail and
  ``A=authenticator:user`` for SMTP AUTH; the ``cwd=... args:`` line and the
  watch's ACL's ``hostguard-watch: script=`` line of the same process say from
  where and which PHP script; ``=>``, ``->``, ``**`` and ``==`` lines name the
  recipients. Holding: the queued messages are frozen (``exim -Mf``) and the uid
  goes into the list the watch's ``acl_not_smtp`` freezes new local mail of.

A SASL user (a mailbox sending through authenticated submission) is held the
same way at the end of its DATA: on Postfix ``check_sasl_access`` in
``smtpd_end_of_data_restrictions`` reads the watch's texthash map (``USER
HOLD``), staged and proven with ``postmap -q`` before it is live and Postfix is
reloaded; on Exim the watch's DATA ACL freezes the messages of the
authenticated users in its list.

Either way the source's new mail is accepted and held, not lost, while other
sources' mail flows, and ``release()`` lets it go again. The map or list is
the truth of what is held: the service and a release read it, so they cannot
disagree. The facet counts messages per source over the last hour and says
when a source passes ``per_hour`` or ``rate_factor`` times its usual rate.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_facet import Facet
from ansible_collections.hostguard.hosting.plugins.module_utils.mail_queue import MailQueueError, find_mta

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

# Exim's main log with +pid: "DATE TIME [PID] [MESSAGE-ID] TEXT". Message ids are 6-6-2 characters up to
# Exim 4.96 (Debian 12) and 6-11-4 from 4.97 on (Debian 13).
EXIM_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [-+]\d{4})? (?:\[(?P<pid>\d+)\] )?"
                          r"(?:(?P<qid>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) )?(?P<text>.*)$")
EXIM_ARRIVAL_RE = re.compile(r"^<= (?P<sender>\S+)(?P<fields>.*)$")
EXIM_FIELD_RE = re.compile(r" (?P<name>[A-Za-z]+)=(?P<value>\"[^\"]*\"|\S+)")
EXIM_RECIPIENT_RE = re.compile(r"^(?:=>|->|\*\*|==) (?P<to>\S+)")
EXIM_ARGUMENTS_RE = re.compile(r"^cwd=(?P<cwd>\S+) \d+ args: (?P<args>.*)$")
EXIM_NOTE_RE = re.compile(r"hostguard-watch: (?P<what>script|held|held-sasl)=(?P<value>\S*)")
# smtpd's log of a message check_sasl_access held at the end of DATA (the map's text names the user)
SASL_HELD_RE = re.compile(QUEUE_ID + r": hold: .*?hostguard-watch: mail of SASL user (?P<user>\S+) held")
EXIM_LIST_HEADER = ("# Written by hostguard-watch: Exim's acl_not_smtp freezes the local mail of these uids until\n"
                    "# they are released (playbooks/release_mail.yml). One uid a line.\n")
MAX_PENDING = 2000
EXIM_DATA_ACL = "hostguard_watch_check_data"  # the role's DATA ACL (MAIN_ACL_CHECK_DATA), which reads the SASL list
# What a SASL user may be named in the map and list: no white space (texthash's separator), no colon (lsearch's),
# no slash (the name of the file of its held messages), never "." or "..".
SASL_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%+@=-]{0,254}$")
SASL_MAP_HEADER = ("# Written by hostguard-watch: check_sasl_access in smtpd_end_of_data_restrictions holds the new\n"
                   "# mail of these SASL users until they are released (playbooks/release_mail.yml).\n")
EXIM_SASL_LIST_HEADER = ("# Written by hostguard-watch: Exim's DATA ACL freezes the mail of these authenticated users\n"
                         "# until they are released (playbooks/release_mail.yml). One user a line.\n")


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


def read_exim_list(list_path):
    """The uids in Exim's hold list (one a line, comments ignored)."""
    try:
        with open(list_path, encoding="utf-8") as stream:
            return sorted({int(line.split(":")[0]) for line in stream if line.strip().split(":")[0].isdigit()})
    except FileNotFoundError:
        return []


def write_exim_list(list_path, uids):
    text = EXIM_LIST_HEADER + "".join(f"{uid}\n" for uid in sorted(set(uids)))
    write_atomically(list_path, text.encode(), mode=0o644)


def check_sasl_user(user):
    """`user` when it is a name the map and list can hold, else ValueError naming it."""
    if not isinstance(user, str) or not SASL_USER_RE.match(user):
        raise ValueError(f"not a SASL user name the hold map can hold: {user!r}")
    return user


def read_held_sasl_users(path):
    """The SASL users in the watch's Postfix map or Exim list (the first field of each line, comments ignored)."""
    try:
        with open(path, encoding="utf-8") as stream:
            return sorted({line.split()[0] for line in stream if line.strip() and not line.startswith("#")})
    except FileNotFoundError:
        return []


def sasl_map_text(users):
    return SASL_MAP_HEADER + "".join(f"{check_sasl_user(user)} HOLD hostguard-watch: mail of SASL user {user} held\n"
                                     for user in sorted(set(users)))


def write_exim_sasl_list(list_path, users):
    text = EXIM_SASL_LIST_HEADER + "".join(f"{check_sasl_user(user)}\n" for user in sorted(set(users)))
    write_atomically(list_path, text.encode(), mode=0o644)


def account_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def account_uid(name):
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


class Postfix(object):
    """Postfix: its journal lines, and holding and releasing through its own commands."""

    NAME = "postfix"
    HOLD_MAP = "/etc/postfix/hostguard-watch-hold.regexp"
    SASL_HOLD_MAP = "/etc/postfix/hostguard-watch-sasl-hold"
    OWN_DIRECTORY = False

    def __init__(self, run, map_path=None, sasl_map_path=None):
        self.run, self.map_path = run, map_path or self.HOLD_MAP
        self.sasl_map_path = sasl_map_path or self.SASL_HOLD_MAP

    @staticmethod
    def identifiers():
        names = ["pickup", "cleanup", "smtpd", "qmgr"] + list(DELIVERY_AGENTS)
        return [f"postfix/{name}" for name in names] + [f"postfix/submission/{name}" for name in ("smtpd", "cleanup")]

    @staticmethod
    def log_files():
        return []

    @staticmethod
    def on_line(line, sink):
        """Tell `sink` (the facet) what a Postfix journal line says."""
        program = line.identifier.rsplit("/", 1)[-1]
        message = line.message
        if program == "pickup":
            match = PICKUP_RE.match(message)
            if match:
                uid = int(match.group("uid"))
                sink.submitted(f"uid:{uid}", line, match.group("qid"), uid=uid)
        elif program == "smtpd":
            match = SASL_RE.match(message)
            if match:
                sink.submitted(f"sasl:{match.group('user')}", line, match.group("qid"), sasl_user=match.group("user"))
                return
            match = SASL_HELD_RE.match(message)
            if match:
                sink.held_at_submission(match.group("qid"), sasl_user=match.group("user"))
        elif program == "cleanup":
            match = HEADER_RE.match(message)
            if not match:
                return
            header, value = match.group("header").lower(), match.group("value")
            if header == "x-php-originating-script":
                sink.script(match.group("qid"), value.split(":", 1)[-1].strip())
            elif header == "received" and match.group("action") == "hold":
                held = HELD_UID_RE.search(value)
                if held:
                    sink.held_at_submission(match.group("qid"), uid=int(held.group("uid")))
        elif program == "qmgr":
            match = REMOVED_RE.match(message)
            if match:
                sink.removed(match.group("qid"))
        elif program in DELIVERY_AGENTS:
            match = RECIPIENT_RE.match(message)
            if match:
                sink.recipient(match.group("qid"), match.group("to"))

    def held_uids(self):
        return read_held_uids(self.map_path)

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
        return self.release_queued(queue_ids)

    def release_queued(self, queue_ids):
        """postsuper -H: the number of messages released (ids no longer held or queued are skipped)."""
        if not queue_ids:
            return 0
        rc, out, err = self.run(["postsuper", "-H", "-"], stdin="".join(f"{q}\n" for q in queue_ids))
        if rc != 0:
            raise RuntimeError(f"postsuper -H failed: {(err or out).strip()}")
        match = re.search(r"Released from hold: (\d+) message", err + out)
        return int(match.group(1)) if match else 0

    def held_sasl_users(self):
        return read_held_sasl_users(self.sasl_map_path)

    def sasl_hold_not_live(self):
        """None when Postfix consults the watch's SASL map (check_sasl_access with it in
        smtpd_end_of_data_restrictions), else what is live instead: without it a listed user's mail still flows."""
        rc, out, err = self.run(["postconf", "-h", "smtpd_end_of_data_restrictions"])
        if rc != 0:
            return f"postconf -h smtpd_end_of_data_restrictions failed: {(err or out).strip()}"
        words = re.split(r"[\s,]+", out.strip())
        if any(pair == ("check_sasl_access", f"texthash:{self.sasl_map_path}") for pair in zip(words, words[1:])):
            return None
        return f"smtpd_end_of_data_restrictions = {out.strip()} has no check_sasl_access texthash:{self.sasl_map_path}"

    def hold_sasl_user(self, user, queue_ids):
        users = self.held_sasl_users()
        if user not in users:
            self._write_sasl_map(users + [user])
        self._reload()  # also when the user is there already: an earlier reload may have failed
        return self.hold_queued(queue_ids)

    def release_sasl_user(self, user, queue_ids):
        users = self.held_sasl_users()
        if user in users:
            self._write_sasl_map([u for u in users if u != user])
            self._reload()
        return self.release_queued(queue_ids)

    def _write_sasl_map(self, users):
        """Stage the map beside the live one, prove Postfix reads every user as HOLD from it, then make it live."""
        staged = self.sasl_map_path + ".new"
        write_atomically(staged, sasl_map_text(users).encode(), mode=0o644)
        try:
            if users:
                rc, out, err = self.run(["postmap", "-q", "-", f"texthash:{staged}"],
                                        stdin="".join(f"{user}\n" for user in users))
                found = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.splitlines() if "\t" in line}
                wrong = [user for user in users if not found.get(user, "").startswith("HOLD")]
                if wrong:
                    raise RuntimeError(f"postmap -q does not read {', '.join(wrong)} as HOLD from {staged} "
                                       f"(rc {rc}): {err.strip()}")
            os.replace(staged, self.sasl_map_path)
        finally:
            if os.path.exists(staged):
                os.unlink(staged)

    def _reload(self):
        rc, out, err = self.run(["postfix", "reload"])
        if rc != 0:
            raise RuntimeError(f"postfix reload failed: {(err or out).strip()}")


class Exim(object):
    """Debian's exim4: its main log, and freezing and thawing through exim's own options."""

    NAME = "exim"
    HOLD_MAP = "/etc/exim4/hostguard-watch/held-uids"
    SASL_HOLD_MAP = "/etc/exim4/hostguard-watch/held-sasl-users"
    OWN_DIRECTORY = True
    MAINLOG = "/var/log/exim4/mainlog"
    BATCH = 500  # message ids per exim -Mf/-Mt call

    def __init__(self, run, map_path=None, sasl_map_path=None, mainlog=MAINLOG):
        self.run, self.map_path, self.mainlog = run, map_path or self.HOLD_MAP, mainlog
        self.sasl_map_path = sasl_map_path or self.SASL_HOLD_MAP
        # pid -> what the submitting process logged before its "<=" line (cwd and arguments, script, held)
        self.pending = {}

    @staticmethod
    def identifiers():
        return []

    def log_files(self):
        return [self.mainlog]

    def on_line(self, line, sink):
        """Tell `sink` (the facet) what a line of Exim's main log says."""
        match = EXIM_LINE_RE.match(line.message)
        if not match:
            return
        pid, queue_id, text = match.group("pid"), match.group("qid"), match.group("text")
        if queue_id is None:
            arguments = EXIM_ARGUMENTS_RE.match(text)
            if arguments and pid:
                self.pending.pop(pid, None)  # a new process: nothing of an earlier one with the same pid
                self._note(pid, cwd=arguments.group("cwd"), command=arguments.group("args"))
            note = EXIM_NOTE_RE.search(text)
            if note and pid:
                self._note(pid, **{note.group("what"): note.group("value")})
            return
        note = EXIM_NOTE_RE.search(text)  # the ACL's lines carry the message id once it has one
        if note and pid:
            self._note(pid, **{note.group("what"): note.group("value")})
            return
        if text.startswith("<= "):
            self._arrival(line, pid, queue_id, text, sink)
        elif text == "Completed":
            sink.removed(queue_id)
        else:
            recipient = EXIM_RECIPIENT_RE.match(text)
            if recipient:
                sink.recipient(queue_id, recipient.group("to"))

    def _note(self, pid, **facts):
        self.pending.setdefault(pid, {}).update(facts)
        while len(self.pending) > MAX_PENDING:
            del self.pending[next(iter(self.pending))]

    def _arrival(self, line, pid, queue_id, text, sink):
        arrival = EXIM_ARRIVAL_RE.match(text)
        if not arrival:
            return
        fields = {m.group("name"): m.group("value").strip('"') for m in EXIM_FIELD_RE.finditer(arrival.group("fields"))}
        noted = self.pending.pop(pid, {}) if pid else {}
        if "A" in fields and ":" in fields["A"]:
            user = fields["A"].split(":", 1)[1]
            sink.submitted(f"sasl:{user}", line, queue_id, sasl_user=user)
            if noted.get("held-sasl") == user:
                sink.held_at_submission(queue_id, sasl_user=user)
        elif "U" in fields and fields.get("P", "").startswith("local"):
            user = fields["U"]
            uid = account_uid(user)
            identity = {"uid": uid} if uid is not None else {"account": user}
            for name in ("cwd", "command"):
                if noted.get(name):
                    identity[name] = noted[name]
            sink.submitted(f"uid:{uid}" if uid is not None else f"user:{user}", line, queue_id, **identity)
            if noted.get("script"):
                sink.script(queue_id, noted["script"].split(":", 1)[-1])
            if noted.get("held") and uid is not None:
                sink.held_at_submission(queue_id, uid=uid)

    def held_uids(self):
        return read_exim_list(self.map_path)

    def hold_uid(self, uid, queue_ids):
        uids = read_exim_list(self.map_path)
        if uid not in uids:
            write_exim_list(self.map_path, uids + [uid])  # read by every new submission: no reload
        return self.hold_queued(queue_ids)

    def hold_queued(self, queue_ids):
        """exim -Mf: the number of messages frozen (ids no longer queued are skipped)."""
        return self._each(["-Mf"], queue_ids, "is now frozen")

    def release_uid(self, uid, queue_ids):
        uids = read_exim_list(self.map_path)
        if uid in uids:
            write_exim_list(self.map_path, [u for u in uids if u != uid])
        return self.release_queued(queue_ids)

    def release_queued(self, queue_ids):
        """exim -Mt: the number of messages thawed."""
        return self._each(["-Mt"], queue_ids, "is no longer frozen")

    def held_sasl_users(self):
        return read_held_sasl_users(self.sasl_map_path)

    def sasl_hold_not_live(self):
        """None when Exim runs SMTP mail's DATA through the watch's ACL (the one that reads the list), else what it
        runs instead: without it a listed user's mail still flows."""
        rc, out, err = self.run(["exim4", "-bP", "acl_smtp_data"])
        live = out.split("=", 1)[-1].strip() if rc == 0 else None
        if live == EXIM_DATA_ACL:
            return None
        return f"acl_smtp_data is {live!r}, not the watch's {EXIM_DATA_ACL}" if live is not None \
            else f"exim4 -bP acl_smtp_data failed: {(err or out).strip()}"

    def hold_sasl_user(self, user, queue_ids):
        users = self.held_sasl_users()
        if user not in users:
            write_exim_sasl_list(self.sasl_map_path, users + [user])  # read by every new message's DATA ACL
        return self.hold_queued(queue_ids)

    def release_sasl_user(self, user, queue_ids):
        users = self.held_sasl_users()
        if user in users:
            write_exim_sasl_list(self.sasl_map_path, [u for u in users if u != user])
        return self.release_queued(queue_ids)

    def _each(self, option, queue_ids, done):
        count = 0
        queue_ids = list(queue_ids)
        for start in range(0, len(queue_ids), self.BATCH):
            batch = queue_ids[start:start + self.BATCH]
            rc, out, err = self.run(["exim4"] + option + batch)
            said = out + err
            count += said.count(done)
            # exim's rc is 1 when one id is gone (delivered, purged) or already so: only a call that did nothing
            # at all, for another reason, is an error
            if rc != 0 and done not in said and not re.search(r"does not exist|already frozen|is not frozen", said):
                raise RuntimeError(f"exim4 {option[0]} failed: {said.strip()}")
        return count


MTA_TYPES = {mta.NAME: mta for mta in (Postfix, Exim)}


def resolve_mta(wanted, which=shutil.which):
    """postfix or exim: `wanted`, or with auto the one the host has (as the queue purge finds it)."""
    if wanted != "auto":
        return wanted
    try:
        return find_mta(which, "auto")[0]
    except MailQueueError as exc:
        raise watch_config.ConfigError(f"facets.mail.mta: auto found no MTA: {exc}") from None


def held_now(wanted="auto", which=shutil.which):
    """{uids, sasl_users} the MTA's hold map and list hold now (nothing where the host has neither MTA)."""
    try:
        mta = resolve_mta(wanted, which)
    except watch_config.ConfigError:
        return {"uids": [], "sasl_users": []}
    if mta == "exim":
        return {"uids": read_exim_list(Exim.HOLD_MAP), "sasl_users": read_held_sasl_users(Exim.SASL_HOLD_MAP)}
    return {"uids": read_held_uids(Postfix.HOLD_MAP), "sasl_users": read_held_sasl_users(Postfix.SASL_HOLD_MAP)}


def held_ids_path(state_dir, uid=None, sasl_user=None):
    if sasl_user is not None:
        return os.path.join(state_dir, f"held-sasl-{check_sasl_user(sasl_user)}.ids")
    return os.path.join(state_dir, f"held-uid-{int(uid)}.ids")


def held_queue_ids(state_dir, uid=None, sasl_user=None):
    """The ids of the messages the watch held for `uid` or `sasl_user` (some may be gone from the queue since)."""
    try:
        with open(held_ids_path(state_dir, uid, sasl_user), encoding="ascii") as stream:
            return sorted({line.strip() for line in stream if line.strip()})
    except FileNotFoundError:
        return []


def remember_held(state_dir, queue_ids, uid=None, sasl_user=None):
    """Add message ids to those a release lets go."""
    with open(held_ids_path(state_dir, uid, sasl_user), "a", encoding="ascii") as stream:
        stream.write("".join(f"{qid}\n" for qid in queue_ids))


def release(state_dir, map_path, uid, run, mta="postfix"):
    """Let a held uid's mail go: out of the MTA's hold map or list, its held messages back in the queue."""
    path = held_ids_path(state_dir, uid)
    queue_ids = held_queue_ids(state_dir, uid)
    kind = MTA_TYPES[mta](run, map_path)
    was_held = uid in kind.held_uids()
    released = kind.release_uid(uid, queue_ids)
    if os.path.exists(path):
        os.unlink(path)
    return {"uid": uid, "was_held": was_held, "released": released, "queue_ids": len(queue_ids)}


def release_sasl_user(state_dir, map_path, user, run, mta="postfix"):
    """Let a held SASL user's mail go: out of the MTA's SASL map or list, its held messages back in the queue."""
    path = held_ids_path(state_dir, sasl_user=user)
    queue_ids = held_queue_ids(state_dir, sasl_user=user)
    kind = MTA_TYPES[mta](run, sasl_map_path=map_path)
    was_held = user in kind.held_sasl_users()
    released = kind.release_sasl_user(user, queue_ids)
    if os.path.exists(path):
        os.unlink(path)
    return {"sasl_user": user, "was_held": was_held, "released": released, "queue_ids": len(queue_ids)}


def queued_ids_of(state_path, key):
    """The queue ids the watch's saved state says `key` (uid:N, sasl:USER) submitted and are not gone yet."""
    try:
        with open(state_path, encoding="utf-8") as stream:
            state = json.load(stream)
    except FileNotFoundError:
        return []
    owners = state.get("facets", {}).get("mail", {}).get("queue_ids", {})
    return [qid for qid, owner in owners.items() if owner == key]


def ids_to_hold(state_dir, user, state_file="state.json"):
    """The queued messages of SASL user `user` the watch saw and no hold has recorded yet: a second hold (or its
    check mode) finds nothing left to do."""
    already = set(held_queue_ids(state_dir, sasl_user=user))
    return [qid for qid in queued_ids_of(os.path.join(state_dir, state_file), f"sasl:{user}") if qid not in already]


def require_sasl_hold_live(kind):
    """RuntimeError naming what is live where the MTA `kind` does not read the watch's SASL map or list."""
    not_live = kind.sasl_hold_not_live()
    if not_live:
        raise RuntimeError(f"{kind.NAME} would not hold it: {not_live} (apply the role hostguard.hosting.watch "
                           f"with watch_mail_enabled first)")


def hold_sasl_user(state_dir, map_path, user, run, mta="postfix", state_file="state.json"):
    """Hold a SASL user by hand: into the MTA's SASL map or list, and its queued messages the watch saw held.

    Refused before any change where the MTA does not read that map or list (the watch role's mail facet is not
    applied): the user would be listed and its mail still flow."""
    kind = MTA_TYPES[mta](run, sasl_map_path=map_path)
    require_sasl_hold_live(kind)
    was_held = user in kind.held_sasl_users()
    queue_ids = ids_to_hold(state_dir, user, state_file)
    held = kind.hold_sasl_user(user, queue_ids)
    if queue_ids:
        remember_held(state_dir, queue_ids, sasl_user=user)
    return {"sasl_user": user, "was_held": was_held, "held": held, "queue_ids": len(queue_ids)}


class MailFacet(Facet):
    NAME = "mail"
    LOOKBACK = 3600
    INTERVAL = 60
    DEFAULTS = {
        "mta": "postfix",
        "per_hour": 200,
        "rate_factor": 5,
        "rate_floor": 50,
        "contain": "none",
        "hold_map": None,  # the MTA's own: Postfix's header_checks map, Exim's hold list
        "sasl_hold_map": None,  # the MTA's own: Postfix's check_sasl_access map, Exim's list of SASL users
        "exim_mainlog": Exim.MAINLOG,
    }

    @staticmethod
    def validate(settings, where):
        watch_config.check_choice(settings["mta"], f"{where}.mta", ("auto",) + tuple(MTA_TYPES))
        watch_config.check_integer(settings["per_hour"], f"{where}.per_hour", 1)
        watch_config.check_integer(settings["rate_factor"], f"{where}.rate_factor", 2)
        watch_config.check_integer(settings["rate_floor"], f"{where}.rate_floor", 1)
        watch_config.check_choice(settings["contain"], f"{where}.contain", ("none", "hold"))
        for name in ("hold_map", "sasl_hold_map"):
            if settings[name] is not None:
                watch_config.check_absolute_path(settings[name], f"{where}.{name}")
        watch_config.check_absolute_path(settings["exim_mainlog"], f"{where}.exim_mainlog")

    @staticmethod
    def check_host(settings, where):
        mta = MTA_TYPES[resolve_mta(settings["mta"])]
        directory = os.path.dirname(settings["hold_map"] or mta.HOLD_MAP)
        if mta.OWN_DIRECTORY:  # the watch's own directory, which the role makes after writing this file
            directory = os.path.dirname(directory)
        if settings["contain"] == "hold" and not os.path.isdir(directory):
            raise watch_config.ConfigError(f"{where}.hold_map: its directory {directory} does not exist")
        sasl_directory = os.path.dirname(settings["sasl_hold_map"] or mta.SASL_HOLD_MAP)
        if settings["contain"] == "hold" and not mta.OWN_DIRECTORY and not os.path.isdir(sasl_directory):
            raise watch_config.ConfigError(f"{where}.sasl_hold_map: its directory {sasl_directory} does not exist")

    def __init__(self, context):
        super(MailFacet, self).__init__(context)
        kind = resolve_mta(self.settings["mta"])
        if kind == "exim":
            self.mta = Exim(context.run, self.settings["hold_map"], self.settings["sasl_hold_map"],
                            self.settings["exim_mainlog"])
        else:
            self.mta = Postfix(context.run, self.settings["hold_map"], self.settings["sasl_hold_map"])
        state = context.state
        state.setdefault("sources", {})

    @property
    def queue_ids(self):
        """queue id -> source, oldest first (dicts keep insertion order), kept in the state across restarts.

        Looked up each time: the service loads the saved state after the facets are made.
        """
        return self.context.state.setdefault("queue_ids", {})

    def identifiers(self):
        return self.mta.identifiers()

    def log_files(self):
        return self.mta.log_files()

    # -- lines: the MTA's class reads them and says what they mean through the methods below -----------------
    def on_line(self, line):
        self.mta.on_line(line, self)

    def submitted(self, key, line, queue_id, **identity):
        """A message handed in by a source (a uid, a SASL user)."""
        self._count(key, line, queue_id, **identity)

    def script(self, queue_id, script):
        key = self.queue_ids.get(queue_id)
        script = script.strip()
        if key and script:
            scripts = self.context.state["sources"][key]["scripts"]
            scripts[script] = scripts.get(script, 0) + 1

    def held_at_submission(self, queue_id, **what):
        """The MTA held a message of a held uid or SASL user as it came in (remembered for the release)."""
        self._remember_held(what, [queue_id])
        seen = self.context.state.setdefault("held_at_submission", [])
        seen.append(queue_id)
        del seen[:-MAX_QUEUE_IDS]

    def removed(self, queue_id):
        self.queue_ids.pop(queue_id, None)

    def recipient(self, queue_id, address):
        self._recipient(queue_id, address)

    def _source(self, key, **identity):
        sources = self.context.state["sources"]
        source = sources.get(key)
        if source is None:
            source = sources[key] = {"minutes": {}, "scripts": {}, "domains": {}, "usual": 0.0, "hour": None}
            source.update(identity)
            if "uid" in identity:
                source["account"] = account_name(identity["uid"])
        for field in ("cwd", "command"):  # where the latest message came from (Exim's +arguments)
            if identity.get(field):
                source[field] = identity[field]
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
        for field in ("uid", "account", "sasl_user", "cwd", "command"):
            if source.get(field) is not None:
                evidence[field] = source[field]
        if top_scripts:
            evidence["script"] = top_scripts[0]
            evidence["scripts"] = top_scripts
        elif source.get("cwd"):
            evidence["script"] = source["cwd"]  # no PHP header: the directory the sending program ran in
        summary = f"{who} sent {count} messages in the last hour ({reason})"
        action = None
        if self.settings["contain"] == "hold" and ("uid" in source or "sasl_user" in source) and not source.get("held") \
                and now - source.get("hold_failed", 0) >= self.context.service.config["alerts"]["interval"]:
            action = self._hold(key, source, now)
        self.context.emit("mail_rate", key, summary, severity="critical", runbook=RUNBOOK, evidence=evidence,
                          action=action, when=now)

    @staticmethod
    def _who(source):
        if "uid" in source:
            name = source.get("account") or "an account with no passwd entry"
            script = max(source["scripts"], key=source["scripts"].get) if source["scripts"] else None
            where = f", script {script}," if script else (f", from {source['cwd']}," if source.get("cwd") else "")
            return f"account {name} (uid {source['uid']})" + where
        if "sasl_user" in source:
            return f"mailbox {source['sasl_user']} (SMTP AUTH)"
        return f"local user {source.get('account')} (no passwd entry)"

    def _hold(self, key, source, now):
        if self.context.service.learning_until is not None:
            return None  # reading the past at first start: nothing is contained for what already went out
        queue_ids = [qid for qid, owner in self.queue_ids.items() if owner == key]
        if "uid" in source:
            uid = source["uid"]
            what, who, name = {"uid": uid}, f"uid {uid}", f"mail from uid {uid} ({source.get('account') or uid})"
            undo = f"-e release_mail_uid={uid}"
        else:
            user = source["sasl_user"]
            what, who, name = {"sasl_user": user}, f"SASL user {user}", f"mail of SASL user {user}"
            undo = f"-e release_mail_sasl_user={user}"
        try:
            if "uid" in what:
                held = self.mta.hold_uid(what["uid"], queue_ids)
            else:
                held = self.mta.hold_sasl_user(check_sasl_user(what["sasl_user"]), queue_ids)
        except (OSError, RuntimeError, ValueError) as exc:
            # said once, with the alert; tried again after the alert interval, not on every message
            self.context.log(f"mail: could not hold {who}: {exc}")
            source["hold_failed"] = now
            return dict(what, done=f"nothing: holding {who} failed ({exc})", undo="nothing to undo",
                        kind="hold", failed=True)
        source["held"] = True
        self._remember_held(what, queue_ids)
        return dict(what, done=f"{name} is held: {held} queued message(s) put on hold, "
                               f"new mail from it held at submission",
                    undo=f"ansible-playbook hostguard.hosting.release_mail -e release_mail_hosts={self.context.host} "
                         + undo,
                    kind="hold", held=held)

    @staticmethod
    def _holder(source):
        """The uid or SASL user a held source is held as (what its file of held messages is named after)."""
        return {"uid": source["uid"]} if "uid" in source else {"sasl_user": source["sasl_user"]}

    def _hold_stragglers(self, source):
        """Hold what the account submitted between the decision and the MTA reading the map or list."""
        seen = set(self.context.state.get("held_at_submission", ()))
        stragglers = [qid for qid in source.pop("unheld") if qid not in seen]
        if stragglers:
            # a SASL user's messages held at submission are among them: holding them again changes nothing
            try:
                self.mta.hold_queued(stragglers)
            except (OSError, RuntimeError) as exc:
                self.context.log(f"mail: could not hold {source.get('sasl_user', source.get('uid'))}'s latest "
                                 f"messages: {exc}")
            self._remember_held(self._holder(source), stragglers)

    def _remember_held(self, what, queue_ids):
        remember_held(self.context.service.config["state_dir"], queue_ids, **what)

    # -- every minute ----------------------------------------------------------------------------------------
    def tick(self, now):
        held_uids = set(self.mta.held_uids())
        held_users = set(self.mta.held_sasl_users())
        sources = self.context.state["sources"]
        hour = int(now // 3600)
        for key in list(sources):
            source = sources[key]
            still_held = source.get("uid") in held_uids if "uid" in source else source.get("sasl_user") in held_users
            if source.get("held") and not still_held:
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

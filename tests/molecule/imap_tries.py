"""IMAP logins with one password, started one every INTERVAL seconds from the client namespace this runs in, until
a file appears.

    imap_tries.py HOST USER PASSWORD STOP_FILE INTERVAL

Prints one JSON list: for each try, when its LOGIN was sent and answered (the controller's clock) and the result
("ok", "refused" or "error ..."). A refused login is answered only after Dovecot's penalty for the address and
PAM's and Dovecot's failure delays (4 to 20 s), so each try runs in its own thread: a try waiting for its answer
never holds back the next one, and a LOGIN leaves every INTERVAL seconds.
"""

from __future__ import annotations

import imaplib
import json
import os
import ssl
import sys
import threading
import time


def main():
    host, user, password, stop, interval = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
    tries, lock = [], threading.Lock()

    def attempt():
        sent = time.time()
        try:
            imap = imaplib.IMAP4(host, 143, timeout=60)
            imap.starttls(ssl_context=ssl._create_unverified_context())  # the lab's certificate is self-signed
            sent = time.time()
            try:
                imap.login(user, password)
                result = "ok"
            except imaplib.IMAP4.error:
                result = "refused"
            try:
                imap.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
        except (OSError, imaplib.IMAP4.error) as error:
            result = "error %s" % type(error).__name__
        with lock:
            tries.append({"sent": sent, "answered": time.time(), "result": result})

    threads = []
    while not os.path.exists(stop):
        thread = threading.Thread(target=attempt)
        thread.start()
        threads.append(thread)
        time.sleep(interval)
    for thread in threads:
        thread.join()
    print(json.dumps(tries))


if __name__ == "__main__":
    main()

"""Log in to a lab host over IMAP (STARTTLS; the lab's certificate is self-signed): exit 0 when the login is
accepted, 1 when it is refused. Usage: imap_login.py HOST ACCOUNT PASSWORD"""

import imaplib
import ssl
import sys

imap = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
imap.starttls(ssl_context=ssl._create_unverified_context())
try:
    imap.login(sys.argv[2], sys.argv[3])
except imaplib.IMAP4.error as error:
    print(f"{sys.argv[2]}: login refused ({error})")
    sys.exit(1)
print(f"{sys.argv[2]}: login accepted")
imap.logout()

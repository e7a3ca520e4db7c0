"""Log in to a lab host over IMAP (STARTTLS on 143, or TLS on 993; the lab's certificate is self-signed): exit 0
when the login is accepted, 1 when it is refused. Usage: imap_login.py HOST ACCOUNT PASSWORD [PORT]"""

import imaplib
import ssl
import sys

host, account, password = sys.argv[1:4]
port = int(sys.argv[4]) if len(sys.argv) > 4 else 143
context = ssl._create_unverified_context()
if port == 993:
    imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=10)
else:
    imap = imaplib.IMAP4(host, port, timeout=10)
    imap.starttls(ssl_context=context)
try:
    imap.login(account, password)
except imaplib.IMAP4.error as error:
    print(f"{account}: login on port {port} refused ({error})")
    sys.exit(1)
print(f"{account}: login on port {port} accepted")
imap.logout()

"""Stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from a host that these machines cannot reach
(only the package registries are reachable). It runs the script inside each
virtualenv it creates, with get-pip.py's arguments; this does the same job:
pip from the interpreter's own ensurepip, then the requested versions from
the package index.
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip turns off pip's configuration files in its own
# environment, and the machine's pip configuration must apply to the install.
subprocess.check_call([sys.executable, "-m", "ensurepip"])
arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
subprocess.check_call([sys.executable, "-m", "pip", "install", *arguments])

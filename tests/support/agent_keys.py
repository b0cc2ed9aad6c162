#!/usr/bin/env python3
"""CURVE key pairs for the agents of the Python tests and scripts, as `engram agent create`
writes them: HOME/agents/NAME.cert and NAME.cert_secret, zcert files (czmq's zconfig text with a
`curve` section holding the Z85 keys), the files libengram's engram_connect reads.

Python 3 standard library only: the key pair is X25519 (RFC 7748, the Curve25519 that CurveZMQ
uses: public = secret * 9), written in Z85 (ZeroMQ RFC 32).

As a module:
    home()            a temporary ENGRAM_HOME for this process, made on first use, set in
                      os.environ (so every engram CLI run inherits it, and ENGRAM_SERVER_KEY is
                      dropped: clients pin the keys the tests' nodes publish), removed at exit
    make(name, home)  NAME's key pair in home (default: home()), made on first use of the name
As a script (for shell scripts):
    agent_keys.py HOME NAME...
"""
import atexit
import os
import secrets
import shutil
import sys
import tempfile

_P = 2**255 - 19
_A24 = 121665
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_home = None


def _x25519_base(secret):
    """secret * 9 on Curve25519 (RFC 7748, section 5), as libsodium's crypto_scalarmult_base."""
    k = bytearray(secret)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1, x2, z2, x3, z3, swap = 9, 1, 0, 9, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b, c, d = x2 + z2, x2 - z2, x3 + z3, x3 - z3
        aa, bb = a * a % _P, b * b % _P
        e = aa - bb
        da, cb = d * a % _P, c * b % _P
        x3, z3 = (da + cb) ** 2 % _P, x1 * (da - cb) ** 2 % _P
        x2, z2 = aa * bb % _P, e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def z85(data):
    """Z85 text of data (a multiple of 4 bytes)."""
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i:i + 4], "big")
        out.append("".join(_Z85[value // 85**n % 85] for n in range(4, -1, -1)))
    return "".join(out)


def keypair():
    """A new CURVE key pair: (public, secret), each 40 Z85 characters."""
    secret = secrets.token_bytes(32)
    return z85(_x25519_base(secret)), z85(secret)


def _cert(public, secret=None):
    lines = ["#   ZeroMQ CURVE " + ("**Secret** " if secret else "Public ") + "Certificate",
             "#   Written by engram's tests/support/agent_keys.py", "", "metadata", "curve",
             f'    public-key = "{public}"']
    if secret:
        lines.append(f'    secret-key = "{secret}"')
    return "\n".join(lines) + "\n"


def make(name, home_dir=None):
    """Makes sure agent `name` has a key pair in home_dir (default: home()); returns the path
    of its secret certificate."""
    home_dir = home_dir or home()
    agents = os.path.join(home_dir, "agents")
    os.makedirs(agents, exist_ok=True)
    path = os.path.join(agents, name + ".cert")
    if not os.path.exists(path + "_secret"):
        public, secret = keypair()
        with open(path, "w") as out:
            out.write(_cert(public))
        tmp = f"{path}_secret.{os.getpid()}"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(_cert(public, secret))
        os.rename(tmp, path + "_secret")  # whole, for a reader in another process
    return path + "_secret"


def home():
    """This process's temporary ENGRAM_HOME (see the module's comment)."""
    global _home
    if _home is None:
        _home = tempfile.mkdtemp(prefix="engram-home-")
        owner = os.getpid()
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(_home, True))
        os.environ["ENGRAM_HOME"] = _home
        os.environ.pop("ENGRAM_SERVER_KEY", None)
    return _home


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: agent_keys.py HOME NAME...")
    for agent in sys.argv[2:]:
        make(agent, sys.argv[1])

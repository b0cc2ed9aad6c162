"""engramd's settings as engramd itself lists them, for the tests of deploy/: the flags of
`engramd --help`, which of them are config keys, and their defaults.

A setting's default is what --help prints after its help, "(default: X)", for the settings that
node/daemon/config.c gives a default (.number or .text in s_settings). Others (--gossip, --join,
--admission) say in their help what happens when they are unset, in the same words, which is
why config.c is read for which settings have a default at all, and for which flags are config
keys (their .kind: the kinds from S_STRING on; --config, --restore and the switches are not).
"""
import re
import subprocess
from collections import namedtuple

# flag: "--max-batch"; value: "N", or None for a switch; help: the text after the flag and
# value, default included; default: the default as --help prints it, or None; key: the config
# key under `engram` ("max_batch"), or None for a flag that is not one
Setting = namedtuple("Setting", "flag value help default key")

# `  --max-batch N              requests a turn ... (default: 32)`: config.c pads the flag and
# its value to 26 columns and leaves at least one space more
_LINE = re.compile(r"^  (?:-\w, )?(--[a-z][a-z0-9-]*)(?: (\S+))?\s{2,}(\S.*)$")
_DEFAULT = re.compile(r" \(default: ([^()]*)\)$")


# config.c's kinds of the flags that are not config keys
_NOT_KEYS = {"S_EXIT", "S_SWITCH", "S_ONCE", "S_CONFIG"}


def _table(config_c):
    """The flags config.c's s_settings gives a default (.number or .text), and those that are
    config keys."""
    text = open(config_c, encoding="utf-8").read()
    table = text[text.index("s_settings[] = {"):]
    table = table[:table.index("\n};")]
    defaulted, keys = set(), set()
    for entry in table.split("{.flag = ")[1:]:
        flag = entry[1:entry.index('"', 1)]
        if ".number =" in entry or ".text =" in entry:
            defaulted.add(flag)
        kind = re.search(r"\.kind = (S_[A-Z_]+)", entry)
        if not kind:
            raise AssertionError(f"{config_c}: {flag} has no .kind")
        if kind.group(1) not in _NOT_KEYS:
            keys.add(flag)
    if not defaulted or not keys:
        raise AssertionError(f"{config_c}: no setting with a default, or no config key, found "
                             f"in s_settings")
    return defaulted, keys


def read(engramd, config_c):
    """engramd's settings in --help order, as a list of Setting. Raises AssertionError if a line
    of the help that names a flag cannot be read, so that a change of layout fails loudly."""
    out = subprocess.run([engramd, "--help"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"engramd --help: exit {out.returncode}: {out.stderr}")
    defaulted, keys = _table(config_c)
    settings = []
    for line in out.stdout.splitlines():
        if not line.startswith("  -"):
            continue
        m = _LINE.match(line)
        if not m:
            raise AssertionError(f"engramd --help: cannot read the line {line!r}")
        flag, value, text = m.groups()
        default = None
        if flag in defaulted:
            d = _DEFAULT.search(text)
            if not d:
                raise AssertionError(f"engramd --help: {flag} has a default in config.c but "
                                     f"its line shows none: {line!r}")
            default = d.group(1)
        key = flag[2:].replace("-", "_") if flag in keys else None
        settings.append(Setting(flag, value, text, default, key))
    missing = defaulted - {s.flag for s in settings}
    if missing:
        raise AssertionError(f"config.c gives {sorted(missing)} a default, engramd --help "
                             f"does not list them")
    return settings

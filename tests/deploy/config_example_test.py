#!/usr/bin/env python3
"""deploy/engram.cfg against engramd itself.

Usage: config_example_test.py ENGRAMD CONFIG_C ENGRAM_CFG

  - every config key engramd has (`engramd --help`: each flag with a value but --config) is in
    the file exactly once, as a `key = value` line commented out or not, and the file names no
    other key;
  - the comment right above each key starts with that setting's --help line, "--flag VALUE:
    help (default: X)", word for word;
  - the value shown is the default, for each setting config.c gives one;
  - engramd accepts the file as it is, and a copy with every key uncommented, so that each
    value shown (the examples of the settings without a default too) is one engramd takes:
    `engramd --config FILE --data TMP --identity` reads the whole file before it prints the
    identity, and exits 2 on a key or value it refuses. A copy with a key engramd does not
    know must then be refused with exit 2, or the check above proves nothing.
"""
import os
import re
import subprocess
import sys
import tempfile

import engramd_settings

ENGRAMD, CONFIG_C, CFG = sys.argv[1:4]
# `    #max_batch = 32` or `    max_batch = 32`: a key of the engram section
KEY_LINE = re.compile(r"^    (#?)([a-z][a-z0-9_]*) = (.*)$")


def fail(what):
    print(f"config_example_test: FAIL: {what}", file=sys.stderr)
    sys.exit(1)


def read_example(path):
    """{key: (value, comment)} of the file: value unquoted, comment the comment lines right
    above the key line joined by spaces (without their `#`)."""
    keys, comment = {}, []
    lines = open(path, encoding="utf-8").read().splitlines()
    if "engram" not in lines:
        fail(f"{path}: no `engram` section line")
    for number, line in enumerate(lines, 1):
        m = KEY_LINE.match(line)
        if m:
            _, key, value = m.groups()
            if key in keys:
                fail(f"{path}:{number}: {key} is there twice")
            keys[key] = (value.strip('"'), " ".join(comment))
            comment = []
        elif line.startswith("    # "):
            comment.append(line[len("    # "):].strip())
        else:
            comment = []
    return keys


def identity(config, data):
    return subprocess.run([ENGRAMD, "--config", config, "--data", data, "--identity"],
                          capture_output=True, text=True, timeout=30)


def main():
    settings = [s for s in engramd_settings.read(ENGRAMD, CONFIG_C) if s.key]
    if len(settings) < 10:
        fail(f"engramd --help lists only {len(settings)} config keys: cannot be read right")
    example = read_example(CFG)
    wanted = {s.key for s in settings}
    if wanted - example.keys():
        fail(f"{CFG} lacks the settings {sorted(wanted - example.keys())}")
    if example.keys() - wanted:
        fail(f"{CFG} names keys engramd does not have: {sorted(example.keys() - wanted)}")
    for s in settings:
        value, comment = example[s.key]
        help_line = f"{s.flag} {s.value}: {s.help}"
        if not comment.startswith(help_line):
            fail(f"{CFG}: the comment above {s.key} is not its --help line\n"
                 f"  want: {help_line}\n  have: {comment}")
        if s.default is not None and value != s.default:
            fail(f"{CFG}: {s.key} shows {value!r}, its default is {s.default!r}")

    with tempfile.TemporaryDirectory(prefix="engram-cfg-") as tmp:
        data = os.path.join(tmp, "data")
        out = identity(CFG, data)
        if out.returncode != 0:
            fail(f"engramd refuses {CFG} (exit {out.returncode}): {out.stderr}")
        text = open(CFG, encoding="utf-8").read()
        every = os.path.join(tmp, "every.cfg")
        with open(every, "w", encoding="utf-8") as f:
            f.write(re.sub(r"(?m)^    #([a-z][a-z0-9_]* = )", r"    \1", text))
        if len(read_example(every)) != len(example) or any(
                line.startswith("    #") and KEY_LINE.match(line)
                for line in open(every, encoding="utf-8")):
            fail("uncommenting every key did not work")
        out = identity(every, data)
        if out.returncode != 0:
            fail(f"engramd refuses {CFG} with every key uncommented (exit {out.returncode}): "
                 f"{out.stderr}")
        unknown = os.path.join(tmp, "unknown.cfg")
        with open(unknown, "w", encoding="utf-8") as f:
            f.write(text.replace("    #max_batch = ", "    max_bacth = "))
        out = identity(unknown, data)
        if out.returncode != 2 or "max_bacth" not in out.stderr:
            fail(f"engramd took a config file with an unknown key (exit {out.returncode}): the "
                 f"checks of acceptance above prove nothing\n{out.stderr}")
    print(f"config_example_test: {len(settings)} settings, each with its help and default; "
          "engramd accepts the file, commented and uncommented")


main()

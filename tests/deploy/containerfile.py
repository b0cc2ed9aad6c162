"""What the tests of deploy/ read in deploy/container/Containerfile: its instructions by stage,
and the packages its apt-get lines install."""
import json
import re
from collections import namedtuple

# stage: 0 for the first FROM; name: FROM, RUN, ...; args: the rest of the line, continuations
# joined
Instruction = namedtuple("Instruction", "stage name args")


def read(path):
    """The instructions of the file, comments left out and continued lines joined."""
    instructions, stage, pending = [], -1, ""
    for line in open(path, encoding="utf-8"):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = " ".join((pending + stripped).split())
        pending = ""
        name, _, args = whole.partition(" ")
        if name.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, name.upper(), args))
    if pending:
        raise AssertionError(f"{path}: ends in a continued line")
    return instructions


def packages(instructions, stage):
    """The packages the apt-get install commands of one stage's RUN lines install."""
    found = []
    for i in instructions:
        if i.stage != stage or i.name != "RUN":
            continue
        for command in re.split(r"&&|;", i.args):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                found += [w for w in words[2:] if not w.startswith("-")]
    return found


def exec_form(instruction):
    """The JSON array of an ENTRYPOINT or CMD in exec form."""
    value = json.loads(instruction.args)
    if not isinstance(value, list):
        raise AssertionError(f"{instruction.name} is not in exec form: {instruction.args}")
    return value

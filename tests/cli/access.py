"""What the multi-process Python tests share about access control (node/trust/acl.h): every node
needs a trust root and every agent a registration and grants before it reads or writes. The tests
give them as an operator does, with the engram CLI and an admin's $ENGRAM_HOME of their own (never
the user's ~/.engram):

    admin = Admin(ENGRAM, home)                    # the CLI, and the admin's $ENGRAM_HOME
    admin.init(data, "tester", "alice")            # a lone node's trust root, before it starts
    ids = admin.grant(socket, "tester", resources=[("run:*", "read,write")], register=False)
    admin.grant(socket, "w", users=["u"], resources=[("run:watched", "read")])
    admin.wait_held(other_socket, ids)             # a cluster: the statements reached that node

A cluster's trust root is its nodes' admission cards (deploy/local-cluster.sh makes them), whose
admin key is $ENGRAM_HOME/admin.key of the cluster's home: grants go through one node and spread.
"""
import json
import os
import subprocess

from polling import eventually


class Admin:
    """The admin of the tests' nodes: the engram CLI at cli, run with ENGRAM_HOME=home (the admin
    key, the agents' key pairs) on the environment env (default: this process's)."""

    def __init__(self, cli, home, env=None):
        self.cli = cli
        self.home = home
        self.base = dict(os.environ if env is None else env)

    def env(self, socket=None, agent=None, user=None):
        """The environment of an engram run: this home, and the node's key from beside its
        socket (ENGRAM_SERVER_KEY dropped)."""
        env = dict(self.base, ENGRAM_HOME=self.home)
        env.pop("ENGRAM_SERVER_KEY", None)
        for name, value in (("SOCKET", socket), ("AGENT", agent), ("USER", user)):
            if value is not None:
                env["ENGRAM_" + name] = value
        return env

    def run(self, *args, socket=None, agent=None, user=None, stdin=None, timeout=60):
        """engram ARGS: the finished process, whatever its exit status."""
        return subprocess.run([self.cli, *args], env=self.env(socket, agent, user), input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args, socket=None):
        """engram ARGS, which must succeed: its stdout."""
        r = self.run(*args, socket=socket)
        if r.returncode != 0:
            raise RuntimeError(f"engram {' '.join(args)}: exit {r.returncode}: {r.stderr}")
        return r.stdout

    def init(self, data, agent, user):
        """`engram init`: the trust root of the lone node of data, and agent registered and
        acting for user from the node's start. Returns init's --json document."""
        return json.loads(self.ok("--json", "init", "--data", data, "--agent", agent,
                                  "--user", user))

    def grant(self, socket, agent, users=(), resources=(), register=True):
        """Through the node at socket: registers agent (unless register is false, as for the
        agent of init), lets it act for each of users and access each (resource, access) of
        resources ("read", "write" or "read,write"). Returns the statements' ids."""
        ids = []
        if register:
            ids.append(json.loads(self.ok("--json", "agent", "create", agent,
                                          socket=socket))["statement"])
        ids += [self.ok("acl", "allow-user", user, agent, socket=socket).strip()
                for user in users]
        ids += [self.ok("acl", "allow", agent, resource, access, socket=socket).strip()
                for resource, access in resources]
        return ids

    def held(self, socket, ids):
        """Whether the node at socket holds every statement of ids, valid now."""
        r = self.run("--json", "acl", "show", socket=socket)
        if r.returncode != 0:
            return False
        valid = {s["id"] for s in json.loads(r.stdout)["statements"] if s["valid"]}
        return valid >= set(ids)

    def wait_held(self, socket, ids, timeout=60):
        eventually(lambda: self.held(socket, ids), f"the statements reach {socket}", timeout)

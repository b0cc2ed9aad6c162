#!/usr/bin/env python3
"""The cluster administration commands end to end (issue 4): `engram cluster init`,
`engram node admit`, `engramd --identity`, `deploy/local-cluster.sh N DIR | stop | restart`,
`engram cluster status` (human and --json, the same facts), `engram cluster join HOST:PORT`,
`engram cluster remove NODE` and `put --replicas N`, with their refusals and exit statuses
(0 ok, 2 usage, 3 not found, 4 refused, 5 unavailable; a removed node's shared writes are
refused as denied, 6).

Access control is on: the cluster's admin (ENGRAM_HOME=DIR/home, which local-cluster.sh makes)
runs the cluster commands, and registers agent tester for alice, with run:cli, through node 1
(tests/cli/access.py) once the cluster is up; the tests wait until every node holds those
statements.

Usage: cluster_cli_test.py ENGRAMD ENGRAM LOCAL_CLUSTER_SH. Ports are drawn at random.
"""
import json
import os
import shutil
import subprocess
import sys
import unittest
import urllib.request

import local_cluster
from access import Admin
from polling import eventually

ENGRAMD, ENGRAM, LOCAL_CLUSTER = sys.argv[1], sys.argv[2], sys.argv[3]
BIN = os.path.dirname(ENGRAMD)
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1"]


class ClusterCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cluster = local_cluster.start(LOCAL_CLUSTER, BIN, 2, "engram-ccli-",
                                      offsets=(10, 11, 12, 20, 21, 22, 80, 81, 90, 91))
        cls.dir, cls.base = cluster.dir, cluster.base
        env, out_lines = cluster.env, cluster.stdout
        cls.home = os.path.join(cls.dir, "home")
        cls.env = env
        cls.lines = out_lines.strip().splitlines()
        cls.extra = None
        try:
            cls.admin = Admin(ENGRAM, cls.home)
            cls.tester = [("run:cli", "read,write")]
            ids = cls.admin.grant(cls.api(1), "tester", ["alice"], cls.tester)
            for i in (1, 2):
                cls.admin.wait_held(cls.api(i), ids)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        subprocess.run([LOCAL_CLUSTER, "stop", cls.dir], env=cls.env, timeout=120)
        if cls.extra and cls.extra.poll() is None:
            cls.extra.kill()
            cls.extra.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def api(cls, i):
        return f"ipc://{cls.dir}/n{i}/api.sock"

    def engram(self, *args, home=None, socket=None):
        """engram ARGS as agent tester for alice, or as the admin for the admin's commands, with
        the cluster's home (or home)."""
        return Admin(ENGRAM, home or self.home).run(*args, socket=socket, agent="tester",
                                                    user="alice")

    def status(self, i):
        out = self.engram("--json", "cluster", "status", socket=self.api(i))
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_1_local_cluster_lines(self):
        self.assertEqual(len(self.lines), 2)
        for i, line in enumerate(self.lines, 1):
            fields = dict(f.split("=", 1) for f in line.split())
            self.assertEqual(fields["node"], str(i))
            self.assertEqual(fields["api"], self.api(i))
            self.assertEqual(fields["gossip"], f"tcp://127.0.0.1:{self.base + 10 * i}")
            self.assertTrue(os.path.exists(f"/proc/{fields['pid']}"))

    def test_2_init_and_admit_refusals(self):
        again = self.engram("cluster", "init")
        self.assertEqual(again.returncode, 4)
        self.assertIn("never overwritten", again.stderr)
        bad_key = self.engram("node", "admit", "00ff", "--out", os.path.join(self.dir, "x"))
        self.assertEqual(bad_key.returncode, 4)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "x")))
        no_out = self.engram("node", "admit", "ab" * 32)
        self.assertEqual(no_out.returncode, 4)
        no_home = self.engram("node", "admit", "ab" * 32, "--out", os.path.join(self.dir, "y"),
                              home=os.path.join(self.dir, "nowhere"))
        self.assertEqual(no_home.returncode, 3)
        self.assertIn("engram cluster init", no_home.stderr)

    def test_3_status_human_and_json_agree(self):
        eventually(lambda: all(m["state"] in ("self", "alive") for m in
                               self.status(1)["members"]) and len(self.status(1)["members"]) == 2,
                   "both members alive")
        out = self.engram("put", "run:cli", "k", "v", socket=self.api(1))
        self.assertEqual(out.returncode, 0, out.stderr)
        def settled():
            d = self.status(1)
            if not d["scopes"] or any(m["lag_ops"] != 0 for m in d["members"]
                                      if m["state"] == "alive"):
                return None
            return d

        # Membership may still move between two calls (a member first heard of through an
        # introduction is known at incarnation 0 until its own word arrives): compare the human
        # form with a JSON document taken before and after it that agree with each other.
        def snapshot():
            before = eventually(settled, "no lag")
            human = self.engram("cluster", "status", socket=self.api(1))
            self.assertEqual(human.returncode, 0, human.stderr)
            after = self.status(1)
            facts = lambda d: ([(m["node"], m["state"], m["incarnation"], m["endpoint"])
                                for m in d["members"]],
                               [(sc["scope"], sc["ops"], sc["garbage"], sc["vector"])
                                for sc in d["scopes"]], d["gossip"]["bad_messages"],
                               d["gossip"]["local_health"], d["gossip"]["acks_sent"],
                               d["gossip"]["acks_deferred"])
            return (before, human) if facts(before) == facts(after) else None

        doc, human = eventually(snapshot, "a status that holds still")
        # node ids in one form: stats and cluster status name this node alike
        stats = self.engram("--json", "stats", socket=self.api(1))
        self.assertEqual(json.loads(stats.stdout)["node_id"], doc["node"])
        self.assertIn(f"cluster {doc['cluster']}, node {doc['node']} at {doc['endpoint']}",
                      human.stdout)
        # the node's status page (local-cluster.sh gives node I --metrics on base + 10 I + 2),
        # in both forms, and it answers there
        page = f"http://127.0.0.1:{self.base + 12}/"
        self.assertEqual(doc["status_page"], page)
        self.assertIn(f"\nstatus page: {page}\n", human.stdout)
        with urllib.request.urlopen(page, timeout=10) as answer:
            self.assertIn(b"<title>", answer.read())
        for m in doc["members"]:
            self.assertIn(f"{m['node']} {m['state']:<7} incarnation {m['incarnation']} "
                          f"{m['endpoint']}", human.stdout)
        for sc in doc["scopes"]:
            self.assertIn(f"{sc['scope']} ops {sc['ops']} garbage {sc['garbage']} "
                          f"vector {sc['vector']}", human.stdout)
        self.assertIn(f"bad messages {doc['gossip']['bad_messages']}, "
                      f"local health {doc['gossip']['local_health']}", human.stdout)
        self.assertIn(f"acks sent {doc['gossip']['acks_sent']} "
                      f"({doc['gossip']['acks_deferred']} at the tick)", human.stdout)

    def test_4_join_remove_and_replicas(self):
        # a third node started alone, admitted by the admin, then joined with the CLI
        data = os.path.join(self.dir, "n9", "data")
        ident = subprocess.run([ENGRAMD, "--data", data, "--identity"], capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(ident.returncode, 0, ident.stderr)
        fields = dict(f.split("=", 1) for f in ident.stdout.split())
        card = os.path.join(self.dir, "n9", "admission")
        admit = self.engram("node", "admit", fields["key"], "--out", card)
        self.assertEqual(admit.returncode, 0, admit.stderr)
        self.assertEqual(admit.stdout.strip(), f"node={fields['node']} card={card}")
        api = f"ipc://{self.dir}/n9/api.sock"
        with open(os.path.join(self.dir, "n9", "engramd.log"), "ab") as log:
            type(self).extra = subprocess.Popen(
                [ENGRAMD, "--data", data, "--api", api, "--admission", card, "--gossip",
                 f"tcp://127.0.0.1:{self.base + 90}", "--gossip-interval-ms", "100"],
                stdout=log, stderr=log)
        # the admin's key is good on node 9 from the start (the root of its access control);
        # tester is registered there, alone, as on the others: these statements spread from
        # node 9 once it joins
        eventually(lambda: self.engram("cluster", "status", socket=api).returncode == 0,
                   "node 9 serves")
        self.admin.grant(api, "tester", ["alice"], self.tester)
        alone = self.engram("put", "run:cli", "r", "v", "--replicas", "3", socket=api)
        # alone: no other node could ever hold it, so it is refused at once
        self.assertEqual(alone.returncode, 4, alone.stderr)
        self.assertIn("replicas", alone.stderr)
        # a private scope never leaves its node: more than one replica is refused at once,
        # not waited for until the timeout
        private = self.engram("put", "private", "p", "v", "--replicas", "2", "--timeout",
                              "60000", socket=self.api(1))
        self.assertEqual(private.returncode, 4, private.stderr)
        self.assertIn("private scope", private.stderr)
        bad = self.engram("cluster", "join", "not-an-endpoint", socket=api)
        self.assertEqual(bad.returncode, 4)
        # endpoints the node took before (and tried to reach for ever): refused, saying why,
        # never echoing more than a bounded, escaped quote of what was given
        for endpoint, why in (("tcp://:1", "the host is empty"),
                              ("tcp://x:0", "the port must be a number from 1 to 65535"),
                              ("tcp://x:65536", "the port must be a number from 1 to 65535"),
                              ("tcp://x:1x", "the port must be a number from 1 to 65535"),
                              ("tcp://" + "h" * 5000 + ":1", "longer than 253 bytes"),
                              ("tcp://bad_host:1", "neither a DNS name nor an IP address"),
                              ("tcp://-x.y:1", "neither a DNS name nor an IP address"),
                              ("tcp://999.1.1.1:1", "not an IPv4 address"),
                              ("tcp://[::g]:1", "not an IPv6 address"),
                              ("udp://x:1", "the transport must be tcp://")):
            refused = self.engram("cluster", "join", endpoint, socket=api)
            self.assertEqual(refused.returncode, 4, endpoint[:40])
            self.assertIn(why, refused.stderr)
            self.assertLess(len(refused.stderr), 400)
        join = self.engram("cluster", "join", f"127.0.0.1:{self.base + 10}", socket=api)
        self.assertEqual(join.returncode, 0, join.stderr)
        eventually(lambda: any(m["node"] == fields["node"] and m["state"] == "alive"
                               for m in self.status(2)["members"]), "node 9 alive on node 2")
        put = self.engram("put", "run:cli", "three", "v", "--replicas", "3", "--timeout",
                          "10000", socket=self.api(1))
        self.assertEqual(put.returncode, 0, put.stderr)
        # decommission: refused for a malformed id, then done for good
        self.assertEqual(self.engram("cluster", "remove", "xyz", socket=self.api(1)).returncode,
                         4)
        remove = self.engram("cluster", "remove", fields["node"], socket=self.api(1))
        self.assertEqual(remove.returncode, 0, remove.stderr)
        self.assertEqual(remove.stdout.strip(), f"removed {fields['node']}")
        eventually(lambda: any(m["node"] == fields["node"] and m["state"] == "left"
                               for m in self.status(2)["members"]), "node 9 left on node 2")
        refused = eventually(lambda: (lambda o: o if o.returncode == 6 else None)(
            self.engram("put", "run:cli", "after", "v", socket=api)),
            "node 9 refuses shared writes")
        self.assertIn("removed", refused.stderr)

    def test_5_restart_prints_the_line_anew(self):
        out = subprocess.run([LOCAL_CLUSTER, "restart", self.dir, "2"], env=self.env,
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        fields = dict(f.split("=", 1) for f in out.stdout.split())
        self.assertEqual(fields["node"], "2")
        got = eventually(lambda: (lambda o: o if o.returncode == 0 else None)(
            self.engram("get", "run:cli", "k", socket=self.api(2))), "node 2 serves its data")
        self.assertEqual(got.stdout.strip(), "v")


    def test_6_bad_cluster_flags(self):
        data = os.path.join(self.dir, "bad", "data")
        def engramd(*flags):
            return subprocess.run([ENGRAMD, "--data", data, "--api",
                                   f"ipc://{self.dir}/bad.sock", *flags],
                                  capture_output=True, text=True, timeout=60)
        no_gossip = engramd("--join", "127.0.0.1:1")
        self.assertEqual(no_gossip.returncode, 2)
        self.assertIn("need --gossip", no_gossip.stderr)
        # a trust root (the cluster's admin): what it lacks is its card
        self.admin.init(data, "tester", "alice")
        no_card = engramd("--gossip", f"tcp://127.0.0.1:{self.base + 80}")
        self.assertEqual(no_card.returncode, 1)
        self.assertIn("engram node admit", no_card.stdout + no_card.stderr)
        self.assertNotIn("no trust root", no_card.stdout + no_card.stderr)
        card = os.path.join(self.dir, "n1", "admission")  # another node's card
        wildcard = engramd("--gossip", "tcp://*:7000", "--admission", card)
        self.assertEqual(wildcard.returncode, 1)
        self.assertIn("admits another node's key", wildcard.stdout + wildcard.stderr)
        ident = subprocess.run([ENGRAMD, "--data", data, "--identity"], capture_output=True,
                               text=True, timeout=60)
        key = dict(f.split("=", 1) for f in ident.stdout.split())["key"]
        own = os.path.join(self.dir, "bad", "admission")
        self.assertEqual(self.engram("node", "admit", key, "--out", own).returncode, 0)
        wildcard = engramd("--gossip", "tcp://*:7000", "--admission", own)
        self.assertEqual(wildcard.returncode, 1)
        self.assertIn("concrete host and port", wildcard.stdout + wildcard.stderr)

    def test_7_clock_stepped_back_cannot_lower_the_incarnation(self):
        # A restarted node starts at its start time in ms, but never below the incarnation its
        # last run reached (DATA/members): a clock stepped back a day would otherwise start it
        # below what its peers hold, and they would ignore it until it refuted.
        faketime = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
        if not faketime:
            self.skipTest("libfaketime is not installed (deploy/install-deps.sh installs it)")
        own = lambda: next(m for m in self.status(2)["members"] if m["state"] == "self")
        # whether node 2 serves, asked as the admin: with its clock a day back, the statements
        # that registered tester today are not valid yet there (the root admin's key is, always)
        serves = lambda: (self.engram("cluster", "status", socket=self.api(2)).returncode == 0
                          and own())
        before = eventually(serves, "node 2 serves")
        env = dict(self.env, LD_PRELOAD=faketime, FAKETIME="-1d",
                   FAKETIME_DONT_FAKE_MONOTONIC="1",
                   ASAN_OPTIONS=":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                       "verify_asan_link_order=0"])))
        out = subprocess.run([LOCAL_CLUSTER, "restart", self.dir, "2"], env=env,
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        after = eventually(serves, "node 2 serves again")
        self.assertGreater(after["incarnation"], before["incarnation"])
        self.assertLess(after["incarnation"], before["incarnation"] + 3600 * 1000)
        eventually(lambda: any(m["node"] == after["node"] and m["state"] == "alive" and
                               m["incarnation"] >= after["incarnation"]
                               for m in self.status(1)["members"]),
                   "node 1 sees node 2 back at its new incarnation")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)

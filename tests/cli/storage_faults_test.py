#!/usr/bin/env python3
"""engramd on a full and on a read-only data volume, on one whose write-ahead log stops
syncing (EIO from fdatasync, through jepsen/slowwal.c preloaded), and on one whose log refuses
a write (EIO from write: engramd stops, and recovers on restart): every write gets a clear
error (exit 1, "no space" / storage message), every acknowledged write stays readable, reads
and stats keep working, and the process keeps serving (but for the refused log write).

Usage: storage_faults_test.py ENGRAMD ENGRAM SLOWWAL_LIB. Needs root (it mounts small tmpfs
volumes); exits 77 (skipped) otherwise.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from access import Admin
from tmpfs import can_mount

ENGRAMD, ENGRAM, SLOWWAL = sys.argv[1], sys.argv[2], sys.argv[3]
SKIP = 77


class Volume:
    """A tmpfs of `size` mounted on a fresh directory, with engramd's data on it, set up by
    `engram init` for agent t acting for user u, which may read and write run:faults."""

    def __init__(self, size, *flags, env=None):
        self.flags = flags
        self.env = env
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="engram-faults-")
        self.admin = Admin(ENGRAM, os.path.join(self.dir, "home"))
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", self.mnt],
                       check=True)
        self.socket = f"ipc://{self.dir}/engram.sock"
        try:
            self.admin.init(os.path.join(self.mnt, "data"), "t", "u")
            self.start()
            self.admin.grant(self.socket, "t", resources=[("run:faults", "read,write")],
                             register=False)
        except BaseException:
            self.close()
            raise

    def start(self):
        with open(os.path.join(self.dir, "engramd.log"), "ab") as log:
            self.proc = subprocess.Popen([ENGRAMD, "--data", os.path.join(self.mnt, "data"),
                                          "--api", self.socket, *self.flags],
                                         stdout=log, stderr=log, env=self.env)
        for _ in range(100):
            if self.cli("stats").returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("engramd did not start")

    def cli(self, *args, stdin=None):
        return self.admin.run(*args, socket=self.socket, agent="t", user="u", stdin=stdin,
                              timeout=30)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "-l", self.mnt])
        shutil.rmtree(self.dir, ignore_errors=True)


class StorageFaultsTest(unittest.TestCase):
    def check_still_serving(self, vol, acked):
        self.assertIsNone(vol.proc.poll(), "engramd must keep running")
        self.assertEqual(vol.cli("stats").returncode, 0)
        for key, value in acked.items():
            r = vol.cli("get", "run:faults", key)
            self.assertEqual(r.returncode, 0, f"acknowledged {key} lost: {r.stderr}")
            self.assertEqual(r.stdout, value + "\n", f"{key} changed")

    def check_recovered(self, vol, acked, refused=None):
        """Restarts vol's engramd on a healthy device (no preload): recovered from the WAL, what
        was acknowledged is there, `refused` (a write never answered) is not, writes resume."""
        vol.env = None
        vol.start()
        self.check_still_serving(vol, acked)
        if refused:
            self.assertEqual(vol.cli("get", "run:faults", refused).returncode, 3,
                             f"{refused}, refused by the log, must not come back")
        self.assertEqual(vol.cli("put", "run:faults", "after", "v").returncode, 0)
        self.check_still_serving(vol, dict(acked, after="v"))

    def test_full_volume(self):
        vol = Volume("48m", "--min-free-bytes", str(16 << 20))
        try:
            acked = {"small": "keep me"}
            self.assertEqual(vol.cli("put", "run:faults", "small", "keep me").returncode, 0)
            with open(os.path.join(vol.mnt, "ballast"), "wb") as ballast:
                ballast.write(b"\0" * (12 << 20))
            big = "x" * (512 * 1024)
            failure = None
            for i in range(200):
                r = vol.cli("put", "run:faults", f"big{i}", "-", stdin=big)
                if r.returncode != 0:
                    failure = r
                    break
                acked[f"big{i}"] = big
            self.assertIsNotNone(failure, "the volume never filled up")
            self.assertEqual(failure.returncode, 1, failure.stderr)
            self.assertRegex(failure.stderr, r"^engram: no space left on the data volume")
            self.check_still_serving(vol, acked)
            r = vol.cli("put", "run:faults", "after", "v")
            self.assertEqual(r.returncode, 1, "a write on a full volume must fail cleanly")
            self.check_still_serving(vol, acked)
            # Space freed (the ballast of another tenant goes): writes resume. engramd measures
            # the free space at most every ENGRAM_FREE_SPACE_CHECK_MS (100 ms), so the first
            # writes after the removal may still be refused; they must succeed soon after.
            os.remove(os.path.join(vol.mnt, "ballast"))
            deadline = time.monotonic() + 30
            while True:
                r = vol.cli("put", "run:faults", "after", "v")
                if r.returncode == 0 or time.monotonic() > deadline:
                    break
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertRegex(r.stderr, r"^engram: no space left on the data volume")
                time.sleep(0.05)
            self.assertEqual(r.returncode, 0, f"writes did not resume after space was freed: "
                                              f"{r.stderr}")
            acked["after"] = "v"
            self.check_still_serving(vol, acked)
        finally:
            vol.close()

    def test_read_only_volume(self):
        vol = Volume("64m", "--min-free-bytes", str(1 << 20))
        try:
            acked = {"before": "written before the volume went read-only"}
            self.assertEqual(vol.cli("put", "run:faults", "before", acked["before"]).returncode, 0)
            self.assertEqual(vol.stop(), 0)
            subprocess.run(["mount", "-o", "remount,ro", vol.mnt], check=True)
            vol.start()  # on a read-only directory it serves reads and refuses writes
            r = vol.cli("put", "run:faults", "after", "v")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertRegex(r.stderr, r"^engram: the data directory is read-only")
            self.check_still_serving(vol, acked)
            self.assertEqual(vol.cli("get", "run:faults", "after").returncode, 3,
                             "a refused write must not be visible")
        finally:
            vol.close()

    def test_failed_sync(self):
        trigger = tempfile.mktemp(prefix="engram-failsync-")
        env = dict(os.environ, LD_PRELOAD=SLOWWAL, ENGRAM_FAILSYNC_TRIGGER=trigger,
                   # an ASan build wants its runtime first in the list; LD_PRELOAD puts this
                   # library before it
                   ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
        # the HTTP listener (/readyz, /api/status) on a port of its choosing, read from the log
        vol = Volume("64m", "--min-free-bytes", str(1 << 20), "--metrics", "127.0.0.1:0",
                     env=env)
        try:
            with open(os.path.join(vol.dir, "engramd.log")) as log:
                url = re.search(r"metrics and status page on (http://\S+/)", log.read()).group(1)
            acked = {"before": "synced before the device failed"}
            self.assertEqual(vol.cli("put", "run:faults", "before", acked["before"]).returncode, 0)
            open(trigger, "w").close()
            r = vol.cli("put", "run:faults", "during", "v")
            self.assertEqual(r.returncode, 1, "a write whose sync failed must not be acknowledged")
            self.assertRegex(r.stderr, r"^engram: .*storage")
            # its outcome is unknown, as a timeout's, and the error says so: its bytes reached
            # the log unsynced, so it may be read, now or after the restart
            self.assertIn("whether it is kept is unknown", r.stderr)
            self.check_still_serving(vol, acked)
            with urllib.request.urlopen(url + "api/status", timeout=10) as page:
                self.assertRegex(json.load(page)["node"]["storage"], r"^failed: ")
            with self.assertRaises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + "readyz", timeout=10)
            self.assertEqual(refused.exception.code, 503)
            self.assertFalse(json.load(refused.exception)["checks"]["store_writable"])
            # The device is healthy again, but the node latched the error (RocksDB cannot resume
            # a log that failed, node/store/store.h): writes stay refused until a restart, and
            # nothing is acknowledged meanwhile.
            os.remove(trigger)
            r = vol.cli("put", "run:faults", "later", "v")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.check_still_serving(vol, acked)
            self.assertEqual(vol.stop(), 0, "a failed store must still stop cleanly")
            self.check_recovered(vol, acked)
        finally:
            if os.path.exists(trigger):
                os.remove(trigger)
            vol.close()

    def test_failed_wal_write(self):
        """The log refuses a turn's bytes (EIO from write(2), slowwal.c's write trigger): the
        write is in the memtable but not in the log, so engramd stops before anything about
        it leaves (node_store_write_out) and the restart recovers what the log holds: the
        write is gone and was never answered, the earlier ones are there, writes resume."""
        trigger = tempfile.mktemp(prefix="engram-failwrite-")
        env = dict(os.environ, LD_PRELOAD=SLOWWAL, ENGRAM_FAILWRITE_TRIGGER=trigger,
                   ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
        vol = Volume("64m", "--min-free-bytes", str(1 << 20), env=env)
        try:
            acked = {"before": "in the log before it failed"}
            self.assertEqual(vol.cli("put", "run:faults", "before", acked["before"]).returncode, 0)
            open(trigger, "w").close()
            r = vol.cli("--timeout", "5000", "put", "run:faults", "during", "v")
            self.assertNotEqual(r.returncode, 0, "a write the log refused must not be answered")
            self.assertNotEqual(vol.proc.wait(timeout=30), 0)
            with open(os.path.join(vol.dir, "engramd.log"), errors="replace") as log:
                self.assertIn("cannot write the write-ahead log", log.read())
            os.remove(trigger)
            self.check_recovered(vol, acked, refused="during")
        finally:
            if os.path.exists(trigger):
                os.remove(trigger)
            vol.close()


if __name__ == "__main__":
    if not can_mount():
        print("storage_faults_test: needs root and tmpfs mounts; skipped")
        sys.exit(SKIP)
    unittest.main(argv=[sys.argv[0], "-v"])

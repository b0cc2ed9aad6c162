"""Whether this process may mount tmpfs volumes (root, and a kernel that lets it): the tests
that put engramd's data on a small, full or read-only volume need it, and skip without it."""
import os
import subprocess
import tempfile


def can_mount():
    if os.geteuid() != 0:
        return False
    probe = tempfile.mkdtemp(prefix="engram-mnt-")
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", probe])
    os.rmdir(probe)
    return ok

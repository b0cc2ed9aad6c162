"""Plots of one jepsen run, for a person to look at: latency over time with the fault windows
shaded, operations by kind and outcome, and each node's resident set over time. PNG through
matplotlib (Debian's python3-matplotlib); without it, plot_cell says so and makes nothing."""
import collections
import os
import sys

COLORS = {"ok": "#2a9d4a", "fail": "#d62728", "info": "#ff9f1c"}
FAULT_COLORS = ["#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fc9272", "#d9d9d9", "#c7e9c0",
                "#fdd0a2", "#dadaeb", "#c6dbef"]


DEBIAN_DIST = "/usr/lib/python3/dist-packages"


def have_matplotlib():
    """Whether matplotlib imports; an interpreter other than Debian's (pyenv, a venv) of the
    same minor version also gets Debian's python3-matplotlib, from its dist-packages."""
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        pass
    debian = f"/usr/lib/python3.{sys.version_info.minor}"
    if os.path.isdir(debian) and os.path.isdir(DEBIAN_DIST) and DEBIAN_DIST not in sys.path:
        sys.path.append(DEBIAN_DIST)
        try:
            import matplotlib  # noqa: F401,F811
            return True
        except ImportError:
            sys.path.remove(DEBIAN_DIST)
    return False


def plot_cell(out, ops, timeline, rss, rss_limit_mib):
    """Writes latency.png, outcomes.png and rss.png into out; returns their names."""
    if not have_matplotlib():
        print("plots: skipped, matplotlib is not installed (apt-get install "
              "python3-matplotlib)")
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    client_ops = [o for o in ops if o["process"] != "nemesis" and "complete" in o]
    faults = sorted({t["fault"] for t in timeline})
    fault_color = {f: FAULT_COLORS[i % len(FAULT_COLORS)] for i, f in enumerate(faults)}

    def shade(ax):
        seen = set()
        for t in timeline:
            end = t.get("end", t["start"])
            ax.axvspan(t["start"], end, color=fault_color[t["fault"]], alpha=0.45, lw=0,
                       label=None if t["fault"] in seen else t["fault"])
            seen.add(t["fault"])
        revokes = [o["invoke"] for o in ops if o["process"] == "nemesis" and o["kind"] == "revoke"]
        for k, t in enumerate(revokes):
            ax.axvline(t, color="black", ls=":", lw=1, label=None if k else "acl revoke")

    fig, ax = plt.subplots(figsize=(12, 5))
    shade(ax)
    for typ in ("ok", "info", "fail"):
        pts = [(o["invoke"], max(0.1, (o["complete"] - o["invoke"]) * 1000))
               for o in client_ops if o["type"] == typ]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, c=COLORS[typ],
                       label=f"{typ} ({len(pts)})", alpha=0.7, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("time since the run started (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"latency of every operation; shaded: faults ({os.path.basename(out)})")
    ax.legend(loc="upper left", fontsize=7, ncol=4, markerscale=3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency.png"), dpi=90)
    plt.close(fig)
    made.append("latency.png")

    table = collections.defaultdict(collections.Counter)
    for o in client_ops:
        table[o["kind"]][o["type"]] += 1
    kinds = sorted(table)
    if kinds:
        fig, ax = plt.subplots(figsize=(10, 4 + 0.2 * len(kinds)))
        left = [0] * len(kinds)
        for typ in ("ok", "info", "fail"):
            vals = [table[k][typ] for k in kinds]
            ax.barh(kinds, vals, left=left, color=COLORS[typ], label=typ)
            left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel("operations")
        ax.set_title("operations by kind and outcome")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, "outcomes.png"), dpi=90)
        plt.close(fig)
        made.append("outcomes.png")

    if rss:
        fig, ax = plt.subplots(figsize=(12, 4))
        shade(ax)
        by_node = collections.defaultdict(list)
        for t, name, kib in rss:
            by_node[name].append((t, kib / 1024))
        for name in sorted(by_node):
            pts = by_node[name]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, lw=1)
        ax.axhline(rss_limit_mib, color="red", ls="--", lw=1, label="limit")
        ax.set_xlabel("time since the run started (s)")
        ax.set_ylabel("resident set (MiB)")
        ax.set_title("each node's resident set; shaded: faults")
        ax.legend(fontsize=7, ncol=4)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "rss.png"), dpi=90)
        plt.close(fig)
        made.append("rss.png")
    return made

#!/usr/bin/env python3
"""An independent BM25 reference for engram's search (issue 11, "What must show").

Reads the JSON file tests/multiproc/search_test.c writes:
  {"top_k": K,
   "docs": {KEY: [TERM, ...], ...},          every document of the scope, its terms in order
   "queries": [{"query": TEXT, "terms": [TERM, ...],
                "results": [[KEY, SCORE], ...],  engram's answer, best first
                "docs": N, "avgdl": X}, ...]}    what engram's explain said it counted
The terms are the node's own (search_tokenize, "english"): this script checks the ranking
and the arithmetic, not the tokenizer. Its BM25 is written from the formula, standard library
only: k1 1.2, b 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)), a query term given twice
counts twice.

Checks, for every query:
  - every score engram returned equals the reference score of that document within 1e-9;
  - engram returned min(K, documents holding a query term) results, best first;
  - they are a top K of the reference: every document scoring above the K-th score (by more
    than 1e-9) is among them, so order may differ only among scores equal within 1e-9, and
    which of the documents tied at the boundary made it is free;
  - explain's N and avgdl are the corpus's.
Prints the figures; on a failure, a diff per failing query (the first few in full), exit 1.
"""
import json
import math
import sys
from collections import Counter, defaultdict

K1 = 1.2
B = 0.75
EPS = 1e-9
SHOWN = 5


def idf(n, df):
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def main(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    top_k = data["top_k"]
    docs = data["docs"]
    n = len(docs)
    if n == 0:
        print("bm25_reference: no documents")
        return 1
    avgdl = sum(len(terms) for terms in docs.values()) / n
    tf = {key: Counter(terms) for key, terms in docs.items()}
    postings = defaultdict(list)
    for key, counts in tf.items():
        for term in counts:
            postings[term].append(key)

    failures = []
    max_diff = 0.0
    compared = 0
    for q in data["queries"]:
        problems = []
        scores = defaultdict(float)
        for term in q["terms"]:  # a repeated term adds its part again
            holders = postings.get(term, [])
            weight = idf(n, len(holders))
            for key in holders:
                f = tf[key][term]
                norm = len(docs[key]) / avgdl
                scores[key] += weight * f * (K1 + 1) / (f + K1 * (1 - B + B * norm))
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        got = q["results"]
        if q.get("docs") is not None and q["docs"] != n:
            problems.append("explain counted %d documents, the corpus has %d" % (q["docs"], n))
        if q.get("avgdl") is not None and abs(q["avgdl"] - avgdl) > EPS:
            problems.append("explain's avgdl %.17g, the corpus's %.17g" % (q["avgdl"], avgdl))
        want_n = min(top_k, len(ranked))
        if len(got) != want_n:
            problems.append("%d results, expected %d" % (len(got), want_n))
        previous = math.inf
        for key, score in got:
            compared += 1
            if key not in scores:
                problems.append("%s scored %.17g but holds no query term" % (key, score))
                continue
            diff = abs(score - scores[key])
            max_diff = max(max_diff, diff)
            if diff > EPS:
                problems.append("%s: engram %.17g, reference %.17g (diff %.3g)"
                                % (key, score, scores[key], diff))
            if score > previous:
                problems.append("%s: score %.17g after a lower one %.17g" % (key, score, previous))
            previous = score
        if got and ranked:
            boundary = ranked[min(len(got), len(ranked)) - 1][1]
            returned = {key for key, _ in got}
            for key, score in ranked:
                if score > boundary + EPS and key not in returned:
                    problems.append("%s (reference %.17g) missing from the top %d"
                                    % (key, score, top_k))
            for key, _ in got:
                if key in scores and scores[key] < boundary - EPS:
                    problems.append("%s (reference %.17g) below the reference's %d-th score %.17g"
                                    % (key, scores[key], len(got), boundary))
        if problems:
            failures.append((q, ranked[:top_k], problems))

    print("bm25_reference: %d documents (avgdl %.3f, %d distinct terms), %d queries, "
          "%d scores compared, max |engram - reference| = %.3g"
          % (n, avgdl, len(postings), len(data["queries"]), compared, max_diff))
    for q, want, problems in failures[:SHOWN]:
        print("\nquery %r -> terms %r" % (q["query"], q["terms"]))
        for p in problems:
            print("  " + p)
        print("  %-4s %-10s %-22s %-10s %s" % ("rank", "engram", "score", "reference", "score"))
        for i in range(max(len(q["results"]), len(want))):
            g = q["results"][i] if i < len(q["results"]) else ("", float("nan"))
            w = want[i] if i < len(want) else ("", float("nan"))
            print("  %-4d %-10s %-22.17g %-10s %.17g" % (i + 1, g[0], g[1], w[0], w[1]))
    if failures:
        print("\nbm25_reference: %d of %d queries differ from the reference"
              % (len(failures), len(data["queries"])))
        return 1
    print("bm25_reference: every query agrees")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: bm25_reference.py RESULTS.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))

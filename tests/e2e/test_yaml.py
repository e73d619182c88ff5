#!/usr/bin/python3
# dagctl -o yaml: the YAML emitter read back by a real YAML parser (PyYAML,
# Debian's python3-yaml, which resolves YAML 1.1 types: yes/no/on/off,
# 012, 12:30, timestamps) must give the very value the JSON had. First the
# emitter alone (tests/tools/json2yaml) on strings chosen to trip a naive
# emitter and on thousands of generated documents, then the real dagctl
# on offline commands, -o yaml against -o json.
# SPDX-License-Identifier: MIT
import json
import os
import random
import subprocess
import sys

import yaml

build = os.environ["DAGD_BUILD_DIR"]
source = os.environ["DAGD_SOURCE_DIR"]
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


# Strings a YAML reader takes for something else when they are left plain,
# or that break a block layout.
TRICKY = [
    "", " ", "  lead", "trail ", "yes", "no", "Yes", "NO", "on", "Off", "y", "n", "true", "False", "null",
    "Null", "~", "0", "012", "0o17", "0x1F", "1e3", "1.5", "-1", "+1", ".5", ".inf", "-.inf", ".nan", "1_000",
    "12:30", "1:20:30", "2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01 10:00:00", "a: b", "a:b", "a:", ":a",
    "#x", "a #b", "a#b", "- x", "-", "--", "---", "...", "? x", "?", "[1]", "{a: 1}", "*ref", "&anchor",
    "!tag", "%x", "@x", "`x", "|", ">", "'q'", '"q"', "a'b", 'a"b', "back\\slash", "tab\there", "cr\rlf",
    "line\nbreak", "two\n\nlines\n", "ends\n\n\n", "\nleading newline", " \nspace line", "a\n  indented\nb",
    "a\n\tb", "a\nb  \nc", "x\n ", "nul\x00byte", "bell\x07", "del\x7f", "nel\u0085", "ls\u2028ps\u2029",
    "bom\ufeff", "\ufeffbom", "nbsp\u00a0", "é", "日本語", "emoji \U0001F600", "\uffff", "=", "<<",
    "manual__2026-12-02T14:18:50.123456+00:00", "http://127.0.0.1:8787/api", "/tmp/a b", "k" * 1100,
    "a" * 300, "multi\nline " * 50,
]


def rand_string(rng):
    alphabet = "ab:# -\n\t\"'\\01.yesnoYN~_/@`|>?*&!%{}[],\u00e9\u2028\x01\x85"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def rand_value(rng, depth=0):
    kind = rng.randint(0, 9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-10**12, 10**12)
    if kind == 3:
        return rng.choice([0.0, -0.0, 1.5, 1e300, 1e-7, -2.5e-300, 123456.789, 0.1]) * rng.choice([1, -1])
    if kind in (4, 5):
        return rng.choice(TRICKY) if rng.random() < 0.3 else rand_string(rng)
    if kind in (6, 7):
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [k for k in TRICKY if "\x00" not in k]
    return {rand_string(rng) if rng.random() < 0.5 else rng.choice(keys): rand_value(rng, depth + 1)
            for _ in range(rng.randint(0, 4))}


def same(a, b):
    """Equal as JSON values: 1 and 1.0 are not the same type here."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


# 1. The emitter alone: each tricky string bare, as a key, in a list, in
# nested blocks; then generated documents.
rng = random.Random(int(os.environ.get("DAGD_TEST_SEED", "1313")))
docs = []
for s in TRICKY:
    docs += [s, [s, {"k": s}], {"a": {"b": [s, [s]]}}]
    if "\x00" not in s:  # jansson keeps no NUL in a key
        docs.append({s: s})
docs += [{}, [], {"e": {}, "l": [], "n": None}, [[[]]], [{"a": 1, "b": [1.0, 2]}], 0.1, 1e300, -0.0, 7]
docs += [rand_value(rng) for _ in range(3000)]
lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
p = subprocess.run([os.path.join(build, "json2yaml")], input=lines.encode(), capture_output=True)
if p.returncode != 0:
    fail("json2yaml exit %d: %s" % (p.returncode, p.stderr.decode()))
else:
    text = p.stdout.decode()
    try:
        got = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        got = None
        fail("PyYAML cannot read the emitter's output: %s" % e)
    if got is not None:
        if len(got) != len(docs):
            fail("%d documents in, %d read back" % (len(docs), len(got)))
        parts = text.split("---\n")[1:]
        for i, (want, have) in enumerate(zip(docs, got)):
            if not same(want, have):
                fail("document %d: %r\nread back as %r\nfrom YAML:\n%s" % (i, want, have, parts[i][:400]))
                if failures > 10:
                    break

# 2. The real dagctl, offline commands: -o yaml reads back as -o json.
dagctl = os.path.join(build, "dagctl")
env = dict(os.environ, DAGD_DAGS_FOLDER=os.path.join(source, "dags"))
for args in (["validate"], ["validate", os.path.join(source, "tests/e2e/data/mixed")],
             ["next", "fraud_detection", "-n", "3", "--after", "2026-03-27T12:00:00Z"],
             ["next", "hello", "-n", "2"]):
    j = subprocess.run([dagctl, "-o", "json"] + args, capture_output=True, env=env)
    y = subprocess.run([dagctl] + args + ["-o", "yaml"], capture_output=True, env=env)
    if j.returncode != y.returncode:
        fail("%s: exit %d with json, %d with yaml" % (args, j.returncode, y.returncode))
        continue
    try:
        if not same(json.loads(j.stdout), yaml.safe_load(y.stdout)):
            fail("%s: -o yaml reads back differently from -o json:\n%s" % (args, y.stdout.decode()[:600]))
    except (ValueError, yaml.YAMLError) as e:
        fail("%s: %s\n%s" % (args, e, y.stdout.decode()[:600]))

# A bad -o is a usage error.
p = subprocess.run([dagctl, "-o", "xml", "validate"], capture_output=True, env=env)
if p.returncode != 2 or b"table, json or yaml" not in p.stderr:
    fail("-o xml: exit %d, %s" % (p.returncode, p.stderr))

print("%d documents, %d failures" % (len(docs), failures))
sys.exit(1 if failures else 0)

#!/usr/bin/python3
# Differential test of dagd's cron module against croniter (the library
# Airflow uses), driven the Airflow way: iterate in naive local wall time,
# then attach the zone. Thousands of generated expressions x start times x
# five zones (starts clustered around DST changes too) go through
# tests/tools/cron_oracle in one batch; every disagreement must fall under
# an explicit rule documented in docs/cron.md, else the test fails.
# SPDX-License-Identifier: MIT
#
# Run: DAGD_BUILD_DIR=build tests/e2e/test_cron_croniter.py [-v] [--seed N] [--count N]
#
# How a case is judged (docs/cron.md, "Differences from croniter"):
#   agree      our 5 next fire times equal croniter's, Airflow way (naive
#              wall-time iteration, each result .replace(tzinfo=zone), i.e.
#              fold=0: a gap time shifted forward, an overlap time at its
#              first occurrence).
#   explained  they differ, and ours equal a reference built from croniter's
#              own wall-time matches plus one of these documented rules:
#     day-or-nth    with both day fields restricted (croniter's own test,
#                   which we follow: docs/cron.md) croniter ignores the day
#                   of month next to '#' or 'L' in the day of week.
#     day-or-impossible-branch  with both restricted croniter gives up when
#                   one day field alone never matches (Feb 30 OR Sunday).
#                   For both, the reference merges croniter runs of each day
#                   field alone.
#     hourly-second-pass  a job with '*' or a step in the hour field fires in
#                   both passes of a repeated (fall-back) hour; croniter's
#                   naive walk fires once.
#     gap-duplicate two wall times map to one instant after a gap shift
#                   (02:30 -> 03:30 and 03:30): one run, croniter lists two.
#     gap-shift-ahead  the start lies after a spring-forward but before the
#                   shifted run of a skipped wall time: that run is still
#                   ahead for us; croniter, starting from the later wall
#                   time, loses it.
#     start-in-second-pass  the start lies in the second pass of a repeated
#                   hour; croniter returns a wall time whose first occurrence
#                   already passed (a time before the start); we do not.
#   Anything else is a failure.
import argparse
import datetime
import os
import random
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

from croniter import croniter, CroniterBadCronError, CroniterBadDateError
from croniter.croniter import CroniterError

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
N = 5
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MON_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
NOTFOUND = "ENOENT"


# ---------------------------------------------------------------- generator

def gen_field(r, lo, hi, kind):
    """One random field in syntax both we and croniter accept (after the
    translation in to_croniter). kind: sec, min, hour, dom, mon, dow."""
    span = hi - lo + 1

    def val():
        if kind == "hour" and r.random() < 0.5:
            return r.choice([0, 1, 2, 3, 23])  # where DST changes happen
        return r.randint(lo, hi)

    def name(v):
        if kind == "mon" and r.random() < 0.3:
            return r.choice([MON_NAMES[v - 1], MON_NAMES[v - 1].lower(), MON_NAMES[v - 1].title()])
        if kind == "dow" and r.random() < 0.3:
            return r.choice([DAY_NAMES[v % 7], DAY_NAMES[v % 7].lower()])
        return str(v)

    x = r.random()
    if kind == "dom" and x < 0.06:
        return r.choice(["L", "1,L", "15,L", "L"])
    if kind == "dow" and x < 0.05:
        return "%s#%d" % (name(r.randint(0, 7)), r.randint(1, 5))
    if kind == "dow" and x < 0.08:
        return "%dL" % r.randint(0, 6)
    if kind in ("dom", "dow") and x < 0.1:
        return "?"
    if x < 0.35:
        return "*"
    if x < 0.5:
        step = r.choice([1, 2, 3, 5, 10, 15, 20, 30, 7]) if kind in ("sec", "min") else r.randint(1, max(1, span // 2))
        if kind == "dow":
            step = r.randint(1, 3)
        return "*/%d" % step
    if x < 0.7:
        return name(val())
    if x < 0.8:
        a = val()
        b = r.randint(a, hi)
        if kind == "dow" and b == 7 and r.random() < 0.3:
            b = 0  # "FRI-SUN" style
            return "%s-%s" % (name(a), name(b)) if a > 0 else "%s-%s" % (name(a), name(7))
        return "%s-%s" % (name(a), name(b))
    if x < 0.88:
        a = val()
        b = r.randint(a, hi)
        return "%d-%d/%d" % (a, b, r.randint(1, max(1, (b - a) // 2 + 1)))
    if x < 0.93 and kind != "dow":
        # a/step means a-max/step
        return "%d/%d" % (val(), r.randint(1, max(1, span // 3)))
    k = r.randint(2, 4)
    vals = sorted(set(val() for _ in range(k)))
    return ",".join(name(v) for v in vals)


def gen_expr(r):
    x = r.random()
    if x < 0.04:
        return r.choice(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"])
    if x < 0.06:
        # rare and impossible dates
        return r.choice(["0 0 29 2 *", "0 0 30 2 *", "0 12 31 4 *", "30 1 29 2 1", "0 0 31 2,4 *",
                         "0 0 29 2 MON", "15 3 31 * *"])
    if x < 0.08:
        # errors both must reject
        return r.choice(["0 25 * * *", "60 * * * *", "*/0 * * * *", "0 0 32 * *", "0 0 * 13 *", "0 0 * * 8",
                         "0 0 * *", "1-5-7 * * * *", "0 0 * FOO *"])
    # Fixed times in the DST hours are where the rules bite: weight them.
    if x < 0.35:
        minute = r.choice(["0", "30", "15", "45", "59", "0,30", str(r.randint(0, 59))])
        hour = r.choice(["1", "2", "3", "0", "23", "1,2", "2,3", "1-3", str(r.randint(0, 23))])
        fields = [minute, hour, gen_field(r, 1, 31, "dom") if r.random() < 0.3 else "*",
                  gen_field(r, 1, 12, "mon") if r.random() < 0.2 else "*",
                  gen_field(r, 0, 7, "dow") if r.random() < 0.3 else "*"]
    else:
        fields = [gen_field(r, 0, 59, "min"), gen_field(r, 0, 23, "hour"), gen_field(r, 1, 31, "dom"),
                  gen_field(r, 1, 12, "mon"), gen_field(r, 0, 7, "dow")]
    if r.random() < 0.08:
        fields.insert(0, r.choice(["0", "30", "*/15", "*/20", "5,35", "59"]))
    return " ".join(fields)


def transitions(zone_name, year):
    """UTC instants where the zone's offset changes in `year` (15-min scan;
    every change in these zones falls on a quarter hour)."""
    z = ZoneInfo(zone_name)
    t0 = int(datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    t1 = int(datetime.datetime(year + 1, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    out = []
    prev = datetime.datetime.fromtimestamp(t0, z).utcoffset()
    for t in range(t0 + 900, t1, 900):
        off = datetime.datetime.fromtimestamp(t, z).utcoffset()
        if off != prev:
            out.append(t)
            prev = off
    return out


def gen_cases(seed, count):
    r = random.Random(seed)
    trans_cache = {}
    cases = []
    while len(cases) < count:
        expr = gen_expr(r)
        for zone in ZONES:
            year = r.randint(1995, 2045)
            if zone in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe") and r.random() < 0.7:
                key = (zone, year)
                if key not in trans_cache:
                    trans_cache[key] = transitions(zone, year)
                T = r.choice(trans_cache[key])
                if r.random() < 0.6:
                    start = T + r.randint(-3 * 3600, 3 * 3600)
                else:
                    start = T + r.randint(-2 * 86400, 2 * 86400)
            else:
                start = int(datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc).timestamp()) + \
                    r.randint(0, 365 * 86400)
            if r.random() < 0.3:
                start -= start % 60  # on a minute boundary, often a fire time
            cases.append((expr, zone, start))
    return cases


# ------------------------------------------------------------------ croniter

def split_fields(expr):
    """Our field texts (sec, min, hour, dom, mon, dow) with presets expanded."""
    presets = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
    e = presets.get(expr.strip().lower(), expr)
    f = e.split()
    if len(f) == 5:
        return ["0"] + f, False
    return f, True


def dow_item_to_croniter(item):
    """Syntax translation for croniter (meaning unchanged): "5L"/"FRIL" is
    croniter's "L5"; names in '#' and 'L' items become numbers; an item
    that reaches 7 (Sunday), and any "*/n", is written out as a list with
    0 instead, since croniter never matches 7 in six-field expressions."""
    up = item.upper()

    def num(s):
        return DAY_NAMES.index(s) if s in DAY_NAMES else int(s)

    if "#" in up:
        a, n = up.split("#")
        return "%d#%s" % (num(a) % 7, n)
    if up.endswith("L") and len(up) > 1:
        return "L%d" % (num(up[:-1]) % 7)
    body, _, step = up.partition("/")
    if body == "*":
        # croniter reads "*/n" as 0-7/n; its six-field form keeps 7 apart
        # from 0 (so "*/1" names 8 values and is "restricted" there but not
        # in five fields). Write the weekdays out, 7 as 0.
        if not step:
            return item
        return ",".join(str(v) for v in sorted({v % 7 for v in range(0, 8, int(step))}))
    a, _, b = body.partition("-")
    lo = num(a)
    hi = num(b) if b else (lo if not step else 6)
    if b and hi == 0 and lo > 0:
        hi = 7
    if hi < 7 or hi > 7 or lo > 7:
        return item  # nothing to translate, or out of range: croniter judges
    return ",".join(str(v % 7) for v in range(lo, hi + 1, int(step or 1)))


def to_croniter(fields, has_sec):
    """Our fields -> croniter expression text (seconds move last; '?' is
    '*')."""
    f = [("*" if x == "?" else x) for x in fields]
    f[5] = ",".join(dow_item_to_croniter(i) for i in f[5].split(","))
    if has_sec:
        return " ".join(f[1:] + [f[0]])
    return " ".join(f[1:])


def croniter_or(expr_c):
    """croniter's own OR decision: both expanded day fields not '*'."""
    exp, nth = croniter.expand(expr_c)
    return exp[2][0] != "*" and exp[4][0] != "*", nth


def split_dom(dom_text):
    """croniter's day-of-month lookup overshoots when the nearest value does
    not exist in the current month: "1,16,31" from Feb 18 jumps 13 days to
    March 3 and skips March 1. With a single value nothing can be skipped,
    so a list reaching past day 28 is split into single values whose
    croniter runs are merged. Returns the day-of-month texts to run."""
    if dom_text in ("*", "?"):
        return [dom_text]
    items = dom_text.upper().split(",")
    vals = set()
    last = False
    for it in items:
        if it == "L":
            last = True
            continue
        body, _, step = it.partition("/")
        if body in ("*", "?"):
            lo, hi = 1, 31
        else:
            a, _, b = body.partition("-")
            lo = int(a)
            hi = int(b) if b else (31 if step else lo)
        vals.update(range(lo, hi + 1, int(step or 1)))
    if len(vals) + last <= 1 or max(vals, default=0) <= 28:
        return [dom_text]
    return [str(v) for v in sorted(vals)] + (["L"] if last else [])


class WallStream:
    """The matching naive wall times after a naive start, as croniter finds
    them, around croniter's day-matching bugs. We decide OR versus AND of
    the day fields exactly as croniter does (both expanded fields not '*'),
    so croniter_or is also our rule. With OR the stream merges croniter runs
    of each day field alone (croniter's own OR drops the day of month next
    to '#'/'L', and gives up entirely when one field alone never matches,
    e.g. Feb 30 OR Sunday). `why` names the adjustments made, each a
    documented difference."""

    def __init__(self, fields, has_sec, split=True):
        self.fields, self.has_sec = fields, has_sec
        self.expr_c = to_croniter(fields, has_sec)
        day_or, _ = croniter_or(self.expr_c)
        exp = croniter.expand(self.expr_c)[0]
        doms = split_dom(fields[3]) if exp[2] != ["*"] and split else [fields[3]]
        self.why = set()
        if len(doms) > 1:
            self.why.add("croniter-dom-overflow")

        def variant(dom, dow):
            f = list(fields)
            f[3], f[5] = dom, dow
            return to_croniter(f, has_sec)

        if day_or:
            self.plans = [(variant(d, "*"), True) for d in doms] + [(variant("*", fields[5]), True)]
            if any(("#" in i or i.upper().endswith("L")) for i in fields[5].split(",")):
                self.why.add("day-or-nth")
            else:
                self.why.add("day-or-impossible-branch")
        elif exp[2] != ["*"]:
            self.plans = [(variant(d, fields[5]), True) for d in doms]
        else:
            self.plans = [(self.expr_c, True)]

    def walls(self, naive_start, count):
        out = set()
        for expr_c, day_or in self.plans:
            it = croniter(expr_c, naive_start, day_or=day_or)
            for _ in range(count):
                try:
                    out.add(it.get_next(datetime.datetime))
                except CroniterBadDateError:
                    break
        return sorted(out)[:count]


def resolve(w, z):
    """A naive wall time -> (kind, [instants]): normal, gap (shifted
    forward: zoneinfo's fold=0) or overlap (both occurrences)."""
    a = w.replace(tzinfo=z, fold=0)
    b = w.replace(tzinfo=z, fold=1)
    ta, tb = int(a.timestamp()), int(b.timestamp())
    if ta == tb:
        return "normal", [ta]
    if datetime.datetime.fromtimestamp(ta, z).replace(tzinfo=None) == w:
        return "overlap", sorted([ta, tb])
    return "gap", [ta]


def airflow_way(stream, z, start, n=N):
    """croniter(expr, start.astimezone(z).replace(tzinfo=None)), each result
    .replace(tzinfo=z)."""
    naive = datetime.datetime.fromtimestamp(start, z).replace(tzinfo=None)
    walls = stream.walls(naive, n)
    out = [int(w.replace(tzinfo=z).timestamp()) for w in walls]
    if len(out) < n:
        out.append(NOTFOUND)
    return out


def reference(stream, z, start, hour_wild):
    """Our rule (docs/cron.md) applied to croniter's wall times: returns the
    first N instants after start and the reasons they differ from the
    Airflow way."""
    naive = datetime.datetime.fromtimestamp(start, z).replace(tzinfo=None)
    begin = naive - datetime.timedelta(hours=3)
    count = 4 * N + 8
    while True:
        walls = stream.walls(begin, count)
        inst = {}  # instant -> (kind, wall)
        for w in walls:
            kind, ts = resolve(w, z)
            if kind == "overlap" and not hour_wild:
                ts = ts[:1]
            for i, t in enumerate(ts):
                if t > start and t not in inst:
                    inst[t] = ("second-pass" if (kind == "overlap" and i == 1) else kind, w)
        got = sorted(inst)[:N]
        exhausted = len(walls) < count
        # Complete once the walls run 3h past the last instant we keep: no
        # later wall time can map before it (offset changes are < 3h here).
        if exhausted or (len(got) == N and walls[-1] > datetime.datetime.fromtimestamp(got[-1], z).replace(
                tzinfo=None) + datetime.timedelta(hours=3)):
            break
        count *= 2
    reasons = set()
    for t in got:
        kind, w = inst[t]
        if kind == "second-pass":
            reasons.add("hourly-second-pass")
        if kind == "gap" and w <= naive:
            reasons.add("gap-shift-ahead")
    out = list(got)
    if len(out) < N:
        out.append(NOTFOUND)
    return out, reasons


def classify(expr, zone, start, ours):
    """Returns (category, detail). category 'agree', an explained category,
    or 'FAIL'."""
    fields, has_sec = split_fields(expr)
    z = ZoneInfo(zone)
    try:
        plain = WallStream(fields, has_sec)
        plain.plans = [(plain.expr_c, True)]
        plain_list = airflow_way(plain, z, start)
    except (CroniterBadCronError, CroniterError, ValueError, IndexError) as e:
        if ours and ours[0] == "ERR":
            return "agree-rejected", ""
        return "FAIL", "croniter rejects (%s) but we accept" % e
    if ours and ours[0] == "ERR":
        return "FAIL", "we reject (%s) but croniter accepts: %s" % (" ".join(ours[1:]), plain_list)
    if ours == plain_list:
        return "agree", ""
    stream = WallStream(fields, has_sec)
    hour_wild = "*" in fields[2] or "/" in fields[2]
    adj_list = airflow_way(stream, z, start)
    ref, reasons = reference(stream, z, start, hour_wild)
    if ours != ref:
        return "FAIL", "ours %s\n    croniter (Airflow way) %s\n    reference (our rules) %s" % (
            fmt_list(ours, z), fmt_list(plain_list, z), fmt_list(ref, z))
    cats = set()
    if adj_list != plain_list:
        cats |= stream.why
        # Name the overflow workaround only when it changed the answer.
        if "croniter-dom-overflow" in cats and airflow_way(WallStream(fields, has_sec, split=False), z,
                                                          start) == adj_list:
            cats.discard("croniter-dom-overflow")
    if ref != adj_list:
        # Look a little further down croniter's list: a duplicate or an
        # out-of-order shifted time there pushes ours out of the first N.
        nums = [t for t in airflow_way(stream, z, start, 3 * N) if t != NOTFOUND]
        if len(set(nums)) != len(nums):
            cats.add("gap-duplicate")
        if nums != sorted(nums):
            cats.add("gap-order")
        # Or croniter listed a shifted gap time ahead of a real time that
        # comes first in time but later in wall order (Lord Howe: 02:01 ->
        # 02:31 listed before the real 02:30).
        naive = datetime.datetime.fromtimestamp(start, z).replace(tzinfo=None)
        for w in stream.walls(naive, N):
            kind, ts = resolve(w, z)
            if kind == "gap" and any(t != NOTFOUND and t < ts[0] and t not in adj_list for t in ref):
                cats.add("gap-order")
        if any(t <= start for t in nums):
            cats.add("start-in-second-pass")
        cats |= reasons
    if not cats:
        return "FAIL", "differs without a documented reason: ours %s croniter %s" % (
            fmt_list(ours, z), fmt_list(plain_list, z))
    return "+".join(sorted(cats)), ""


def fmt_list(lst, z):
    return "[" + ", ".join(t if isinstance(t, str) else datetime.datetime.fromtimestamp(t, z).isoformat()
                           for t in lst) + "]"


def parse_ours(line):
    if line.startswith("ERR"):
        return ["ERR", line[4:]]
    out = []
    for tok in line.split():
        if tok == "ENOENT":
            out.append(NOTFOUND)
            break
        out.append(int(tok))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--count", type=int, default=8000)
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    build = os.environ.get("DAGD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
    oracle = os.path.join(build, "cron_oracle")
    t0 = time.time()
    cases = gen_cases(args.seed, args.count)
    stdin = "".join("%s\t%s\t%d\t%d\n" % (e, z, s, N) for e, z, s in cases)
    res = subprocess.run([oracle], input=stdin, capture_output=True, text=True, check=True)
    lines = res.stdout.split("\n")
    if len(lines) < len(cases):
        print("cron_oracle returned %d lines for %d cases" % (len(lines), len(cases)))
        print("0 passed, 1 failed")
        return 1
    counts = {}
    examples = {}
    failures = []
    for (expr, zone, start), line in zip(cases, lines):
        cat, detail = classify(expr, zone, start, parse_ours(line))
        counts[cat] = counts.get(cat, 0) + 1
        examples.setdefault(cat, "%r in %s after %s" % (
            expr, zone, datetime.datetime.fromtimestamp(start, ZoneInfo(zone)).isoformat()))
        if cat == "FAIL":
            failures.append("%r in %s after %s (%d):\n    %s" % (
                expr, zone, datetime.datetime.fromtimestamp(start, ZoneInfo(zone)).isoformat(), start, detail))
    agreed = counts.get("agree", 0) + counts.get("agree-rejected", 0)
    explained = {k: v for k, v in counts.items() if k not in ("agree", "agree-rejected", "FAIL")}
    print("compared: %d cases (%d distinct expressions x %d zones x start times, %d next fire times each), "
          "seed %d" % (len(cases), len(set(e for e, _, _ in cases)), len(ZONES), N, args.seed))
    print("agreed with croniter: %d (%d of them rejected by both)" % (agreed, counts.get("agree-rejected", 0)))
    print("documented differences: %d" % sum(explained.values()))
    for k in sorted(explained):
        print("  %-40s %d" % (k, explained[k]))
        if args.v:
            print("      e.g. " + examples[k])
    for f in failures[: (len(failures) if args.v else 20)]:
        print("FAIL " + f)
    print("unexplained: %d" % len(failures))
    print("elapsed: %.1fs" % (time.time() - t0))
    passed = len(cases) - len(failures)
    print("%d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Writes N generated DAG files of T tasks each into a folder, for the
loader benchmark. Each DAG has a cron schedule, default_args, a fan-out /
fan-in shape and a mix of operators, like a real pipeline file.
SPDX-License-Identifier: MIT"""
import os
import sys


def dag_file(i, tasks):
    lines = [
        'local dagd = require "dagd"',
        'local d = dagd.dag {',
        f'  id = "bench_{i:05d}",',
        f'  schedule = "{i % 60} {i % 24} * * *",',
        '  timezone = "Europe/Berlin",',
        '  start_date = "2026-01-01",',
        '  default_args = { retries = 2, retry_delay = "5m", execution_timeout = "1h" },',
        '  tags = { "bench", "generated" },',
        '}',
        'local prev = d:shell { id = "t00", cmd = { "echo", "{{ ds }}" } }',
    ]
    for t in range(1, tasks):
        if t % 5 == 0:
            lines.append(f'local t{t:02d} = d:docker {{ id = "t{t:02d}", image = "registry.local:5000/etl:1.{t}", '
                         f'cmd = {{ "run", "--date", "{{{{ ds }}}}" }}, deps = {{ prev }} }}')
        else:
            lines.append(f'local t{t:02d} = d:shell {{ id = "t{t:02d}", cmd = "echo {t}", deps = {{ prev }}, '
                         f'priority_weight = {t} }}')
        if t % 4 == 0:
            lines.append(f'prev = t{t:02d}')
    return "\n".join(lines) + "\n"


def main():
    folder, count, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        with open(os.path.join(folder, f"dag_{i:05d}.lua"), "w") as f:
            f.write(dag_file(i, tasks))


if __name__ == "__main__":
    main()

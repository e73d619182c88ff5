#!/bin/sh
# Stand-in task script for dags/hello.lua: prints its argument.
echo "goodbye from run ${1:-?}"

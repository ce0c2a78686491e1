"""A process tree for tests/guard.rs, built to escape a process-group kill in each known way.

    python3 guard_tree.py DIR MARKER [--exit N] [--ignore-term] ROLE...

Every process of the tree is a fork of this script, so each carries MARKER in its command line
(a test finds them all by scanning /proc for it). Each role's process names itself `gt-<role>`
(its comm) once it is in place and then writes its pid to DIR/<role>; the top process writes
DIR/ready when every role is in place, then sleeps, or exits with status N (--exit N). With
--ignore-term the top process ignores SIGTERM too (set before any role starts; the roles put
SIGTERM back to its default).

Roles:
  plain     a child, in the group
  setsid    a grandchild that called setsid, under a child that stays in the group
  daemon    a double-forked daemon: fork, setsid, fork, the middle one exits at once
  noterm    a child, in the group, that ignores SIGTERM
  pgrp      a grandchild that moved to a new process group (same session)
  evilcomm  a setsid child whose comm holds an ESC and a newline
"""

import os
import signal
import sys
import time

FOREVER = 3600


def in_place(directory, role, comm=None):
    with open("/proc/self/comm", "w") as f:
        f.write(comm if comm is not None else "gt-" + role)
    tmp = os.path.join(directory, "." + role)
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, os.path.join(directory, role))


def stay():
    while True:
        time.sleep(FOREVER)


def child(body):
    """Runs body() in a forked child that never returns here."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            body()
        finally:
            os._exit(0)
    return pid


def start(directory, role):
    if role == "plain":
        child(lambda: (in_place(directory, role), stay()))
    elif role == "setsid":
        def middle():
            child(lambda: (os.setsid(), in_place(directory, role), stay()))
            stay()
        child(middle)
    elif role == "daemon":
        def first():
            os.setsid()
            child(lambda: (in_place(directory, role), stay()))
            os._exit(0)
        middle = child(first)
        os.waitpid(middle, 0)
    elif role == "noterm":
        def ignore():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            in_place(directory, role)
            stay()
        child(ignore)
    elif role == "pgrp":
        def middle():
            child(lambda: (os.setpgid(0, 0), in_place(directory, role), stay()))
            stay()
        child(middle)
    elif role == "evilcomm":
        child(lambda: (os.setsid(), in_place(directory, role, "e\x1b[31m\nvil"), stay()))
    else:
        sys.exit("unknown role " + role)


def main():
    args = sys.argv[1:]
    directory, _marker = args[0], args[1]
    args = args[2:]
    exit_status = None
    if args[:1] == ["--exit"]:
        exit_status = int(args[1])
        args = args[2:]
    if args[:1] == ["--ignore-term"]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        args = args[1:]
    for role in args:
        start(directory, role)
    while not all(os.path.exists(os.path.join(directory, role)) for role in args):
        time.sleep(0.005)
    with open(os.path.join(directory, "ready"), "w") as f:
        f.write(str(os.getpid()))
    if exit_status is not None:
        sys.stdout.flush()
        os._exit(exit_status)
    stay()


main()

"""Starts a program with a forged in-place upgrade state (regression test).

    forge_upgrade_state.py MODE NOTIFY_DIR PROGRAM [ARGS...]

The process keeps its pid through exec, so the state names the right master
pid. MODE says how the state is handed over:
  json          the state as JSON in ARBITER_UPGRADE_STATE (the old format)
  unsealed      a memfd with the right name, not sealed
  wrong-name    a sealed memfd with another name
  sealed        a sealed memfd with the right name, made by this same user
                (as good as the real thing: only the paths inside protect)
"""
import fcntl
import json
import os
import sys

mode, notify_dir, *argv = sys.argv[1:]
state = json.dumps({
    "version": 1, "masterPid": os.getpid(), "startedAt": 0, "generation": 7,
    "listeners": [{"fd": 0, "text": "stdin"}], "workers": [{"pid": 1, "slot": 0, "generation": 1}],
    "notifyDir": notify_dir,
})
env = dict(os.environ)
if mode == "json":
    env["ARBITER_UPGRADE_STATE"] = state
else:
    name = "something-else" if mode == "wrong-name" else "arbiter-upgrade-state"
    fd = os.memfd_create(name, os.MFD_ALLOW_SEALING)
    os.write(fd, state.encode())
    if mode != "unsealed":
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    os.set_inheritable(fd, True)
    env["ARBITER_UPGRADE_STATE"] = f"memfd:{fd}"
os.execvpe(argv[0], argv, env)

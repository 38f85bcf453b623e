"""A batch of bad-input cases run in one fresh process as their commands' mains (the campaign's driver).

Reads a JSON list of cases ({"command": "qgan-train" | "qgan-sample" | "qgan-tune" | "qgan-export",
"argv": [...]}) and a folder, and prints a JSON list of results: exit code, stdout, stderr, whether
an exception escaped (a traceback), and which files of the folder the case created, changed or
removed. Each case's main runs with sys.argv[0] set to its command, as its console script does.
"""

import contextlib
import hashlib
import importlib
import io
import json
import os
import sys
import traceback

MAINS = {
    "qgan-train": "qgan.training.cli",
    "qgan-sample": "qgan.training.sample_cli",
    "qgan-tune": "qgan.tune.cli",
    "qgan-export": "qgan.training.export_cli",
}


def snapshot(folder):
    """{relative path: sha1 of the file, or "dir"} of everything under folder."""
    found = {}
    for root, folders, files in os.walk(folder):
        for name in folders:
            found[os.path.relpath(os.path.join(root, name), folder)] = "dir"
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, folder)] = hashlib.sha1(handle.read()).hexdigest()
            except OSError:
                found[os.path.relpath(path, folder)] = "unreadable"
    return found


def run_case(case):
    module = importlib.import_module(MAINS[case["command"]])
    stdout, stderr = io.StringIO(), io.StringIO()
    code, escaped = None, None
    sys.argv = [case["command"], *case["argv"]]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = module.main(case["argv"])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # noqa: BLE001 - what a user would see as a traceback
            escaped = traceback.format_exc()
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "traceback": escaped}


def main():
    cases_path, folder = sys.argv[1], sys.argv[2]
    with open(cases_path, encoding="utf-8") as handle:
        cases = json.load(handle)
    results = []
    for case in cases:
        before = snapshot(folder)
        result = run_case(case)
        after = snapshot(folder)
        result["changed"] = sorted(
            path for path in set(before) | set(after) if before.get(path) != after.get(path)
        )
        results.append(result)
    sys.stdout = sys.__stdout__
    print(json.dumps(results))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Counts the tests of ctest JUnit and GoogleTest XML reports honestly: a skipped test (a GPU test on a machine
without a GPU) is reported as skipped, never as passed.

    count_tests.py LABEL=REPORT.xml [LABEL=REPORT.xml ...]

Prints 'LABEL: N passed, N failed, N skipped' for each report, then the totals as the closing
line. Exits 1 when a test failed, when a report is missing or holds no test, or, with
TROCR_REQUIRE_GPU=1, when any test was skipped.
"""
import os
import sys
import xml.etree.ElementTree as ElementTree


def count(path):
    passed = failed = skipped = 0
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        status = case.get("status", "")
        if case.find("failure") is not None or case.find("error") is not None or status == "fail":
            failed += 1
        elif case.find("skipped") is not None or status in ("notrun", "disabled") or case.get("result") == "skipped":
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main():
    totals = [0, 0, 0]
    problems = []
    for argument in sys.argv[1:]:
        label, path = argument.split("=", 1)
        try:
            counts = count(path)
        except (OSError, ElementTree.ParseError) as error:
            problems.append(f"{label}: no test report ({error})")
            continue
        if sum(counts) == 0:
            problems.append(f"{label}: no test ran")
        print(f"{label}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
        totals = [t + c for t, c in zip(totals, counts)]
    if os.environ.get("TROCR_REQUIRE_GPU") == "1" and totals[2]:
        problems.append(f"{totals[2]} test(s) skipped with TROCR_REQUIRE_GPU=1")
    for problem in problems:
        print("count_tests:", problem)
    print(f"tests: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] or problems else 0


if __name__ == "__main__":
    sys.exit(main())

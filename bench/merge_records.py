#!/usr/bin/env python3
"""Merges the JSON record lists a device script wrote into one file (the device tool brings back
a handful of files), deleting the parts. Records without a commit (HF's) get the run's.

usage: merge_records.py OUT_DIR PATTERN TARGET [COMMIT]
"""
import glob
import json
import os
import sys


def main():
    out, pattern, target = sys.argv[1:4]
    commit = sys.argv[4] if len(sys.argv) > 4 else None
    records = []
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        if os.path.basename(path) == target:
            continue
        for record in json.load(open(path)):
            if commit:
                record.setdefault("commit", commit)
            records.append(record)
        os.remove(path)
    json.dump(records, open(os.path.join(out, target), "w"), indent=1)
    print(len(records), "records in", target)


if __name__ == "__main__":
    main()

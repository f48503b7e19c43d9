#!/usr/bin/env python3
# Largest logit difference between two folders of <case>.f32 files (docs/bench/session12/
# bitcheck.cpp with OUT set), per case:
#   python3 docs/bench/session13/logit-diff.py A_DIR B_DIR
# Prints, for every case whose logits differ: max |a - b|, that over max |a| (relative), and
# whether the top token is the same. Standard library only (any python3).
import array
import os
import sys


def load(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a


def main():
    a_dir, b_dir = sys.argv[1], sys.argv[2]
    same = differ = 0
    worst = 0.0
    for name in sorted(os.listdir(a_dir)):
        a, b = load(os.path.join(a_dir, name)), load(os.path.join(b_dir, name))
        if a == b:
            same += 1
            continue
        differ += 1
        diff = max(abs(x - y) for x, y in zip(a, b))
        scale = max(abs(x) for x in a)
        top_a = max(range(len(a)), key=a.__getitem__)
        top_b = max(range(len(b)), key=b.__getitem__)
        worst = max(worst, diff / scale)
        print(f"{name}: max|diff| {diff:.3g}, relative {diff / scale:.3g}, "
              f"top token {'same' if top_a == top_b else f'{top_a} vs {top_b}'}")
    print(f"{same} cases identical, {differ} differ; largest relative difference {worst:.3g}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes tests/fixtures/longbench_metrics.json: inputs and the scores that the reference Python
packages give for them, so that the C++ metrics in src/eval/metrics.cpp can be checked against
them (tests/eval/test_eval_metrics.cpp).

Run once in a throw-away virtual environment with the pinned packages:

    python3 -m venv /tmp/mv
    /tmp/mv/bin/pip install rouge==1.0.1 fuzzywuzzy==0.18.0 python-Levenshtein==0.27.1
    /tmp/mv/bin/python scripts/make-metric-fixtures.py > tests/fixtures/longbench_metrics.json

ROUGE-L F comes from rouge.Rouge().get_scores(..., avg=True)["rouge-l"]["f"] (0 when the package
refuses the input, as LongBench does); the code similarity from fuzzywuzzy.fuzz.ratio (with
python-Levenshtein installed, as LongBench's environment has it). The other metrics have no
package: they are written here from LongBench's published metric definitions, in Python, so the
fixture checks the C++ port against Python's own Unicode, regex and string semantics.
"""
import collections
import json
import re
import string
import sys
from importlib import metadata

from fuzzywuzzy import fuzz
from rouge import Rouge

PINNED = {"rouge": "1.0.1", "fuzzywuzzy": "0.18.0", "python-Levenshtein": "0.27.1"}


def check_versions():
    for name, want in PINNED.items():
        have = metadata.version(name)
        if have != want:
            sys.exit(f"{name} {have} is installed; the fixture is defined for {want}")


# --- LongBench's metric definitions, in Python ---------------------------------------------

def normalize(text):
    text = text.lower()
    text = "".join(c for c in text if c not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def qa_f1(pred, truth):
    p, t = normalize(pred).split(), normalize(truth).split()
    overlap = sum((collections.Counter(p) & collections.Counter(t)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(p), overlap / len(t)
    return 2 * precision * recall / (precision + recall)


def rouge_l(pred, truth):
    try:
        return Rouge().get_scores([pred], [truth], avg=True)["rouge-l"]["f"]
    except Exception:  # empty hypothesis or reference: LongBench scores 0
        return 0.0


def classification(pred, truth, all_classes):
    found = [c for c in all_classes if c in pred]
    # The reference removes entries from the list it is iterating over.
    for c in found:
        if c in truth and c != truth:
            found.remove(c)
    return 1.0 / len(found) if truth in found else 0.0


def share_equal(numbers, target):
    if not numbers:
        return 0.0
    return sum(1 for n in numbers if n == target) / len(numbers)


def retrieval(pred, truth):
    ids = re.findall(r"Paragraph (\d+)", truth)
    if not ids:
        return 0.0
    return share_equal(re.findall(r"\d+", pred), ids[0])


def count(pred, truth):
    return share_equal(re.findall(r"\d+", pred), str(truth))


def code_sim(pred, truth):
    first = ""
    for line in pred.lstrip("\n").split("\n"):
        if "`" not in line and "#" not in line and "//" not in line:
            first = line
            break
    return fuzz.ratio(first, truth) / 100


METRICS = {
    "qa_f1": qa_f1,
    "rouge_l": rouge_l,
    "retrieval": retrieval,
    "count": count,
    "code_sim": code_sim,
}

# Datasets used for whole-sample scoring (max over answers, first-line post-processing).
DATASET_METRIC = {
    "hotpotqa": "qa_f1",
    "triviaqa": "qa_f1",
    "multi_news": "rouge_l",
    "samsum": "rouge_l",
    "trec": "classification",
    "passage_retrieval_en": "retrieval",
    "passage_count": "count",
    "lcc": "code_sim",
}
FIRST_LINE = {"trec", "triviaqa", "samsum"}


def sample_score(dataset, pred, answers, all_classes):
    if dataset in FIRST_LINE:
        pred = pred.lstrip("\n").split("\n")[0]
    metric = DATASET_METRIC[dataset]
    best = 0.0
    for a in answers:
        if metric == "classification":
            s = classification(pred, a, all_classes)
        else:
            s = METRICS[metric](pred, a)
        best = max(best, s)
    return best


# --- inputs ---------------------------------------------------------------------------------

PAIRS = {
    "qa_f1": [
        ("The Eiffel Tower", "Eiffel Tower"),
        ("an apple, a pear and the plum!", "Apple; pear & plum."),
        ("", "Paris"),
        ("Paris", ""),
        ("", ""),
        ("the the the", "a an"),
        ("Gödel, Escher, Bach", "gödel escher bach"),
        ("ÉCOLE Normale", "école normale supérieure"),
        ("theory of the atom", "atomic theory"),
        ("1,000 people", "1000 people"),
        ("New  York\tCity\n", "new york"),
        ("cat cat dog", "cat dog dog"),
        ("ＡＢＣ full-width", "ａｂｃ fullwidth"),
        ("l'été à Paris", "L’été, à Paris"),
        ("Thea went to the theatre", "thea theatre"),
    ],
    "rouge_l": [
        ("the cat sat on the mat", "the cat was on the mat"),
        ("The cat sat. The dog ran.", "A dog ran. The cat sat down."),
        ("", "reference text"),
        ("prediction text", ""),
        ("...", "some words"),
        ("word", "word"),
        ("a b c d e", "e d c b a"),
        ("Police said on Monday. . Two men were arrested", "Two men were arrested on Monday."),
        ("Zürich ist schön. Café au lait", "café au lait in Zürich"),
        ("repeat repeat repeat repeat", "repeat once"),
        ("First sentence here. Second one there. Third!", "first sentence. second one. third"),
        ("no period at all just words flowing on and on", "words flowing on"),
        ("x. y. z.", "x y z"),
        ("The  spaced   out.   text  ", "the spaced out text"),
    ],
    "retrieval": [
        ("Paragraph 12", "Paragraph 12"),
        ("The answer is Paragraph 3, not Paragraph 12", "Paragraph 12"),
        ("I think 7", "Paragraph 7"),
        ("no numbers", "Paragraph 7"),
        ("", "Paragraph 7"),
        ("Paragraph ٣", "Paragraph 3"),
        ("Paragraph 3", "no paragraph here"),
    ],
    "count": [
        ("12", "12"),
        ("There are 12 unique paragraphs out of 30", "12"),
        ("zero", "4"),
        ("", "4"),
        ("4, 4 and 5", "4"),
        ("0012", "12"),
    ],
    "code_sim": [
        ("    return x + 1\n", "    return x + 1"),
        ("\n\nreturn a+b;\n}", "return a + b;"),
        ("# comment\n// other\nint x = 0;", "int x = 1;"),
        ("```python\nfoo()", "foo()"),
        ("", "foo()"),
        ("", ""),
        ("# only comments", "x = 1"),
        ("naïve = 'é'", "naive = 'e'"),
        ("for i in range(10):", "for j in range(10):"),
        ("abcd", "dcba"),
        ("print('héllo wörld')\nmore", "print('hello world')"),
        ("x", "y"),
    ],
}

CLASSES = ["Description", "Entity", "Abbreviation", "Human", "Location", "Numeric value",
           "Manner of an action", "Reason", "Definition of something", "Other entity",
           "Other location", "Other number", "Individual", "City", "Country", "State",
           "Date", "Count"]
CLASSIFICATION = [
    ("Location", "Location"),
    ("City", "City"),
    ("Other location", "Other location"),
    ("It is a Location, or maybe a City", "City"),
    ("Definition of something", "Definition of something"),
    ("Other entity", "Entity"),
    ("Entity", "Other entity"),
    ("Count", "Count"),
    ("", "Date"),
    ("Numeric value Date Count", "Date"),
    ("Human being, Individual", "Individual"),
    ("Other location State Country", "Other location"),
]

SAMPLES = [
    ("hotpotqa", "Barack Obama", ["Obama", "Barack Hussein Obama II"]),
    ("hotpotqa", "", ["Obama"]),
    ("triviaqa", "\nThe Beatles\nQuestion: next", ["Beatles", "The Beatles (band)"]),
    ("triviaqa", "the rolling stones", ["Rolling Stones"]),
    ("samsum", "Amanda will bring cookies.\nTom: thanks", ["Amanda is bringing cookies to Tom."]),
    ("multi_news", "Two people were hurt. Police are investigating.",
     ["Police are investigating a crash in which two people were hurt.", "A crash hurt two."]),
    ("trec", "Location\nQuestion: where", ["Location"]),
    ("trec", "Type: Human\nmore", ["Individual", "Human"]),
    ("passage_retrieval_en", "Paragraph 5", ["Paragraph 5"]),
    ("passage_count", "There are 7", ["7"]),
    ("lcc", "x = foo(1)\n", ["x = foo(2)"]),
]


def main():
    check_versions()
    cases = []
    for metric, pairs in PAIRS.items():
        for pred, truth in pairs:
            cases.append({"metric": metric, "prediction": pred, "truth": truth,
                          "expected": METRICS[metric](pred, truth)})
    for pred, truth in CLASSIFICATION:
        cases.append({"metric": "classification", "prediction": pred, "truth": truth,
                      "all_classes": CLASSES,
                      "expected": classification(pred, truth, CLASSES)})
    samples = []
    for dataset, pred, answers in SAMPLES:
        samples.append({"dataset": dataset, "prediction": pred, "answers": answers,
                        "all_classes": CLASSES if dataset == "trec" else [],
                        "expected": sample_score(dataset, pred, answers, CLASSES)})
    out = {
        "about": "Expected LongBench metric values from the pinned reference packages; written "
                 "by scripts/make-metric-fixtures.py, do not edit by hand.",
        "packages": PINNED,
        "python": sys.version.split()[0],
        "cases": cases,
        "samples": samples,
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

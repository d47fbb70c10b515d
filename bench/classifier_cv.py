"""Precision and recall of the local spam classifier on the UCI YouTube Spam Collection.

Stratified 10-fold cross-validation, repeated with several seeds, over the five CSV files in
``tests/data/youtube-spam/`` (1,956 labelled comments, CC BY 4.0; see the README there). Each
comment goes through the product's own ``features()`` and ``log_odds()``
(``broadsheet.comments.classifier``) on counts kept in memory: the same arithmetic the guard
runs on the stored counts. "Held" means log-odds above the threshold; the default threshold is
``DiscussionSettings.classifier_threshold``. It is a measurement, not a test (the test with a
fixed seed is in ``tests/test_classifier.py``).

    .venv/bin/python bench/classifier_cv.py [--seeds 1 2 3] [--folds 10] [--names] [--stored]

``--stored`` also measures the stored path on a fresh SQLite file in a temporary directory:
every corpus comment learnt through ``learn()`` (the moderation receiver's code), then the guard
on 200 comments (its queries and time per comment).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "youtube-spam"
THRESHOLDS = (0.0, 1.0, 2.0, 3.0, 5.0)


def setup_django(*, stored: bool = False) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    if stored:
        # It writes 1,956 comments and their counts: never into the site's own database (a
        # DATABASE_URL or BROADSHEET_VAR_DIR set in the shell would point at it), nor its cache.
        workdir = tempfile.mkdtemp(prefix="broadsheet-bench-")
        os.environ["BROADSHEET_VAR_DIR"] = workdir
        os.environ["BROADSHEET_PLAIN_STATIC"] = "1"
        os.environ["DJANGO_SETTINGS_MODULE"] = "broadsheet.config.settings"
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broadsheet.config.settings")
    import django

    django.setup()
    if stored:
        from django.conf import settings

        database = str(settings.DATABASES["default"]["NAME"])
        if not database.startswith(workdir):
            raise SystemExit(f"--stored would write into {database}; refusing.")


def load_rows(directory: Path = DATA) -> list[tuple[str, str, int]]:
    """(text, author, 1 for spam / 0 for ham) for every row of every CSV file."""
    rows = []
    for path in sorted(directory.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            rows += [(r["CONTENT"], r["AUTHOR"], int(r["CLASS"])) for r in csv.DictReader(fh)]
    return rows


def stratified_folds(labels: list[int], k: int, seed: int) -> list[list[int]]:
    """k folds of row indices, each with the same share of spam as the whole corpus."""
    rnd = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rnd.shuffle(members)
        for j, i in enumerate(members):
            folds[j % k].append(i)
    return folds


def cross_validate(
    rows: list[tuple[str, str, int]],
    *,
    seeds=(1, 2, 3),
    k: int = 10,
    thresholds=THRESHOLDS,
    names: bool = False,
) -> dict:
    """Confusion counts per threshold over every fold of every seed, and the time taken."""
    from broadsheet.comments.classifier import HAM, SPAM, MemoryModel, features, log_odds

    started = time.perf_counter()
    tokens = [features(text, author if names else "") for text, author, _ in rows]
    feature_time = time.perf_counter() - started
    labels = [y for _, _, y in rows]
    confusion = {th: Counter() for th in thresholds}
    train_time = score_time = 0.0
    predictions = 0
    for seed in seeds:
        for test in stratified_folds(labels, k, seed):
            held_out = set(test)
            a = time.perf_counter()
            model = MemoryModel()
            for i, y in enumerate(labels):
                if i not in held_out:
                    model.learn(tokens[i], SPAM if y else HAM)
            totals = model.totals()
            b = time.perf_counter()
            for i in test:
                value = log_odds(tokens[i], model, totals)
                for th in thresholds:
                    held = value > th
                    kind = ("tp" if labels[i] else "fp") if held else ("fn" if labels[i] else "tn")
                    confusion[th][kind] += 1
            predictions += len(test)
            train_time += b - a
            score_time += time.perf_counter() - b
    return {
        "confusion": confusion,
        "predictions": predictions,
        "seconds": time.perf_counter() - started,
        "feature_seconds": feature_time,
        "train_seconds": train_time,
        "score_seconds": score_time,
    }


def measure_stored(rows: list[tuple[str, str, int]], guarded: int = 200) -> None:
    """Learn the corpus into the database, then run the guard on ``guarded`` comments."""
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from broadsheet.comments import classifier
    from broadsheet.comments.conf import DiscussionSettings
    from broadsheet.comments.guards import Submission
    from broadsheet.comments.models import Comment
    from broadsheet.comments.services import sync_thread

    call_command("migrate", verbosity=0)
    thread = sync_thread(url="/bench/classifier/", page_id=None, title="Bench", is_open=True)
    now = timezone.now()
    comments = Comment.objects.bulk_create(
        Comment(thread=thread, text=t, author_name=a, author_email="r@example.org", created_at=now)
        for t, a, _ in rows
    )
    started = time.perf_counter()
    for comment, (_, _, label) in zip(comments, rows, strict=True):
        classifier.learn(comment, classifier.SPAM if label else classifier.HAM)
    learnt = time.perf_counter() - started
    cfg = DiscussionSettings()
    held = 0
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        for text, author, _ in rows[:guarded]:
            sub = Submission(
                comment=Comment(thread=thread, text=text, author_name=author), settings=cfg
            )
            held += classifier.classifier_guard(sub) is not None
    guard_time = time.perf_counter() - started
    totals = classifier.stored_totals()
    print(
        f"stored (SQLite): learn() {learnt / len(rows) * 1e3:.2f} ms per decision "
        f"({len(rows)} decisions, vocabulary {totals.vocabulary} tokens); guard "
        f"{guard_time / guarded * 1e3:.2f} ms and {len(queries) / guarded:.0f} queries per "
        f"comment ({held} of {guarded} seen comments held)"
    )


def metrics(c: Counter) -> dict[str, float]:
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "fpr": fpr}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument(
        "--names", action="store_true", help="add the author's name (the guard leaves it out)"
    )
    parser.add_argument("--stored", action="store_true", help="also time the database path")
    args = parser.parse_args()

    setup_django(stored=args.stored)
    from broadsheet.comments.classifier import probability
    from broadsheet.comments.conf import DiscussionSettings

    default = DiscussionSettings().classifier_threshold
    thresholds = tuple(sorted({*THRESHOLDS, default}))
    rows = load_rows()
    spam = sum(y for _, _, y in rows)
    result = cross_validate(
        rows, seeds=args.seeds, k=args.folds, thresholds=thresholds, names=args.names
    )
    print(
        f"{len(rows)} comments ({spam} spam, {len(rows) - spam} ham); "
        f"{len(args.seeds)} x stratified {args.folds}-fold cross-validation "
        f"(seeds {', '.join(map(str, args.seeds))}), {result['predictions']} predictions; "
        f"features: text{' + author name' if args.names else ''}"
    )
    print(
        f"{'hold if log-odds >':>20} {'(p spam)':>9} {'precision':>9} {'recall':>7} "
        f"{'F1':>6} {'FPR':>6}   tp/fp/fn/tn"
    )
    for th in thresholds:
        c = result["confusion"][th]
        m = metrics(c)
        mark = " (default)" if th == default else ""
        print(
            f"{th:>20.1f} {probability(th):>9.2f} {m['precision']:>9.3f} {m['recall']:>7.3f} "
            f"{m['f1']:>6.3f} {m['fpr']:>6.3f}   {c['tp']}/{c['fp']}/{c['fn']}/{c['tn']}{mark}"
        )
    n = result["predictions"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"time: {result['seconds']:.2f} s in all (features {result['feature_seconds']:.2f} s, "
        f"training {result['train_seconds']:.2f} s, scoring {result['score_seconds']:.2f} s = "
        f"{result['score_seconds'] / n * 1e3:.3f} ms per comment); peak RSS {rss:.0f} MB"
    )
    if args.stored:
        measure_stored(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Multinomial naive Bayes, pure Python, stratified 10-fold CV on the UCI YouTube Spam Collection."""
import csv, glob, html, math, random, re, sys, time
from collections import Counter

TAG = re.compile(r"<[^>]+>")
URL = re.compile(r"https?://|www\.|\.com\b|\.ly\b|watch\?v=", re.I)
WORD = re.compile(r"[^\W_]+", re.U)

def tokens(text):
    text = html.unescape(TAG.sub(" ", text))
    toks = [w.lower() for w in WORD.findall(text)]
    feats = toks + [a + "_" + b for a, b in zip(toks, toks[1:])]  # unigrams + bigrams
    if URL.search(text):
        feats.append("__url__")
    return feats

class NB:
    def __init__(self, alpha=1.0):
        self.alpha = alpha
        self.counts = {0: Counter(), 1: Counter()}
        self.docs = Counter()
    def learn(self, feats, label):  # incremental: one moderation decision at a time
        self.counts[label].update(feats); self.docs[label] += 1
    def freeze(self):  # totals once per model, as a stored model would keep them
        self.vocab = len(set(self.counts[0]) | set(self.counts[1]))
        self.tot = {c: sum(self.counts[c].values()) for c in (0, 1)}
    def spam_logodds(self, feats):
        vocab, tot = self.vocab, self.tot
        score = math.log((self.docs[1] + 1) / (self.docs[0] + 1))
        for f in feats:
            if f not in self.counts[0] and f not in self.counts[1]:
                continue  # unseen everywhere: no evidence
            p1 = (self.counts[1][f] + self.alpha) / (tot[1] + self.alpha * vocab)
            p0 = (self.counts[0][f] + self.alpha) / (tot[0] + self.alpha * vocab)
            score += math.log(p1 / p0)
        return score

rows = []
for f in sorted(glob.glob("/tmp/issue5/youtube/Youtube0*.csv")):
    with open(f, encoding="utf-8", newline="") as fh:
        rows += [(r["CONTENT"], int(r["CLASS"])) for r in csv.DictReader(fh)]
assert len(rows) == 1956, len(rows)

def stratified_folds(rows, k, seed):
    rnd = random.Random(seed)
    idx = {c: [i for i, r in enumerate(rows) if r[1] == c] for c in (0, 1)}
    folds = [[] for _ in range(k)]
    for c in (0, 1):
        rnd.shuffle(idx[c])
        for j, i in enumerate(idx[c]):
            folds[j % k].append(i)
    return folds

UNI = "--unigrams" in sys.argv
feats = [[f for f in tokens(t) if not UNI or "_" not in f.strip("_")] for t, _ in rows]
thresholds = [0.0, 2.0, 5.0]
t0 = time.perf_counter()
results = {th: Counter() for th in thresholds}
train_time = score_time = 0.0
for seed in (1, 2, 3):
    folds = stratified_folds(rows, 10, seed)
    for k, test in enumerate(folds):
        test_set = set(test)
        m = NB()
        a = time.perf_counter()
        for i in range(len(rows)):
            if i not in test_set:
                m.learn(feats[i], rows[i][1])
        m.freeze()
        b = time.perf_counter()
        for i in test:
            s = m.spam_logodds(feats[i])
            for th in thresholds:
                pred = 1 if s > th else 0
                gold = rows[i][1]
                results[th][("tp" if gold else "fp") if pred else ("fn" if gold else "tn")] += 1
        train_time += b - a; score_time += time.perf_counter() - b
elapsed = time.perf_counter() - t0
print(f"rows={len(rows)} spam={sum(r[1] for r in rows)} ham={sum(1-r[1] for r in rows)}; 3 x stratified 10-fold CV")
for th in thresholds:
    c = results[th]
    p = c["tp"] / (c["tp"] + c["fp"]); r = c["tp"] / (c["tp"] + c["fn"])
    fpr = c["fp"] / (c["fp"] + c["tn"]); f1 = 2 * p * r / (p + r)
    acc = (c["tp"] + c["tn"]) / sum(c.values())
    print(f"hold if log-odds > {th}: precision={p:.3f} recall={r:.3f} F1={f1:.3f} FPR={fpr:.3f} acc={acc:.3f} {dict(c)}")
print(f"total {elapsed:.2f}s for 30 folds (train {train_time:.2f}s, score {score_time:.2f}s); "
      f"per comment score {score_time/ (3*len(rows))*1e3:.2f} ms")

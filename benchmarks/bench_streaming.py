"""Streaming: MixupLogisticRegression.partial_fit against its fit and SGDClassifier.

A product-review-like table (synthetic, 4,000 rows: a free-text review, nullable
Float64/Int64/boolean columns with pd.NA, a category, a 350-level string column, an
integer code and a string target; 3,000 training rows streamed in six chunks of 500,
1,000 held out) goes through one ColumnTransformer (TF-IDF, imputation, scaling,
one-hot), fitted once on the training rows. Then, on the same transformed chunks
in the same order:

* ``fit``: MixupLogisticRegression fitted on all training rows at once;
* ``partial_fit``: MixupLogisticRegression streamed for P passes over the chunks;
* ``SGD``: SGDClassifier(loss="log_loss") streamed the same way (its defaults).

The table gives held-out accuracy per number of passes and the coefficients'
distance to fit's, relative to their norm. Every estimator runs in this process::

    python benchmarks/bench_streaming.py
    python benchmarks/bench_streaming.py --seeds 0 1 2 --passes 1 2 4 10 20 40
"""

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmixup.linear_model import MixupLogisticRegression

GOOD = "great solid fast works love sturdy bright recommend perfect easy".split()
BAD = "broken late cheap poor returned flimsy noisy refund leaking slow".split()
NEUTRAL = "box item color size arrived order product week price use daily it".split()


def review_table(n=4000, seed=0):
    """The synthetic product-review table and its string target."""
    rng = np.random.RandomState(seed)
    quality = rng.randn(n)  # the latent the columns are noisy views of
    words = []
    for q in quality:
        k = rng.randint(4, 12)
        p_good = 1 / (1 + np.exp(-1.2 * q))
        kinds = rng.rand(k)
        chosen = [
            rng.choice(GOOD if u < 0.35 * p_good else BAD)
            if u < 0.35
            else rng.choice(NEUTRAL)
            for u in kinds
        ]
        words.append(" ".join(chosen))
    price = pd.array(rng.lognormal(3, 0.6, n) - 3 * quality, dtype="Float64")
    price[rng.rand(n) < 0.1] = pd.NA
    votes = pd.array(rng.poisson(np.exp(1 + 0.3 * quality)), dtype="Int64")
    votes[rng.rand(n) < 0.1] = pd.NA
    verified = pd.array(rng.rand(n) < 0.5 + 0.1 * np.tanh(quality), dtype="boolean")
    verified[rng.rand(n) < 0.05] = pd.NA
    brand_effect = rng.randn(350)
    brand = rng.randint(350, size=n)
    X = pd.DataFrame(
        {
            "review": pd.array(words, dtype="string"),
            "price": price,
            "votes": votes,
            "verified": verified,
            "category": pd.Categorical(rng.choice(list("ABCDEFGH"), n)),
            "brand": pd.array([f"brand{b:03d}" for b in brand], dtype="string"),
            "code": rng.randint(0, 50, n),
        }
    )
    signal = quality + 0.5 * brand_effect[brand] + 0.8 * rng.randn(n)
    y = np.where(signal > 0.3, "positive", "negative")
    return X, y


def preprocessor():
    cat = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    return ColumnTransformer(
        [
            ("text", TfidfVectorizer(), "review"),
            (
                "num",
                make_pipeline(SimpleImputer(), StandardScaler()),
                ["price", "votes", "code"],
            ),
            ("cat", cat, ["category", "brand"]),
            ("bool", cat, ["verified"]),
        ]
    )


def stream(model, chunks, classes, passes):
    for _ in range(passes):
        for X, y in chunks:
            model.partial_fit(X, y, classes=classes)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--passes", type=int, nargs="+", default=[1, 2, 4, 10, 20])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        X, y = review_table(seed=seed)
        train, test = slice(0, 3000), slice(3000, None)
        pre = preprocessor().fit(X.iloc[train], y[train])
        Xt, Xs = pre.transform(X.iloc[train]), pre.transform(X.iloc[test])
        yt, ys = y[train], y[test]
        chunks = [(Xt[i : i + 500], yt[i : i + 500]) for i in range(0, 3000, 500)]
        classes = np.unique(y)
        t0 = time.perf_counter()
        full = MixupLogisticRegression(random_state=seed).fit(Xt, yt)
        t_fit = time.perf_counter() - t0
        ref = np.concatenate([full.coef_.ravel(), full.intercept_])
        acc_fit = full.score(Xs, ys)
        for passes in args.passes:
            t0 = time.perf_counter()
            ours = stream(
                MixupLogisticRegression(random_state=seed), chunks, classes, passes
            )
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            sgd = stream(
                SGDClassifier(loss="log_loss", random_state=seed),
                chunks,
                classes,
                passes,
            )
            t_sgd = time.perf_counter() - t0
            coef = np.concatenate([ours.coef_.ravel(), ours.intercept_])
            rows.append(
                (
                    seed,
                    passes,
                    acc_fit,
                    ours.score(Xs, ys),
                    sgd.score(Xs, ys),
                    np.linalg.norm(coef - ref) / np.linalg.norm(ref),
                    t_ours / t_fit,
                    t_ours / t_sgd,
                )
            )
    print(f"{Xt.shape[1]} features after preprocessing; fit in {t_fit:.2f} s")
    header = (
        "seed passes  acc_fit  acc_partial  acc_SGD  partial-fit  "
        "|coef-fit|/|fit|  time/fit  time/SGD"
    )
    print(header)
    for seed, p, a_fit, a_ours, a_sgd, dist, r_fit, r_sgd in rows:
        print(
            f"{seed:>4} {p:>6}  {a_fit:7.3f}  {a_ours:11.3f}  {a_sgd:7.3f}  "
            f"{a_ours - a_fit:+11.3f}  {dist:16.3f}  {r_fit:8.2f}  {r_sgd:8.1f}"
        )


if __name__ == "__main__":
    main()

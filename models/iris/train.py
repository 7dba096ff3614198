#!/usr/bin/python3
"""Train the reference iris model that Berth's built-in model server ships.

Run from the repository root:

    /usr/bin/python3 models/iris/train.py   # Debian python3-xgboost 1.7.4, python3-sklearn 1.2.1

Writes, next to this script:
  model.bin      XGBoost binary model (the format github.com/dmitryikh/leaves reads)
  metadata.json  name, version, feature and class names, format
  testdata.json  held-out rows with XGBoost's own predict_proba output
"""
import json
import os

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

SEED = 42
OUT = os.path.dirname(os.path.abspath(__file__))

iris = load_iris()
X, y = iris.data, iris.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=30, random_state=SEED, stratify=y
)

clf = xgb.XGBClassifier(
    n_estimators=20,
    max_depth=3,
    learning_rate=0.3,
    objective="multi:softprob",
    random_state=SEED,
    n_jobs=1,
)
clf.fit(X_train, y_train)

booster = clf.get_booster()
booster.save_model(os.path.join(OUT, "model.bin"))

# XGBoost scores in float32; store the rows exactly as it saw them.
X_test32 = X_test.astype(np.float32)
proba = clf.predict_proba(X_test32)
classes = [str(c) for c in iris.target_names]

feature_names = [
    "sepal_length_cm",
    "sepal_width_cm",
    "petal_length_cm",
    "petal_width_cm",
]

with open(os.path.join(OUT, "metadata.json"), "w") as f:
    json.dump(
        {
            "name": "iris",
            "version": "1",
            "format": "xgboost-binary",
            "model_file": "model.bin",
            "objective": "multi:softprob",
            "features": feature_names,
            "classes": classes,
            "training": {
                "library": "xgboost " + xgb.__version__,
                "dataset": "sklearn.datasets.load_iris",
                "n_estimators": 20,
                "max_depth": 3,
                "test_size": 30,
                "seed": SEED,
            },
        },
        f,
        indent=2,
    )
    f.write("\n")

with open(os.path.join(OUT, "testdata.json"), "w") as f:
    json.dump(
        {
            "classes": classes,
            "rows": [[float(v) for v in r] for r in X_test32],
            "labels": [classes[int(t)] for t in y_test],
            "probabilities": [[float(p) for p in r] for r in proba],
        },
        f,
        indent=1,
    )
    f.write("\n")

acc = float((proba.argmax(axis=1) == y_test).mean())
print(f"xgboost {xgb.__version__}: held-out accuracy {acc:.3f} on {len(y_test)} rows")

"""Signal check for the synthetic chest radiographs.

Reads every admission chest radiograph (DX/CR) with pydicom, converts it to a
MONOCHROME2 display in [0,1] using the stored bit depth, and computes simple
lung-region statistics from fixed boxes (right and left lower/mid zones)
relative to the mediastinum and the background. A logistic regression with
5-fold cross-validation predicts COVID positivity; AUROC is reported for the
true labels and for shuffled labels (mean over permutations).

usage: signal.py DATASET_DIR  -> prints JSON
"""
import json, sys, os
import numpy as np
import pydicom
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict, StratifiedKFold
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

root = sys.argv[1]
key = json.load(open(os.path.join(root, 'answer-key.json')))
X, y = [], []
for p in key['patients']:
    adm = [s for s in p['studies'] if s['role'] == 'admission']
    if not adm:
        continue
    idx = adm[0]['index']
    inst = [i for i in p['instances'] if i['studyIndex'] == idx and i['modality'] in ('DX', 'CR')]
    for i in inst:
        ds = pydicom.dcmread(os.path.join(root, i['path']))
        a = ds.pixel_array.astype(np.float32) / float((1 << int(ds.BitsStored)) - 1)
        if ds.PhotometricInterpretation == 'MONOCHROME1':
            a = 1.0 - a
        h, w = a.shape
        box = lambda y0, y1, x0, x1: a[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
        lungs = np.concatenate([box(0.35, 0.62, 0.22, 0.36).ravel(), box(0.35, 0.62, 0.64, 0.78).ravel()])
        medi = box(0.3, 0.5, 0.47, 0.53)
        air = np.concatenate([box(0.02, 0.1, 0.0, 0.04).ravel(), box(0.02, 0.1, 0.96, 1.0).ravel()])
        span = max(1e-3, float(medi.mean() - air.mean()))
        rel = (lungs.mean() - air.mean()) / span
        X.append([rel, lungs.std() / span, np.percentile(lungs, 90) / span - np.percentile(lungs, 10) / span])
        y.append(1 if p['label'] == 'positive' else 0)
X = np.array(X); y = np.array(y)
clf = make_pipeline(StandardScaler(), LogisticRegression())
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
score = cross_val_predict(clf, X, y, cv=cv, method='predict_proba')[:, 1]
auc = roc_auc_score(y, score)
rng = np.random.default_rng(0)
shuf = []
for k in range(20):
    ys = rng.permutation(y)
    s = cross_val_predict(clf, X, ys, cv=cv, method='predict_proba')[:, 1]
    shuf.append(roc_auc_score(ys, s))
print(json.dumps({'n': int(len(y)), 'positives': int(y.sum()), 'auroc': float(auc), 'auroc_single_feature': float(roc_auc_score(y, X[:, 0])), 'shuffled_mean': float(np.mean(shuf)), 'shuffled_min': float(np.min(shuf)), 'shuffled_max': float(np.max(shuf))}))

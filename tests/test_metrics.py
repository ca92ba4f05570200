import numpy as np
import pytest

from edgeecg.metrics import classification_report, pr_curve, roc_curve


def test_report_against_hand_computed_values():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 3])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2, 0, 3])
    r = classification_report(y_true, y_pred)
    assert r["per_class"]["N"] == {"se": 75.0, "ppv": 60.0, "f1": pytest.approx(66.667, abs=1e-3), "support": 4}
    assert r["per_class"]["S"] == {"se": 50.0, "ppv": 50.0, "f1": 50.0, "support": 2}
    assert r["per_class"]["V"]["se"] == pytest.approx(66.667, abs=1e-3) and r["per_class"]["V"]["ppv"] == 100.0
    assert r["per_class"]["Q"] == {"se": 0.0, "ppv": 0.0, "f1": 0.0, "support": 0}
    assert r["accuracy"] == 70.0
    assert r["macro_f1"] == pytest.approx((66.667 + 50 + 80 + 100) / 4, abs=1e-3)
    assert np.array(r["confusion"]).sum() == 10 and r["labels"] == ["N", "S", "V", "F", "Q"]


def test_roc_and_pr_of_a_perfect_score():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.8, 0.9])
    assert roc_curve(y, s)[2] == 1.0
    assert pr_curve(y, s)[2] == 1.0
    assert roc_curve(y, -s)[2] == 0.0

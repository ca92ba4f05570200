"""Patient-grouped cross-validation on the training pool: where every recipe choice is made.

The pool is the recipe's DS1 records plus every patient of its ``[[sources]]`` (e.g. the shared
SVDB records, as ``svdb/801``). Each patient's beats sit in exactly one fold (scikit-learn's ``StratifiedGroupKFold``, the record
as the group, the AAMI class as the stratum, so every fold holds some S, V and F beats where DS1
allows). A model is trained on the other folds' records and predicts the held-out ones after every
epoch; the out-of-fold predictions of all records are pooled and scored like DS2. With the
``constant`` learning-rate schedule the weights after epoch ``e`` do not depend on the planned
epoch count, so the pooled curve chooses the epoch count of the final model exactly: the final
model trained on all of DS1 for ``chosen_epochs`` is what each fold would have been at that epoch.
At that epoch each fold's model is also quantized as ``edgeecg quantize`` ships it (calibrated on the
fold's training beats) and its held-out patients are classified by the integer reference, which is
bit-exact with the generated C: ``cv.json``'s ``int8`` block, the out-of-fold figures of what ships.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeecg.config import Config, config_to_dict
from edgeecg.data import (PRIMARY, BeatSet, Source, load_pool, other_lead_beats, record_hours, resolve_sources,
                          source_patients, swap_other_lead)
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import (
    DELTAS,
    agreement,
    classification_report,
    database_masks,
    database_reports,
    false_alarms,
    per_record_report,
    summarise,
)


def cv_records(cfg: Config) -> tuple[str, ...]:
    """The MIT-BIH records cross-validation folds: the recipe's train and val records (DS1), paced ones out."""
    records = tuple(dict.fromkeys(cfg.split.train + cfg.split.val))
    return tuple(r for r in records if r not in cfg.split.exclude)


def pool_label(database: str) -> str:
    """How a database's patients in the training pool are named in reports: MIT-BIH's are DS1."""
    return "DS1" if database == PRIMARY else database.upper()


def cv_pool(data_dir: Path, cfg: Config, sources: dict[str, Source] | None = None) -> tuple[str, ...]:
    """Every patient cross-validation folds: :func:`cv_records` and the recipe's sources' patients
    (``sources``: already resolved by :func:`~edgeecg.data.resolve_sources`)."""
    return cv_records(cfg) + source_patients(data_dir, cfg, sources)


def record_folds(beats: BeatSet, n_folds: int, seed: int) -> list[tuple[str, ...]]:
    """Records of each fold: whole records per fold, the class mix as even as the records allow."""
    n_records = len(np.unique(beats.record))
    if not 2 <= n_folds <= n_records:
        raise EdgeECGError(f"--folds {n_folds}: need between 2 and the number of records ({n_records})")
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [tuple(sorted(set(beats.record[test].tolist())))
            for _, test in splitter.split(np.zeros(len(beats)), beats.y, groups=beats.record)]


def database_figures(y: np.ndarray, pred: np.ndarray, record: np.ndarray,
                     hours: dict[str, float] | None) -> tuple[dict, dict | None]:
    """Per database of the pool: its classification report, and its false S/V calls per hour of
    recording per record (None without ``hours``)."""
    alarms = ({db: false_alarms(per_record_report(y[m], pred[m], record[m]), hours)
               for db, m in database_masks(record).items()} if hours else None)
    return database_reports(y, pred, record), alarms


@dataclass
class CVResult:
    folds: list[tuple[str, ...]]
    y: np.ndarray                # labels of every DS1 beat, in load order
    record: np.ndarray           # record of every beat
    proba: np.ndarray            # (epochs, beats, classes): out-of-fold probabilities after each epoch
    chosen_epochs: int
    hours: dict[str, float] | None = None   # hours of recording per patient (false alarms per hour)
    reports: list[dict] | None = None   # pooled classification report after each epoch (None: not yet scored)
    int8: np.ndarray | None = None      # out-of-fold classes of each fold's shipped int8 graph at the chosen epoch
    int8_unavailable: str | None = None  # why there are none (the model has no int8 export; --no-int8)
    int8_options: dict[str, np.ndarray] | None = None   # the same under further quantize options, by name
    int8_folds: list[dict] | None = None     # per fold: the decision offsets its shipped graph chose

    def epoch_reports(self) -> list[dict]:
        """The pooled report after each epoch, scored once (``cross_validate`` already has them)."""
        if self.reports is None:
            self.reports = [classification_report(self.y, p.argmax(1)) for p in self.proba]
        return self.reports


def choose_epochs(curve: list[float], schedule: str) -> int:
    """The epoch with the best pooled macro-F1 (``constant`` schedule); with ``onecycle`` only the
    last epoch is what a final run of that length would give."""
    if schedule != "constant":
        return len(curve)
    return int(np.argmax(curve)) + 1


OFFSET_GRID = np.round(np.arange(-2.0, 2.01, 0.25), 2)   # logit offsets tried for S and for V


def choose_offsets(proba: np.ndarray, y: np.ndarray, grid: np.ndarray = OFFSET_GRID) -> tuple[list[float], dict]:
    """The S and V logit offsets (added to log-probabilities) with the best pooled out-of-fold macro-F1.

    A class-prior adjustment: it moves the S/N and V/N decision thresholds of a trained model.
    Returns the five offsets (N, F and Q stay 0) and the report with them; ties keep the smaller
    adjustment. Chosen on DS1 out-of-fold predictions only, like every other recipe choice.
    """
    logp = np.log(np.clip(proba.astype(np.float64), 1e-12, 1.0))
    best = None
    for s in grid:
        for v in grid:
            offsets = np.array([0.0, s, v, 0.0, 0.0])
            rep = classification_report(y, (logp + offsets).argmax(1))
            key = (rep["macro_f1"], -abs(s) - abs(v))
            if best is None or key > best[0]:
                best = (key, offsets, rep)
    return [float(o) for o in best[1]], best[2]


def fold_train(beats: BeatSet, extra: BeatSet, held_out) -> BeatSet:
    """A fold's training beats: the pool's and the train-only beats of every patient it does not hold out."""
    return BeatSet.concat([beats.subset(~np.isin(beats.record, held_out)),
                           extra.subset(~np.isin(extra.record, held_out))])


def cross_validate(cfg: Config, data_dir: Path, n_folds: int = 5, seed: int = 0, progress: bool = False,
                   log=print, cache_dir: Path | None = None, choose: bool = True, int8: bool = True,
                   quantize: dict | None = None) -> CVResult:
    """Train one model per fold on the other folds' records; out-of-fold probabilities per epoch.
    ``choose``: score at the epoch of the best pooled macro-F1; False: at the last epoch (the recipe
    as it is, e.g. its out-of-fold figures for another CV seed once the epoch count is fixed).
    ``int8``: also quantize each fold's model at that epoch as ``edgeecg quantize`` would (calibrated
    on the fold's training beats) and classify its held-out patients with the integer reference,
    which is bit-exact with the generated C: the out-of-fold figures of what ships. ``quantize``: further
    option sets (name: :class:`~edgeecg.quantize.QuantizeOptions`) each fold's model is also quantized
    with, the same float models for all; their out-of-fold classes are ``result.int8_options[name]``."""
    import copy

    from edgeecg.train import predict_proba, train_model

    sources = resolve_sources(data_dir, cfg)
    pool = cv_pool(data_dir, cfg, sources)
    beats = load_pool(data_dir, cfg, pool, cache_dir, sources)
    extra = other_lead_beats(data_dir, cfg, pool, cache_dir, sources)   # train-only ([[sources]] train_other_lead)
    trained = swap_other_lead(data_dir, cfg, beats, cache_dir, sources)  # what training reads of the pool's beats
    folds = record_folds(beats, n_folds, seed)
    n_epochs = cfg.train.epochs
    proba = np.zeros((n_epochs, len(beats), 5), np.float32)
    snapshots: list[list] = []          # each fold's model after each epoch (small: kept for int8)
    tests = [np.isin(beats.record, held_out) for held_out in folds]
    for k, (held_out, test) in enumerate(zip(folds, tests)):
        held = beats.subset(test)
        log(f"fold {k + 1}/{len(folds)}: held out {', '.join(held_out)} ({len(held):,d} beats: "
            + ", ".join(f"{c} {n}" for c, n in held.counts().items() if n) + ")")
        snapshots.append([])

        def keep(epoch, model, test=test, held=held, kept=snapshots[-1]):
            proba[epoch - 1, test] = predict_proba(model, held, next(model.parameters()).device)
            if int8:
                kept.append(copy.deepcopy(model).cpu().eval())

        train_model(cfg, {"train": fold_train(trained, extra, held_out)}, progress=progress, on_epoch=keep)
    reports = [classification_report(beats.y, p.argmax(1)) for p in proba]
    chosen = choose_epochs([r["macro_f1"] for r in reports], cfg.train.schedule) if choose else n_epochs
    result = CVResult(folds, beats.y, beats.record, proba, chosen, reports=reports,
                      hours=record_hours(data_dir, pool, cfg))
    if not int8:
        result.int8_unavailable = "not asked for (--no-int8)"
        return result
    from edgeecg.quant import read_tflite
    from edgeecg.quantize import int8_unavailable, shipped_conversion
    from edgeecg.runtimes import Int8GraphRunner

    try:
        result.int8_unavailable = int8_unavailable(snapshots[0][chosen - 1], cfg)
    except EdgeECGError as err:         # e.g. a window the int8 export cannot take: the float figures stand
        result.int8_unavailable = str(err)
    if result.int8_unavailable is None:
        result.int8 = np.full(len(beats), -1, np.int64)
        result.int8_options = {name: np.full(len(beats), -1, np.int64) for name in quantize or {}}
        result.int8_folds = []
        outputs = [(result.int8, None)] + [(result.int8_options[n], opts) for n, opts in (quantize or {}).items()]
        for k, test in enumerate(tests):
            log(f"fold {k + 1}/{len(folds)}: int8 graph of epoch {chosen} on the held-out patients ...")
            train, held = {"train": fold_train(trained, extra, folds[k])}, beats.subset(test)
            for out, opts in outputs:                # the shipped defaults (None), then each further set
                conversion = shipped_conversion(snapshots[k][chosen - 1], cfg, train, opts)
                out[test] = Int8GraphRunner(read_tflite(conversion.tflite)).classify(held.x, held.rr)[1]
                if opts is None:
                    result.int8_folds.append({"fold": k + 1, "decision_offsets": None if conversion.offsets is None
                                              else conversion.offsets.as_dict()})
    return result


def int8_vs_float(y: np.ndarray, pred: np.ndarray, float_pred: np.ndarray, record: np.ndarray,
                  float_per_db: dict) -> dict:
    """Per database: int8 minus float (pp) of macro-F1, S Se and V Se, and the share of beats given the
    same class (%); ``float_per_db``: float's per-database reports (``cv.json``'s ``int8.vs_float``)."""
    out = {}
    for db, m in database_masks(record).items():
        row = summarise(y[m], pred[m], float_per_db[db])
        out[db] = {k: row[k] for k in DELTAS} | {"agreement_with_float": agreement(pred[m], float_pred[m])}
    return out


def int8_block(result: CVResult, float_pred: np.ndarray, float_per_db: dict) -> dict:
    """``cv.json``'s ``int8``: the out-of-fold figures of each fold's shipped int8 graph (pooled, per
    database, per record, false alarms) and their differences from float (``float_per_db``: its
    per-database reports), per database."""
    if result.int8 is None:
        return {"unavailable": result.int8_unavailable}
    y, pred, record = result.y, result.int8, result.record
    per_db, alarms = database_figures(y, pred, record, result.hours)
    vs_float = int8_vs_float(y, pred, float_pred, record, float_per_db)
    return {"kind": "integer reference (bit-exact with the generated C), each fold's model quantized as "
                    "`edgeecg quantize` does, calibrated on the fold's training beats",
            "pooled": classification_report(y, pred), "per_database": per_db, "false_alarms": alarms,
            "vs_float": vs_float, "per_record": per_record_report(y, pred, record),
            "folds": result.int8_folds or []}


def cv_json(result: CVResult, cfg: Config, n_folds: int, seed: int) -> dict:
    """``cv.json``: per-fold and pooled reports at the chosen epoch, the pooled curve, per record."""
    e = result.chosen_epochs
    pred = result.proba[e - 1].argmax(1)
    folds = []
    for held_out in result.folds:
        m = np.isin(result.record, held_out)
        folds.append({"records": list(held_out), "report": classification_report(result.y[m], pred[m])})
    curve = []
    for epoch, rep in enumerate(result.epoch_reports(), start=1):
        curve.append({"epoch": epoch, "macro_f1": rep["macro_f1"],
                      **{f"{c}_{k}": rep["per_class"][c][k] for c in ("S", "V") for k in ("se", "ppv")}})
    extra, adjusted = choose_offsets(result.proba[e - 1], result.y)
    offsets = [round(a + b, 3) for a, b in zip(cfg.model.params.get("logit_offsets", [0.0] * 5), extra)]
    per_db, alarms = database_figures(result.y, pred, result.record, result.hours)
    return {
        "folds": folds,
        "pooled": result.epoch_reports()[e - 1],
        "per_database": per_db, "false_alarms": alarms,
        "logit_offsets": offsets,
        "pooled_with_offsets": adjusted,
        "per_record": per_record_report(result.y, pred, result.record),
        "int8": int8_block(result, pred, per_db),
        "chosen_epochs": e,
        "curve": curve,
        "n_folds": n_folds, "seed": seed,
        "config": config_to_dict(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=e))),
    }


def _row(label: str, rep: dict) -> str:
    pc = rep["per_class"]
    return (f"| {label} | {rep['macro_f1']:.1f} | {pc['S']['se']:.1f} | {pc['S']['ppv']:.1f} | {pc['V']['se']:.1f} "
            f"| {pc['V']['ppv']:.1f} | {pc['F']['se']:.1f} | {pc['N']['se']:.1f} | {sum(v['support'] for v in pc.values()):,d} |")


def cv_markdown(cv: dict, command: str = "") -> str:
    """``cv.md``: pooled and per-fold figures, and S/V per record, at the chosen epoch."""
    head = "| | macro-F1 | S Se | S +P | V Se | V +P | F Se | N Se | beats |\n|---|---|---|---|---|---|---|---|---|"
    dbs = cv.get("per_database") or {}
    pool = " + ".join(pool_label(db) for db in dbs) or "DS1"
    lines = [f"# Patient-grouped cross-validation on {pool} ({cv['n_folds']} folds, seed {cv['seed']})", ""]
    if command:
        lines += [f"`{command}`", ""]
    how = ("the last epoch run, --at-last-epoch" if "--at-last-epoch" in cv.get("command", "")
           else f"chosen: best pooled macro-F1 of the {len(cv['curve'])} epochs run")
    lines += [f"Out-of-fold predictions of every patient after epoch {cv['chosen_epochs']} ({how}).", "", head,
              _row("**pooled**", cv["pooled"])]
    lines += [_row(f"**{pool_label(db)} only**", rep) for db, rep in dbs.items() if len(dbs) > 1]
    lines += [_row(f"fold {i + 1}: {', '.join(f['records'])}", f["report"]) for i, f in enumerate(cv["folds"])]
    q = cv.get("int8") or {}
    if q.get("pooled"):
        lines += [_row("**int8, pooled**", q["pooled"])]
        lines += [_row(f"**int8, {pool_label(db)} only**", rep) for db, rep in q["per_database"].items() if len(dbs) > 1]
    alarms = cv.get("false_alarms") or {}
    if alarms:
        lines += ["", "False S or V calls per hour of recording, per record: median, 90th percentile, mean, "
                  "largest (record).", ""]
        for kind, block in (("float", alarms), ("int8", q.get("false_alarms") or {})):
            for db, fa in block.items():
                sm = fa["summary"]
                lines.append(f"- {pool_label(db)}, {kind}: {sm['median']:.1f} / {sm['p90']:.1f} / {sm['mean']:.1f} / "
                             f"{sm['max']:.1f} ({sm['worst_record']})")
    if q.get("vs_float"):
        lines += ["", "int8 (each fold's shipped graph; its integer reference is bit-exact with the generated C) "
                  "minus float, pp:", ""]
        lines += [f"- {pool_label(db)}: macro-F1 {d['delta_macro_f1']:+.2f}, S Se {d['delta_S_se']:+.2f}, "
                  f"V Se {d['delta_V_se']:+.2f}; same class as float on {d['agreement_with_float']:.2f} % of beats"
                  for db, d in q["vs_float"].items()]
        chosen = [f"fold {f['fold']}: S {o['offsets'][1]:+.2f}, V {o['offsets'][2]:+.2f} (z {o['z']:.2f})"
                  for f in q.get("folds", []) if (o := f["decision_offsets"]) and o["kept"] and any(o["offsets"])]
        lines += ["", "Decision offsets kept in the int8 graphs (quantize's default, chosen on each fold's training "
                  "beats): " + ("; ".join(chosen) if chosen else "none") + "."]
    elif q.get("unavailable"):
        lines += ["", f"No int8 figures: {q['unavailable']}."]
    per_hour = {r: v for fa in alarms.values() for r, v in fa["per_record"].items()}
    lines += ["", "Per record (held out in its fold): S and V beats found / held, predicted, and false S+V calls "
              "per hour.", "",
              "| record | S found / held | S predicted | V found / held | V predicted | false S+V / h |",
              "|---|---|---|---|---|---|"]
    for rec, v in cv["per_record"].items():
        s, vv = v["S"], v["V"]
        fh = per_hour.get(rec, {}).get("false_SV_per_hour")
        lines.append(f"| {rec} | {s['tp']} / {s['support']} | {s['predicted']} | {vv['tp']} / {vv['support']} "
                     f"| {vv['predicted']} | {'–' if fh is None else f'{fh:.1f}'} |")
    return "\n".join(lines) + "\n"


def write_cv(out: Path, result: CVResult, cfg: Config, n_folds: int, seed: int, command: str = "",
             force: bool = False) -> dict:
    """``cv.json``, ``cv.md``, ``oof.npz`` (out-of-fold probabilities) and plots, written atomically."""
    import json

    from edgeecg import plots
    from edgeecg.atomic import atomic_dir

    cv = cv_json(result, cfg, n_folds, seed)
    cv["command"] = command
    with atomic_dir(out, force=force) as tmp:
        (tmp / "cv.json").write_text(json.dumps(cv, indent=2) + "\n", encoding="utf-8")
        (tmp / "cv.md").write_text(cv_markdown(cv, command), encoding="utf-8")
        np.savez_compressed(tmp / "oof.npz", proba=result.proba[result.chosen_epochs - 1], y=result.y,
                            record=result.record)
        (tmp / "plots").mkdir()
        plots.cv_curve(cv["curve"], cv["chosen_epochs"], tmp / "plots" / "cv_curve.png")
        plots.per_record(cv["per_record"], "DS1 out-of-fold", tmp / "plots" / "per_record_cv.png")
        plots.confusion_matrix(cv["pooled"]["confusion"], "DS1 out-of-fold", tmp / "plots" / "confusion_cv.png")
    return cv

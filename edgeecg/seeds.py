"""``edgeecg seeds``: the final protocol for several seeds, float and int8 C, mean, sd and worst.

Each seed trains the recipe on its training records (DS1 and the shared SVDB records for the default
recipe), is quantized for a target, and is scored on DS2 as the float model and as the generated int8 C.
``seeds.json`` holds every seed's DS2 report, their mean, standard deviation and worst value, and
the S/V figures per DS2 record; an external database's (``external``) and the recipe's own databases
out of fold (``held_out``, from its CV runs). Every scored set also stands at the top level under its
name (``ds2``, ``svdb``, ...) in one schema with each bar's verdict, listed in ``scored``.
``seeds.md`` is the table the README shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.metrics import DELTAS, MACRO_CLASSES, false_alarms
from edgeecg.processing.aami import CLASSES

# (label, class, key) rows of the Markdown table; the bar is the issue's, for the int8 C mean.
TABLE_ROWS = (("S Se", "S", "se"), ("S +P", "S", "ppv"), ("V Se", "V", "se"), ("V +P", "V", "ppv"),
              ("F Se", "F", "se"), ("N Se", "N", "se"), ("macro-F1 (N,S,V,F)", None, "macro_f1"))
BAR = {("S", "se"): 75.0, ("S", "ppv"): 40.0, ("V", "se"): 90.0, ("V", "ppv"): 90.0}
# The bar on the shared SVDB records (scored out-of-fold when the recipe trains on them, else as an external set).
SVDB_BAR = {("S", "se"): 75.0, ("S", "ppv"): 60.0, ("V", "se"): 85.0, ("V", "ppv"): 80.0}


def _value(report: dict, cls: str | None, key: str) -> float:
    return report[key] if cls is None else report["per_class"][cls][key]


def spread_cell(block: dict, cls: str | None, key: str) -> str:
    """``mean ± sd (worst w)`` of one figure of a :func:`spread` block (``cls`` None: macro-F1)."""
    mean, sd, worst = (_value(block[s], cls, key) for s in ("mean", "sd", "worst"))
    return f"{mean:.1f} ± {sd:.1f} (worst {worst:.1f})"


# The rows of the external and held-out tables: S and V Se / +P, N Se, macro-F1.
SPREAD_ROWS = (TABLE_ROWS[0], TABLE_ROWS[1], TABLE_ROWS[2], TABLE_ROWS[3], TABLE_ROWS[5], TABLE_ROWS[6])


def spread(reports: list[dict]) -> dict:
    """``per_seed``, and the ``mean``, ``sd`` (ddof 1) and ``worst`` (lowest) of every figure."""
    def stat(fn):
        out = {"per_class": {c: {k: round(float(fn([r["per_class"][c][k] for r in reports])), 3)
                                 for k in ("se", "ppv", "f1")} for c in CLASSES},
               "macro_f1": round(float(fn([r["macro_f1"] for r in reports])), 3),
               "accuracy": round(float(fn([r["accuracy"] for r in reports])), 3)}
        return out

    sd = (lambda v: np.std(v, ddof=1)) if len(reports) > 1 else (lambda v: 0.0)
    mean = stat(np.mean)
    for c in CLASSES:
        mean["per_class"][c]["support"] = reports[0]["per_class"][c]["support"]
    mean["confusion"] = np.round(np.mean([r["confusion"] for r in reports], axis=0), 1).tolist()
    mean["labels"] = list(CLASSES)
    return {"per_seed": reports, "mean": mean, "sd": stat(sd), "worst": stat(np.min)}


def per_record_spread(per_seed: list[dict]) -> dict:
    """Mean Se and +P of S and V per record over the seeds (None where a record never has them)."""
    out = {}
    for rec in per_seed[0]:
        out[rec] = {}
        for c in ("S", "V"):
            rows = [p[rec][c] for p in per_seed]
            se = [r["se"] for r in rows if r["se"] is not None]
            ppv = [r["ppv"] for r in rows if r["ppv"] is not None]
            out[rec][c] = {"support": rows[0]["support"],
                           "se_mean": round(float(np.mean(se)), 2) if se else None,
                           "se_min": round(float(np.min(se)), 2) if se else None,
                           "ppv_mean": round(float(np.mean(ppv)), 2) if ppv else None,
                           "predicted_mean": round(float(np.mean([r["predicted"] for r in rows])), 1)}
    return out


ALARM_BAR = {"median": 10.0, "p90": 60.0}   # false S or V calls per hour per record (the bar)
DATABASE_BARS = {"svdb": SVDB_BAR}           # a scored database's own bar; the test split has BAR


def alarm_spread(summaries: list[dict]) -> dict:
    """Mean and worst (largest) over the seeds of the per-record false S+V calls per hour summaries."""
    keys = ("median", "p90", "mean", "max")
    return {"mean": {k: round(float(np.mean([s[k] for s in summaries])), 2) for k in keys},
            "worst": {k: round(float(np.max([s[k] for s in summaries])), 2) for k in keys},
            "per_seed": summaries}


def worst_deltas(deltas: list[dict]) -> dict[str, float]:
    """The int8-minus-float difference of each figure farthest from zero over seeds (pp, signed): the
    bar is within 0.5 pp either way."""
    return {k: max((d[k] for d in deltas), key=abs) for k in DELTAS}


def database_entry(protocol: str, where: str, int8: dict | None, float_: dict, alarms: dict,
                   bar: dict | None) -> dict:
    """One scored set in the schema every scored set of ``seeds.json`` shares: the ``mean``, ``sd`` and
    ``worst`` seed's report of the int8 graph (``c_int8``, the generated C or its bit-exact integer
    reference) and of the float model, the false S/V calls per hour per record, and each bar's verdict on
    the int8 mean (float where there is no int8)."""
    def figures(block: dict | None) -> dict | None:
        return None if block is None else {s: block[s] for s in ("mean", "sd", "worst")}

    shipped, kind = (int8, "int8") if int8 is not None else (float_, "float")
    verdicts = {f"{c}_{k}": {"bar": v, "mean": _value(shipped["mean"], c, k),
                             "met": _value(shipped["mean"], c, k) >= v} for (c, k), v in (bar or {}).items()}
    alarm = alarms.get(kind)
    if alarm:
        verdicts.update({f"false_per_hour_{k}": {"bar": v, "mean": alarm["mean"][k], "met": alarm["mean"][k] <= v}
                         for k, v in ALARM_BAR.items()})
    return {"protocol": protocol, "full_block": where, "bars_scored_on": kind,
            "c_int8": figures(int8), "float": figures(float_),
            "false_per_hour": {k: ({"mean": v["mean"], "worst": v["worst"]} if v else None) for k, v in alarms.items()},
            "bars": verdicts}


def scored_sets(result: dict) -> dict:
    """Every database the seeds were scored on, keyed by name (the test split by its key, e.g. ``ds2``;
    then ``svdb``, ...), in one schema (:func:`database_entry`), whether its figures come from the test
    split, from an external database or out of fold from the recipe's CV runs (a database the recipe
    trains on). ``seeds.json`` holds each at its top level, and ``scored`` lists their names; the full
    blocks (per seed, per record) stay where they were: ``c_int8`` / ``float``, ``external``,
    ``held_out.<database>``."""
    key = result["test_key"]
    alarms = result.get("false_alarms") or {}
    out = {key: database_entry(f"test split {key}: {len(result['seeds'])} seeds trained without it",
                               "c_int8, float, per_record, false_alarms", result["c_int8"], result["float"],
                               {"int8": alarms.get("c_int8"), "float": alarms.get("float")}, BAR)}
    ext = result.get("external")
    if ext:
        out[ext["database"]] = database_entry(
            f"external: {len(ext['records'])} records never trained on, lead {ext['lead']}, the same seeds",
            "external", ext["int8"], ext["float"], ext["false_alarms"], DATABASE_BARS.get(ext["database"]))
    for db, o in (result.get("held_out") or {}).items():
        q = o.get("int8") or {}
        out[db] = database_entry(
            f"out of fold: the recipe trains on it; {len(o['cv_seeds'])} CV seeds "
            f"({', '.join(map(str, o['cv_seeds']))}), each fold's model quantized as shipped",
            f"held_out.{db}", q.get("report"), o["report"],
            {"int8": q.get("false_alarms"), "float": o["false_alarms"]}, DATABASE_BARS.get(db))
    return out


# seeds.json's own top-level keys, which no scored database's name may take.
RESULT_KEYS = frozenset({"float", "c_int8", "c_vs_float", "per_record", "per_record_per_seed", "macro_classes",
                         "false_alarms", "int8_unavailable", "external", "held_out", "seeds", "target", "test_key",
                         "command", "runs", "config", "scored"})


def external_name(folder) -> str:
    """An external database's name: its folder's, symlinks resolved."""
    return Path(folder).resolve().name


def check_scored_names(names: list[str]) -> None:
    """One line, before any training, where a scored set's name would take a key of ``seeds.json`` or
    another scored set's (the test split's key first)."""
    for i, name in enumerate(names):
        if name in RESULT_KEYS or name in names[:i]:
            taken = "a key seeds.json keeps for itself" if name in RESULT_KEYS else "another scored set's"
            raise EdgeECGError(f"{name}: a scored database may not be named {name!r}, {taken}; rename its folder")


def with_scored(result: dict) -> dict:
    """``result`` with every scored set (:func:`scored_sets`) at its top level and their names in ``scored``."""
    names = [result["test_key"]] + ([result["external"]["database"]] if result.get("external") else []) \
        + list(result.get("held_out") or {})
    check_scored_names(names)
    return {**result, **scored_sets(result), "scored": names}


def oof_spread(cvs: list[dict], database: str) -> dict | None:
    """One database's out-of-fold reports and false alarms over several CV seeds: mean, sd, worst."""
    reports = [c["per_database"][database] for c in cvs if database in (c.get("per_database") or {})]
    if len(reports) != len(cvs) or not reports:
        return None
    alarms = [c["false_alarms"][database]["summary"] for c in cvs if (c.get("false_alarms") or {}).get(database)]
    out = {"report": spread(reports), "false_alarms": alarm_spread(alarms) if len(alarms) == len(cvs) else None,
           "cv_seeds": [c.get("seed") for c in cvs], "epochs": [c["chosen_epochs"] for c in cvs], "int8": None}
    int8 = [c.get("int8") or {} for c in cvs]
    if all(database in (q.get("per_database") or {}) for q in int8):     # every CV seed scored its int8 graphs
        out["int8"] = {"report": spread([q["per_database"][database] for q in int8]),
                       "false_alarms": alarm_spread([q["false_alarms"][database]["summary"] for q in int8]),
                       "vs_float": [q["vs_float"][database] for q in int8]}
    return out


def held_out_markdown(held_out: dict) -> str:
    """The databases the recipe trains on, scored out of fold by ``edgeecg cv`` over its CV seeds."""
    lines = []
    for db, o in held_out.items():
        q = o.get("int8")
        lines += [f"**{db}, out of fold ({len(o['cv_seeds'])} CV seeds {', '.join(map(str, o['cv_seeds']))}, "
                  f"epochs {', '.join(map(str, o['epochs']))}): the recipe trains on it**", "",
                  "| mean ± sd (worst) | S Se | S +P | V Se | V +P | N Se | macro-F1 |", "|---|---|---|---|---|---|---|"]
        if q:
            lines.append("| int8 (each fold's graph; integer reference = C) | "
                         + " | ".join(spread_cell(q["report"], c, k) for _, c, k in SPREAD_ROWS) + " |")
        lines += ["| float | " + " | ".join(spread_cell(o["report"], c, k) for _, c, k in SPREAD_ROWS) + " |", ""]
        if o["false_alarms"]:
            lines += ["False S or V calls per hour of recording, per record:", "",
                      *([_alarm_line("int8", q["false_alarms"])] if q else []), _alarm_line("float", o["false_alarms"]), ""]
        if q:
            worst = worst_deltas(q["vs_float"])
            lines += [f"int8 against float out of fold, worst CV seed (pp): macro-F1 {worst['delta_macro_f1']:+.2f}, "
                      f"S Se {worst['delta_S_se']:+.2f}, V Se {worst['delta_V_se']:+.2f}.", ""]
    return "\n".join(lines)


def _alarm_line(label: str, spread_: dict) -> str:
    m, w = spread_["mean"], spread_["worst"]
    return (f"- {label}: median {m['median']:.1f} (worst seed {w['median']:.1f}), 90th percentile {m['p90']:.1f} "
            f"(worst {w['p90']:.1f}), mean {m['mean']:.1f}, largest {m['max']:.1f} "
            f"(bar: median ≤ {ALARM_BAR['median']:g}, 90th percentile ≤ {ALARM_BAR['p90']:g})")


def external_markdown(ext: dict) -> str:
    """The external database's block: int8 and float over the seeds, and false alarms per hour."""
    name = ext["database"]
    lines = [f"**{name} ({len(ext['records'])} records, lead {ext['lead']}), never trained on**", "",
             "| | S Se | S +P | V Se | V +P | N Se | macro-F1 |", "|---|---|---|---|---|---|---|"]
    for kind in ("int8", "float"):
        cells = [spread_cell(ext[kind], c, k) for _, c, k in SPREAD_ROWS]
        lines.append(f"| {'int8 (integer reference = C)' if kind == 'int8' else 'float'} | " + " | ".join(cells) + " |")
    lines += ["", "False S or V calls per hour of recording, per record:", "",
              _alarm_line("int8", ext["false_alarms"]["int8"]), _alarm_line("float", ext["false_alarms"]["float"])]
    return "\n".join(lines) + "\n"


def seeds_markdown(result: dict, command: str = "") -> str:
    """The README's results table: int8 C and float, every seed, mean ± sd, worst, the bar."""
    seeds = result["seeds"]
    lines = [f"DS2 ({result['test_key']}), {len(seeds)} seeds, target `{result['target']}`"
             + (f": `{command}`" if command else ""), ""]
    head = ("| DS2 | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd | worst | bar |\n"
            "|---|" + "---|" * (len(seeds) + 3))
    kinds = (("c_int8", "generated C, int8 (what the device runs)"), ("float", "float model (PyTorch)"))
    if result["c_int8"] is None:
        kinds = kinds[1:]
        lines += [f"No int8 C for this model ({result.get('int8_unavailable', 'not exported')}): float only.", ""]
    for kind, title in kinds:
        block = result[kind]
        lines += [f"**{title}**", "", head]
        for label, cls, key in TABLE_ROWS:
            vals = [_value(r, cls, key) for r in block["per_seed"]]
            mean, sd, worst = (_value(block[s], cls, key) for s in ("mean", "sd", "worst"))
            bar = BAR.get((cls, key))
            verdict = "" if bar is None or kind != "c_int8" else f"≥ {bar:g} {'✓' if mean >= bar else '✗'}"
            lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in vals)
                         + f" | {mean:.1f} ± {sd:.1f} | {worst:.1f} | {verdict} |")
        lines.append("")
    if result["c_vs_float"]:
        lines += ["int8 C against its float model on DS2 (pp; macro-F1 / S Se / V Se), and bit-exactness:", ""]
    for s, d in zip(seeds, result["c_vs_float"]):
        lines.append(f"- seed {s}: {d['delta_macro_f1']:+.2f} / {d['delta_S_se']:+.2f} / {d['delta_V_se']:+.2f}, "
                     f"C == integer reference on every beat: {d['bit_exact_c_vs_reference']}")
    per_kind = "c_int8" if result["c_int8"] else "float"
    lines += ["", f"S and V per DS2 record, {'int8 C' if result['c_int8'] else 'float'}, mean over the seeds "
              "(Se / +P, %; beats held):", "",
              "| record | S beats | S Se | S +P | S predicted | V beats | V Se | V +P | V predicted |",
              "|---|---|---|---|---|---|---|---|---|"]

    def f(v):
        return "–" if v is None else f"{v:.1f}"

    for rec, v in result["per_record"][per_kind].items():
        s, vv = v["S"], v["V"]
        if not (s["support"] or vv["support"] or s["predicted_mean"] or vv["predicted_mean"]):
            continue
        lines.append(f"| {rec} | {s['support']} | {f(s['se_mean'])} | {f(s['ppv_mean'])} | {s['predicted_mean']:.0f} "
                     f"| {vv['support']} | {f(vv['se_mean'])} | {f(vv['ppv_mean'])} | {vv['predicted_mean']:.0f} |")
    alarms = result.get("false_alarms") or {}
    if alarms:
        lines += ["", "False S or V calls per hour of recording, per DS2 record, over the seeds:", ""]
        lines += [_alarm_line(k, alarms[k]) for k in ("c_int8", "float") if alarms.get(k)]
    if result.get("external"):
        lines += ["", external_markdown(result["external"]).rstrip()]
    if result.get("held_out"):
        lines += ["", held_out_markdown(result["held_out"]).rstrip()]
    return "\n".join(lines) + "\n"


def collect(run_dirs: list[Path], target: str, test_key: str) -> dict:
    """``seeds.json`` content from trained and quantized run directories (one per seed). A model
    without an int8 path (quantize wrote the float formats only) has ``c_int8: null`` and the reason."""
    float_reports, c_reports, pr_float, pr_c, deltas, why = [], [], [], [], [], None
    alarms = {"float": [], "c_int8": []}
    for d in run_dirs:
        metrics = json.loads((d / "metrics.json").read_text())
        report = json.loads((d / "export" / target / "report.json").read_text())
        float_reports.append(metrics[test_key])
        pr_float.append(metrics["per_record"][test_key])
        hours = metrics.get("hours")
        if hours:
            alarms["float"].append(false_alarms(metrics["per_record"][test_key], hours)["summary"])
        if report.get("int8") is False:
            why = report["int8_unavailable"]
            continue
        c_reports.append(report["reports"][test_key]["c_int8"])
        pr_c.append(report["per_record"][test_key]["c_int8"])
        if hours:
            alarms["c_int8"].append(false_alarms(report["per_record"][test_key]["c_int8"], hours)["summary"])
        row = report["accuracy"][test_key]["c_int8"]
        deltas.append({k: row[k] for k in DELTAS}
                      | {"bit_exact_c_vs_reference": report["bit_exact_c_vs_reference"]})
    out = {"float": spread(float_reports), "c_int8": spread(c_reports) if c_reports else None,
           "c_vs_float": deltas,
           "per_record": {"float": per_record_spread(pr_float), "c_int8": per_record_spread(pr_c) if pr_c else None},
           "per_record_per_seed": {"float": pr_float, "c_int8": pr_c}, "macro_classes": list(MACRO_CLASSES),
           "false_alarms": {k: alarm_spread(v) if v else None for k, v in alarms.items()}}
    if why:
        out["int8_unavailable"] = why
    return out


def score_external(run_dirs: list[Path], models: list, cfg, target: str, ext_dir: Path, lead: str) -> dict:
    """Every seed's float model and int8 graph (integer reference, bit-exact with the C) on an external
    WFDB database (e.g. the shared SVDB records for a recipe trained on DS1 only): mean, sd, worst."""
    from edgeecg.evaluate import evaluate_database
    from edgeecg.quant import read_tflite
    from edgeecg.runtimes import Int8GraphRunner

    results = []
    for d, model in zip(run_dirs, models):
        graph = read_tflite((d / "export" / target / "model.int8.tflite").read_bytes())
        results.append(evaluate_database(model, cfg, ext_dir, None, lead, "atr", Int8GraphRunner(graph)))
    return {"database": external_name(ext_dir), "data_dir": str(Path(ext_dir).resolve()), "lead": str(lead),
            "records": results[0]["records"], "beats": results[0]["beats"],
            "float": spread([r["report"] for r in results]), "int8": spread([r["int8"]["report"] for r in results]),
            "int8_vs_float": [r["int8"]["vs_float"] for r in results],
            "false_alarms": {"float": alarm_spread([r["false_alarms"]["summary"] for r in results]),
                             "int8": alarm_spread([r["int8"]["false_alarms"]["summary"] for r in results])},
            "per_record": {"float": per_record_spread([r["per_record"] for r in results]),
                           "int8": per_record_spread([r["int8"]["per_record"] for r in results])},
            "false_alarms_per_record": [r["int8"]["false_alarms"]["per_record"] for r in results]}


RUN_FLAGS = ("seed", "epochs", "device")   # [train] keys a CV run's command line may set for itself


def held_out_block(cfg, cvs: list[dict]) -> dict:
    """``seeds.json``'s ``held_out``: each database of the recipe's ``[[sources]]`` (which its seeds train
    on, so cannot be scored on) out of fold over the given ``cv.json`` runs of the same recipe (``[train]``'s
    seed, epochs and device are not compared: a CV seed's flags are its own)."""
    from edgeecg.config import config_from_dict, config_to_dict

    def recipe(raw: dict, where: str) -> dict:     # keys added since the run hold their defaults
        out = config_to_dict(config_from_dict(raw, where))
        out["train"] = {k: v for k, v in out["train"].items() if k not in RUN_FLAGS}
        return out

    want = recipe(config_to_dict(cfg), "--config")
    for c in cvs:
        if recipe(c["config"], f"--cv {c.get('command') or 'cv.json'}") != want:
            raise EdgeECGError(f"--cv {c.get('command') or 'cv.json'}: cross-validated another recipe than --config")
    out = {}
    for src in cfg.sources:
        block = oof_spread(cvs, src.database)
        if block is None:
            raise EdgeECGError(f"--cv: a cv.json without out-of-fold figures for {src.database}")
        out[src.database] = block
    return out


def run_seeds(cfg, data_dir: Path, seeds: list[int], target, out: Path, command: str = "", force: bool = False,
              progress: bool = False, log=print, external: tuple[Path, str] | None = None,
              cvs: list[dict] = ()) -> dict:
    """Train, quantize and score every seed; write ``seeds.json``, ``seeds.md`` and a per-record plot.
    ``external``: (folder, lead) of a database the recipe does not train on, scored as a second set.
    ``cvs``: ``cv.json`` runs of the recipe, whose out-of-fold figures stand for the databases it
    trains on (:func:`held_out_block`; required when the recipe has ``[[sources]]``).

    Everything is built in a temporary directory renamed onto ``out`` at the end, so a failure
    leaves no half-written result.
    """
    import dataclasses

    from edgeecg import plots
    from edgeecg.atomic import atomic_dir
    from edgeecg.config import config_to_dict, test_key
    from edgeecg.data import make_splits
    from edgeecg.quantize import QuantizeOptions, quantize_run
    from edgeecg.run import save_run
    from edgeecg.train import train_model

    key = test_key(cfg)
    if external is not None and external_name(external[0]) in {src.database for src in cfg.sources}:
        raise EdgeECGError(f"{external[0]}: the recipe trains on this database; its patients are scored "
                           f"out-of-fold by `edgeecg cv`, not as an external set")
    check_scored_names([key] + ([external_name(external[0])] if external is not None else [])
                       + [src.database for src in cfg.sources])
    if cfg.sources and not cvs:
        raise EdgeECGError(f"the recipe trains on {', '.join(s.database for s in cfg.sources)}: give its "
                           f"`edgeecg cv` runs (--cv DIR, one per CV seed) for their out-of-fold figures")
    held_out = held_out_block(cfg, list(cvs)) if cfg.sources else None
    with atomic_dir(out, force=force) as tmp:
        run_dirs, models = [], []
        for seed in seeds:
            seed_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
            splits = make_splits(data_dir, seed_cfg)     # a beat-wise (random) split draws its beats by seed
            run_dir = tmp / f"seed{seed}"
            log(f"seed {seed}: training on {len(splits['train']):,d} beats ...")
            result = train_model(seed_cfg, splits, progress=progress)
            save_run(run_dir, seed_cfg, result.model, result.history, result.best_epoch, splits, data_dir)
            log(f"seed {seed}: quantizing for {target.name} ...")
            quantize_run(out / run_dir.name, seed_cfg, result.model, target, data_dir, run_dir / "export" / target.name,
                         QuantizeOptions(), log=lambda m: None, splits=splits)
            run_dirs.append(run_dir)
            models.append(result.model)
        result = collect(run_dirs, target.name, key)
        if external is not None:
            log(f"scoring every seed on {external[0]} ...")
            result["external"] = score_external(run_dirs, models, cfg, target.name, *external)
        if held_out:
            result["held_out"] = held_out
        result.update({"seeds": list(seeds), "target": target.name, "test_key": key, "command": command,
                       "runs": [str(out / d.name) for d in run_dirs], "config": config_to_dict(cfg)})
        result = with_scored(result)
        (tmp / "seeds.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (tmp / "seeds.md").write_text(seeds_markdown(result, command), encoding="utf-8")
        kind = "c_int8" if result["c_int8"] else "float"
        mean_pr = {r: {c: {"se": v[c]["se_mean"], "ppv": v[c]["ppv_mean"], "support": v[c]["support"],
                           "predicted": v[c]["predicted_mean"]} for c in ("S", "V")}
                   for r, v in result["per_record"][kind].items()}
        plots.per_record(mean_pr, f"{key}, {'int8 C' if result['c_int8'] else 'float'}, mean of {len(seeds)} seeds",
                         tmp / "per_record.png")
    return result

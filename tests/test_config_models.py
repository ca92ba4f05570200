"""Recipes, the model registry, parameter and MAC counts."""

from pathlib import Path

import pytest
import torch

import dataclasses

from edgeecg.config import DS1, DS2, PACED, Config, config_from_dict, config_to_dict, load_config, rr_feature_names
from edgeecg.errors import EdgeECGError
from edgeecg.models import MODELS, build_model, count_params, macs_per_beat

RECIPES = sorted((Path(__file__).resolve().parents[1] / "training").glob("*.toml"))


def test_de_chazal_lists_are_disjoint_and_complete():
    assert len(DS1) == len(DS2) == 22
    assert not set(DS1) & set(DS2)
    assert not (set(DS1) | set(DS2)) & set(PACED)
    cfg = Config()
    assert set(cfg.split.val) < set(DS1) and not set(cfg.split.val) & set(cfg.split.train)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_loads_and_builds(recipe):
    cfg = load_config(recipe)
    model = build_model(cfg.model.name, cfg.data, **cfg.model.params)
    x = torch.zeros(3, cfg.data.channels, cfg.data.window)
    assert model(x, torch.ones(3, len(rr_feature_names(cfg.data)))).shape == (3, 5)


def test_every_recipe_in_training_is_a_link_to_the_one_the_wheel_ships():
    shipped = Path(__file__).resolve().parents[1] / "edgeecg" / "resources" / "recipes"
    for recipe in RECIPES:
        assert recipe.is_symlink() and recipe.resolve().parent == shipped, recipe.name
    assert {p.name for p in shipped.glob("*.toml")} == {r.name for r in RECIPES}, "a shipped recipe with no link"


def test_there_is_one_recipe_per_model_family():
    assert {load_config(r).model.name for r in RECIPES} == set(MODELS)


def test_default_hybrid_fits_the_16_kib_int8_budget():
    cfg = Config()
    model = build_model("hybrid", cfg.data)
    assert count_params(model) <= 16_000
    assert 10_000 < macs_per_beat(model, cfg.data.window, cfg.data.channels, len(rr_feature_names(cfg.data))) < 1_000_000


def test_macs_of_a_single_linear_layer():
    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x, rr):
            return self.fc(rr)

    assert macs_per_beat(One(), 8, 1, 4) == 12


@pytest.mark.parametrize("text, message", [
    ("[train\nepochs = 3", "invalid TOML"),
    ("[train]\nepoch = 3", "unknown key(s) epoch in [train]"),
    ("[trian]\nepochs = 3", "unknown section(s) trian"),
    ("[train]\nloss = 'hinge'", "loss = 'hinge' is not one of ce, focal"),
    ("[train]\nepochs = 'many'", "expected a number"),
    ("[split]\ntrain = '101'", "expected a list"),
    ('base = "hybird"', "base = 'hybird': unknown recipe 'hybird'"),
    ('base = "bad.toml"', "base goes round in a loop"),
    ("base = 3", "base must name a shipped recipe or a .toml file"),
    ('base = "hybrid"\n[train]\nepoch = 3', "unknown key(s) epoch in [train]"),
])
def test_bad_config_names_file_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EdgeECGError) as err:
        load_config(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)


def test_a_variant_recipe_is_its_base_with_its_own_keys_on_top(tmp_path):
    default = load_config("hybrid_narrow")          # the questions' base: the default before question 24
    assert load_config("hybrid_svdb_power035") == dataclasses.replace(
        default, train=dataclasses.replace(default.train, imbalance_power=0.35))
    # a file beside it as the base, two levels deep; [model.params] merges key by key, an array replaces
    (tmp_path / "mine.toml").write_text('base = "hybrid_two_lead"\n[data]\nrr_features = ["pre_over_regular"]\n'
                                        '[model.params]\nhidden = 24\n')
    (tmp_path / "mine2.toml").write_text('base = "mine.toml"\n[train]\nepochs = 3\n')
    cfg = load_config(tmp_path / "mine2.toml")
    assert cfg.data.second_lead == "other" and cfg.data.rr_features == ("pre_over_regular",) and cfg.train.epochs == 3
    assert cfg.model.params == {**default.model.params, "hidden": 24} and cfg.sources == default.sources
    assert "base" not in config_to_dict(cfg)          # a run's config.toml stands alone


@pytest.mark.parametrize("train, match", [({"class_powers": {"X": 0.5}}, r"class_powers: X: each key"),
                                          ({"class_powers": {"F": "half"}}, r"class_powers: F: each key"),
                                          ({"class_powers": {"F": float("nan")}}, r"class_powers: F: each key"),
                                          ({"class_powers": {"F": 0.5}, "imbalance": "none"}, "class_powers weigh .* need imbalance")])
def test_class_powers_are_checked_when_the_recipe_is_read(train, match):
    with pytest.raises(EdgeECGError, match=r"^r\.toml: \[train\] " + match):
        config_from_dict({"train": train}, "r.toml")


@pytest.mark.parametrize("key, value", [("lead_shape", 1.5), ("smooth", -0.1), ("flip", float("nan")),
                                        ("qrs_gain", 2.0)])
def test_augmentation_shares_are_checked_when_the_recipe_is_read(key, value):
    with pytest.raises(EdgeECGError, match=rf"^r\.toml: \[train\] {key} = .*: a share of the training beats, from 0 to 1$"):
        config_from_dict({"train": {key: value}}, "r.toml")
    assert getattr(config_from_dict({"train": {key: 1}}, "r.toml").train, key) == 1.0


def test_qrs_gain_needs_beat_windows_around_an_r_peak():
    with pytest.raises(EdgeECGError, match=r"^r\.toml: \[train\] qrs_gain scales the QRS .* dataset = \"mitdb\"$"):
        config_from_dict({"data": {"dataset": "kaggle_csv"}, "train": {"qrs_gain": 0.5}}, "r.toml")


@pytest.mark.parametrize("recipe, key", [("hybrid_lead_shape", "lead_shape"), ("hybrid_qrs_gain", "qrs_gain")])
def test_an_augmentation_recipe_is_the_default_plus_its_one_key(recipe, key):
    default, candidate = load_config("hybrid"), load_config(recipe)
    assert candidate == dataclasses.replace(default, train=dataclasses.replace(default.train, **{key: 0.5}))


def test_class_powers_survive_a_run_s_config_toml():
    import tomllib
    from edgeecg.config import config_to_toml
    cfg = load_config("hybrid")
    assert cfg.train.class_powers == {"F": 0.5}
    assert config_from_dict(tomllib.loads(config_to_toml(cfg)), "config.toml") == cfg
    assert config_from_dict({}, "old.toml").train.class_powers == {}     # a run saved before the key


def test_the_default_is_the_recipe_its_pool_cv_rows_measured():
    # question 44 (training/README.md) adopted row 58's recipe (hybrid_svdb_run_power035_f: row 55's
    # hybrid_svdb_run at class-weight power 0.35, F's at 0.5) with question 42's S logit offset -0.25; the
    # default before 42 stays as hybrid_regular (row 41's hybrid_svdb_wide_smooth, question 24), the base
    # of rows 42-56, and the one before that as hybrid_narrow, the base of the rows before 41
    default, regular, narrow = load_config("hybrid"), load_config("hybrid_regular"), load_config("hybrid_narrow")
    run, adopted = load_config("hybrid_svdb_run"), load_config("hybrid_svdb_run_power035_f")
    assert default == dataclasses.replace(adopted, model=dataclasses.replace(
        adopted.model, params={**adopted.model.params, "logit_offsets": [0.0, -0.25, 0.0, 0.0, 0.0]}))
    assert adopted == dataclasses.replace(run, train=dataclasses.replace(
        run.train, imbalance_power=0.35, class_powers={"F": 0.5}))
    assert run == dataclasses.replace(regular, data=dataclasses.replace(
        regular.data, rr_features=("pre_over_anchor", "prev_over_anchor", "irregularity")))
    assert regular == load_config("hybrid_svdb_wide_smooth")
    assert regular.model.params["channels"] == [12, 24, 24, 24] and regular.train.smooth == 0.5
    assert narrow == dataclasses.replace(regular, model=dataclasses.replace(
        regular.model, params={**regular.model.params, "channels": [8, 16, 16, 16], "hidden": 16}),
        train=dataclasses.replace(regular.train, smooth=0.0))


def test_unknown_model_lists_known_ones():
    with pytest.raises(EdgeECGError, match=r"unknown model 'resnet' \(known: cnn, cnn_bilstm, cnn_lstm, hybrid, "
                                           r"spectrogram_cnn\)"):
        build_model("resnet", Config().data)

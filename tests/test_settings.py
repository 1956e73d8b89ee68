"""Settings: presets load, bad values are all reported with the field and the fix."""
import json

import pytest

from toolkit.settings import (LoraSettings, ModelSettings, SettingsError, TrainSettings, apply_overrides, build,
                              read_file, save_json)


@pytest.mark.parametrize("cls,data,field", [
    (LoraSettings, {"r": 0}, "r"),
    (LoraSettings, {"r": -4}, "r"),
    (LoraSettings, {"alpha": 0}, "alpha"),
    (LoraSettings, {"target_modules": []}, "target_modules"),
    (LoraSettings, {"dropout": 1.5}, "dropout"),
    (TrainSettings, {"lr": 0}, "lr"),
    (TrainSettings, {"lr": -1e-4}, "lr"),
    (TrainSettings, {"batch_size": 0}, "batch_size"),
    (ModelSettings, {"max_seq_length": 0}, "max_seq_length"),
])
def test_impossible_values_name_the_field(cls, data, field):
    with pytest.raises(SettingsError) as err:
        build(cls, data)
    assert field in str(err.value)
    assert repr(list(data.values())[0]) in str(err.value)


def test_unknown_key_and_wrong_type_are_reported_together():
    with pytest.raises(SettingsError) as err:
        build(LoraSettings, {"rank": 8, "r": "eight", "use_rslora": "yes"})
    text = str(err.value)
    assert len(err.value.problems) == 3
    assert "rank" in text and "unknown setting" in text and "valid keys" in text
    assert "r = 'eight'" in text and "int" in text
    assert "use_rslora" in text and "bool" in text


def test_bool_is_not_an_int_and_literal_choices_are_listed():
    with pytest.raises(SettingsError, match="r = True"):
        build(LoraSettings, {"r": True})
    with pytest.raises(SettingsError, match="one of"):
        build(ModelSettings, {"dtype": "fp8"})


def test_yaml_float_quirk_and_int_widening():
    s = build(TrainSettings, {"lr": "2e-4", "epochs": 2})
    assert s.lr == pytest.approx(2e-4) and isinstance(s.epochs, float)


def test_json_round_trip(tmp_path):
    s = build(LoraSettings, {"r": 8, "target_modules": ["q_proj", "v_proj"]})
    path = save_json(s, tmp_path / "lora.json")
    again = build(LoraSettings, read_file(path))
    assert again == s
    assert json.loads(path.read_text())["r"] == 8


def test_overrides_parse_yaml_values():
    data = apply_overrides({"lora": {"r": 16}}, ["lora.r=8", "train.lr=1e-3", "lora.target_modules=[q_proj, v_proj]"])
    assert data["lora"] == {"r": 8, "target_modules": ["q_proj", "v_proj"]}
    assert build(TrainSettings, data["train"]).lr == pytest.approx(1e-3)
    with pytest.raises(SettingsError, match="section.key=value"):
        apply_overrides({}, ["lora.r"])


def test_missing_settings_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="configs/"):
        read_file(tmp_path / "nope.yaml")

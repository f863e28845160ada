"""Tests of remoco.runs: atomic files and folders (the one write-then-rename helper of the project)."""

from __future__ import annotations

import json

import pytest

from remoco import runs


def test_atomic_file_replaces_on_success_and_keeps_the_old_file_on_error(tmp_path):
    p = tmp_path / "a.json"
    runs.write_json(p, {"x": 1})
    assert json.loads(p.read_text()) == {"x": 1}
    with pytest.raises(RuntimeError):
        with runs.atomic_file(p) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("killed")
    assert json.loads(p.read_text()) == {"x": 1}  # the old content, untouched
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.json"]  # no temporary left


def test_atomic_dir_publishes_complete_folders_only(tmp_path):
    final = tmp_path / "model"
    with runs.atomic_dir(final) as tmp:
        (tmp / "w.txt").write_text("v1")
        assert not final.exists()  # nothing visible before the folder is complete
    assert (final / "w.txt").read_text() == "v1"
    with pytest.raises(RuntimeError):
        with runs.atomic_dir(final) as tmp:
            (tmp / "w.txt").write_text("v2")
            raise RuntimeError("killed")
    assert (final / "w.txt").read_text() == "v1"
    with runs.atomic_dir(final) as tmp:  # a second publish replaces the folder whole
        (tmp / "other.txt").write_text("v3")
    assert sorted(f.name for f in final.iterdir()) == ["other.txt"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["model"]


def test_is_finished_refuses_a_different_config(tmp_path):
    from remoco import config

    cfg = config.preset_config("toy-cpu", "unet", out_dir=str(tmp_path))
    final = tmp_path / "final"
    assert not runs.is_finished(final, cfg, "unet")
    with runs.atomic_dir(final) as tmp:
        runs.write_json(tmp / "provenance.json", runs.provenance(cfg, stage="unet"))
    assert runs.is_finished(final, cfg, "unet")
    with pytest.raises(ValueError, match="different config"):
        runs.is_finished(final, cfg.replace(lr=1e-2), "unet")


def test_merged_systems_keep_each_records_own_machine():
    old = {"machine": {"cpu_model": "Intel Xeon"},
           "systems": {"a": {"x": 1}, "b": {"x": 2, "machine": {"cpu_model": "AMD EPYC"}}}}
    systems = runs.merged_systems(old)
    assert systems["a"]["machine"] == {"cpu_model": "Intel Xeon"}  # an older record gets the file's machine
    assert systems["b"]["machine"] == {"cpu_model": "AMD EPYC"}  # a record with its own keeps it

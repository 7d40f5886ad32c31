"""The writing commands of omni_regressor/commands.py (`tiny-backbone`, `demo-data`) refuse a non-empty folder and
leave it untouched unless told --overwrite."""

import shutil

import hostile_media as hm
from conftest import cli, digests, one_error_line


def test_tiny_backbone_refuses_a_non_empty_folder_and_leaves_it_untouched(regressor, tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(regressor, folder)
    before = digests(folder)
    status, _, err = cli("tiny-backbone", "--output_dir", folder)
    assert status == 2
    one_error_line(err, f"--output_dir {folder} is not empty; pass --overwrite")
    assert digests(folder) == before


def test_demo_data_refuses_a_folder_with_a_real_label_csv_and_writes_there_with_overwrite(tmp_path):
    folder = tmp_path / "MOSI"
    hm.label_csv_with_bom(folder)
    before = digests(folder)
    status, _, err = cli("demo-data", "--output_dir", folder, "--num_clips", "3")
    assert status == 2
    one_error_line(err, f"--output_dir {folder} is not empty; pass --overwrite")
    assert digests(folder) == before
    status, _, _ = cli("demo-data", "--output_dir", folder, "--num_clips", "3", "--overwrite", "true")
    assert status == 0 and digests(folder) != before

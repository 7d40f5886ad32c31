"""Label files and transcripts in other encodings (omni_regressor/data/labels.py): a BOM or Latin-1 label.csv and a
Latin-1 CMU-SDK transcript are read as the text they hold."""

import pytest

import hostile_media as hm
from conftest import SMALL_PIXEL_FLAGS, cli


@pytest.mark.parametrize("builder", [hm.label_csv_with_bom, hm.label_csv_latin1], ids=["bom", "latin1"])
def test_check_data_reads_bom_and_latin1_label_files(tmp_path, builder):
    root = builder(tmp_path / "data")
    status, out, _ = cli("check-data", root, "--media_cache_dir", tmp_path / "cache", *SMALL_PIXEL_FLAGS)
    assert status == 0
    assert "2 clips read, 0 problems." in out


def test_check_data_reads_a_latin1_cmu_sdk_transcript(tmp_path):
    from omni_regressor.data import read_dataset

    root, labels_csv = hm.cmu_sdk_latin1_transcript(tmp_path / "sdk")
    status, out, err = cli("check-data", root, "--dataset_format", "cmu-sdk", "--labels_csv", labels_csv,
                           "--media_cache_dir", tmp_path / "cache", *SMALL_PIXEL_FLAGS)
    assert status == 0 and "Traceback" not in err
    assert "2 clips read, 0 problems." in out
    records, _ = read_dataset(root, "cmu-sdk", labels_csv=labels_csv)
    assert [record.text for record in records] == [hm.LATIN1_TRANSCRIPT, "it was okay"]

"""The shipped sample in data/poker/ is exactly what its documented command regenerates."""
import subprocess
import sys


def test_shipped_sample_regenerates_byte_for_byte(tmp_path):
    cmd = [sys.executable, "-m", "toolkit.poker.dataset", "--seed", "0", "--n-spots", "150", "--out", str(tmp_path), "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "stats.json", "settings.json"):
        assert (tmp_path / name).read_bytes() == open(f"data/poker/{name}", "rb").read(), name

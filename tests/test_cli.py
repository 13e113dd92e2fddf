"""The `zoo` command line, run as a user would."""

import json
import shutil
import subprocess
import sys

import pytest

from test_registry import NAMES


def zoo_cli(*args):
    exe = shutil.which("zoo")
    cmd = [exe] if exe else [sys.executable, "-m", "zoo.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300)


def test_list_shows_all_seventeen():
    r = zoo_cli("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split() == ["name", "params", "MACs", "input", "pretrained"]
    assert [line.split()[0] for line in lines[1:]] == sorted(NAMES)
    row = next(line for line in lines if line.startswith("efficientnet_b0 "))
    assert row.split()[1:4] == ["5.29M", "386M", "224"]


def test_list_pattern_json_and_published():
    r = zoo_cli("list", "mobilenet_v3*", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert rows[1]["params"] == 2542856  # torchvision's mobilenet_v3_small card: 2,542,856
    r = zoo_cli("list", "mobilenet_v2", "--published")
    assert "| mobilenet_v2 [1] | 3.50M | 3.4M | +3.1% |" in r.stdout
    assert "[1] The paper rounds" in r.stdout
    r = zoo_cli("list", "resnet*")
    assert r.returncode == 1 and "no model matches 'resnet*'" in r.stderr


def test_info():
    r = zoo_cli("info", "efficientnet_lite0", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["input_size"] == 224 and info["padding"] == "same"
    assert info["params"] == 4652008 and info["published"]["macs"] == 407e6
    r = zoo_cli("info", "mobilenet_v2", "--width", "0.5", "--resolution", "160")
    assert r.returncode == 0 and "input_size     160" in r.stdout


@pytest.mark.parametrize("args,message", [
    (("info", "effnet_b0"), "Did you mean 'efficientnet_b0'"),
    (("info", "mobilenet_v2", "--resolution", "8"), "resolution=8"),
    (("info", "mobilenet_v2", "--width", "-1"), "width=-1.0: expected a multiplier"),
])
def test_errors_are_one_line_not_a_traceback(args, message):
    r = zoo_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("sub", ["list", "info"])
def test_help_has_examples(sub):
    r = zoo_cli(sub, "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and f"zoo {sub}" in r.stdout

"""The installed package finds the one schema file: the wheel carries schemas/pulse.schema.json."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_schema_byte_for_byte_and_finds_it(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("pulse_agent-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("pulse_agent/pulse.schema.json")
        zf.extractall(tmp_path / "site")
    assert shipped == (ROOT / "schemas" / "pulse.schema.json").read_bytes()
    # Imported from the unpacked wheel (no source checkout around it), schema_path() finds the shipped copy.
    code = "from pulse_agent.config.schema import schema_path; print(schema_path())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == str(tmp_path / "site" / "pulse_agent" / "pulse.schema.json")

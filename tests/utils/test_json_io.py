"""read_json names the file in every error: missing, invalid JSON (line/column), wrong top-level type."""
import pytest

from ovseg.utils.json_io import read_json


class FormatError(ValueError):
    pass


def test_read_json_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'a\.json: no such file \(refs\)'):
        read_json(tmp_path / 'a.json', 'refs')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"x": 1,\n oops}')
    with pytest.raises(FormatError, match=r'bad\.json: not valid JSON \(.* at line 2 column 2'):
        read_json(bad, error=FormatError)
    good = tmp_path / 'good.json'
    good.write_text('{"x": [1, 2]}')
    assert read_json(good, expect=dict) == {'x': [1, 2]}
    with pytest.raises(ValueError, match=r'good\.json: expected a JSON list at the top level \(records\), got dict'):
        read_json(good, 'records', expect=list)

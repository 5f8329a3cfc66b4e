"""load_plain_pickle: REFER-style plain data loads (Python-2 protocols too); code-running pickles are refused."""
import os
import pickle
from collections import OrderedDict

import pytest

from ovseg.utils.plain_pickle import UnsafePickleError, load_plain_pickle

REFS = [{'ref_id': 0, 'ann_id': 1, 'image_id': 9, 'split': 'testA', 'category_id': 1,
         'sentences': [{'raw': 'The man on the left', 'sent': 'the man on the left', 'sent_id': 7,
                        'tokens': ['the', 'man']}], 'bbox': (1.0, 2.5, 3.0, 4.0), 'flag': True, 'none': None}]


@pytest.mark.parametrize('protocol', [0, 2, pickle.HIGHEST_PROTOCOL])
def test_plain_data_round_trips(tmp_path, protocol):
    path = tmp_path / 'refs(unc).p'
    path.write_bytes(pickle.dumps(REFS, protocol=protocol))
    assert load_plain_pickle(path) == REFS


def test_python2_byte_strings_decode(tmp_path):
    """A Python-2 ``str`` pickles as SHORT_BINSTRING / STRING; latin1 turns it into text."""
    path = tmp_path / 'py2.p'
    path.write_bytes(b"(lp0\n(dp1\nS'sent'\np2\nS'caf\\xe9'\np3\nsa.")
    assert load_plain_pickle(path) == [{'sent': 'caf\xe9'}]


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.p'
    path.write_bytes(pickle.dumps([{'sent': 'x', 'payload': _Payload(marker)}]))
    with pytest.raises(UnsafePickleError, match=r"evil\.p: refused to load '(posix|os)\.system'"):
        load_plain_pickle(path)
    assert not marker.exists()


def test_objects_and_garbage_are_errors(tmp_path):
    path = tmp_path / 'obj.p'
    path.write_bytes(pickle.dumps({'s': OrderedDict(a=1)}))  # a class instance needs its global
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        load_plain_pickle(path)
    path.write_bytes(b'not a pickle')
    with pytest.raises(pickle.UnpicklingError, match=r'obj\.p: not a readable pickle'):
        load_plain_pickle(path)

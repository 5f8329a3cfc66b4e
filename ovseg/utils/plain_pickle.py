"""Load pickles that may only hold plain data (RefCOCO's ``refs(unc).p``), refusing anything that runs code.

The REFER annotation files are Python-2 pickles of lists of dicts of strings and numbers. Unpickling such data
needs no global at all; a pickle that asks for one (``os.system``, a class, ``copyreg`` reconstruction) is not a
plain-data file, so it is refused before anything is called, with the file and the requested global named.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import Any

__all__ = ['UnsafePickleError', 'load_plain_pickle']


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle needs a global (code); plain-data files never do."""


class _PlainDataUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        # latin1 decodes Python-2 byte strings (the REFER files were written by Python 2) without failing.
        super().__init__(file, encoding='latin1')
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"{self.source}: refused to load '{module}.{name}': only plain data (dict, list, "
                                'tuple, str, bytes, numbers, bool, None) is accepted from this file')

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f'{self.source}: persistent ids are not plain data')


def load_plain_pickle(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` if it holds plain containers and scalars only; else :class:`UnsafePickleError`."""
    source = os.fspath(path)
    with open(source, 'rb') as f:
        try:
            return _PlainDataUnpickler(f, source).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise pickle.UnpicklingError(f'{source}: not a readable pickle ({type(e).__name__}: {e})') from None
